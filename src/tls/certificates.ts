// The server's TLS certificate: where it comes from and how it is swapped.
//
// On first start, with no certificate configured, we make a self-signed one
// (selfsigned.ts) under <dataDir>/tls, so STARTTLS works out of the box.
// A real certificate is configured by path and replaced on renewal; SIGHUP
// then calls TlsCredentials.reload().
//
// Invariants:
//  - Handshakes always use the *current* context: servers built from
//    serverOptions() pick it in SNICallback (or get it pushed with
//    setSecureContext on reload), and STARTTLS asks upgradeOptions() at the
//    moment of the upgrade. Nobody keeps a context of their own.
//  - A failed reload changes nothing: the new pair is read and checked
//    completely before it replaces the old, so a bad renewal cannot take
//    TLS down. Connections already open keep the context they started with.
//  - The key is written before the certificate, so a cert.pem we made
//    always has its key.pem beside it (see createPair).

import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { SecureContext, Server, TLSSocketOptions, TlsOptions } from 'node:tls';
import { writeFileAtomic } from '../store/safeio.ts';
import { createSelfSignedCertificate } from './selfsigned.ts';

export interface CertificateOptions {
  /** A PEM certificate (chain) to use; with keyPath, or neither. */
  certPath?: string;
  /** The PEM private key matching certPath. */
  keyPath?: string;
  /** Without certPath/keyPath, the pair lives in <dataDir>/tls. */
  dataDir: string;
  /** The name put in a newly made self-signed certificate. */
  hostname: string;
  log?: (msg: string) => void;
}

export interface LoadedCertificate {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
  /** True when this call made a new self-signed pair. */
  created: boolean;
}

// RFC 8996 retired TLS 1.0 and 1.1; RFC 8314 4.1 asks for 1.2 or later.
const MIN_VERSION = 'TLSv1.2';

/** Reads the configured pair, or the one in <dataDir>/tls, making it first if needed. */
export async function loadOrCreateCertificate(opts: CertificateOptions): Promise<LoadedCertificate> {
  if (opts.certPath !== undefined || opts.keyPath !== undefined) {
    if (opts.certPath === undefined || opts.keyPath === undefined) {
      throw new Error('a TLS certificate needs both a certificate file and a key file; only one was given');
    }
    const certPath = path.resolve(opts.certPath);
    const keyPath = path.resolve(opts.keyPath);
    return { ...(await readPair(certPath, keyPath)), certPath, keyPath, created: false };
  }

  const dir = path.join(opts.dataDir, 'tls');
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  if (await exists(certPath)) {
    return { ...(await readPair(certPath, keyPath)), certPath, keyPath, created: false };
  }
  const pair = await createPair(dir, certPath, keyPath, opts.hostname);
  opts.log?.(`created a self-signed TLS certificate for ${opts.hostname} in ${certPath}`);
  return { ...pair, certPath, keyPath, created: true };
}

// Make and write a new pair. The key goes first: if we crash in between,
// the next start finds no cert.pem and simply makes a fresh pair, replacing
// the orphaned key. The other order could leave a certificate whose key is
// gone, which would need a human.
async function createPair(dir: string, certPath: string, keyPath: string, hostname: string) {
  // 0o700: only the server's user may even list the private key.
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const { keyPem, certPem } = createSelfSignedCertificate({ hostname, altNames: ['localhost'] });
  await writeFileAtomic(keyPath, keyPem, { mode: 0o600 });
  await writeFileAtomic(certPath, certPem, { mode: 0o644 }); // public anyway
  return { cert: certPem, key: keyPem };
}

// Read both files and check that they parse and belong together, with
// errors that name the file, since "bad decrypt" or "key values mismatch"
// from OpenSSL tells an operator nothing about which file to fix.
async function readPair(certPath: string, keyPath: string): Promise<{ cert: string; key: string }> {
  const cert = await readNamed(certPath, 'TLS certificate');
  const key = await readNamed(keyPath, 'TLS private key');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert); // the first (leaf) certificate of a chain
  } catch (err) {
    throw new Error(`TLS certificate ${certPath} is not a PEM certificate: ${(err as Error).message}`, { cause: err });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`TLS private key ${keyPath} is not a usable PEM key: ${(err as Error).message}`, { cause: err });
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new Error(`TLS private key ${keyPath} does not belong to the certificate ${certPath}`);
  }
  return { cert, key };
}

async function readNamed(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : (err as Error).message;
    throw new Error(`${what} ${file} ${reason}`, { cause: err });
  }
}

// Only "no such file" counts as absent: on any other error (say, EACCES)
// making a new pair would overwrite files we merely cannot see.
async function exists(file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new Error(`TLS certificate ${file} cannot be checked: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The current certificate as a TLS context, swappable at run time.
 *
 *   const creds = await TlsCredentials.load({ dataDir, hostname });
 *   const server = creds.createServer(onSecureConnection);  // implicit TLS
 *   new tls.TLSSocket(socket, creds.upgradeOptions());      // STARTTLS
 *   process.on('SIGHUP', () => creds.reload().catch(log));  // renewal
 */
export class TlsCredentials {
  #pair: LoadedCertificate;
  #context: SecureContext;
  #servers = new Set<Server>();

  // Use TlsCredentials.load(): construction needs the files read first.
  private constructor(pair: LoadedCertificate) {
    this.#pair = pair;
    this.#context = makeContext(pair);
  }

  static async load(opts: CertificateOptions): Promise<TlsCredentials> {
    const pair = await loadOrCreateCertificate(opts);
    if (!pair.created) warnIfExpired(pair, opts.log);
    return new TlsCredentials(pair);
  }

  /** The context for a handshake starting now. */
  get context(): SecureContext {
    return this.#context;
  }

  get certPath(): string {
    return this.#pair.certPath;
  }

  get keyPath(): string {
    return this.#pair.keyPath;
  }

  /** The current certificate in PEM, e.g. to show its fingerprint. */
  get certPem(): string {
    return this.#pair.cert;
  }

  /**
   * Re-reads certPath and keyPath. On success, new handshakes use the new
   * pair; on any failure the old one stays in use and the error says why.
   */
  async reload(): Promise<void> {
    const { certPath, keyPath } = this.#pair;
    let pair: LoadedCertificate;
    let context: SecureContext;
    try {
      pair = { ...(await readPair(certPath, keyPath)), certPath, keyPath, created: false };
      context = makeContext(pair);
    } catch (err) {
      throw new Error(`TLS reload failed, still using the previous certificate: ${(err as Error).message}`, { cause: err });
    }
    this.#pair = pair;
    this.#context = context;
    // Clients that send no SNI (those connecting by IP address) never reach
    // SNICallback; they get the server's default context, so replace it too.
    for (const server of this.#servers) server.setSecureContext(contextOptions(pair));
  }

  /**
   * Options for tls.createServer(). key/cert form the default context (for
   * clients without SNI); SNICallback hands out the current context at each
   * handshake. Pass the server to follow() (or use createServer()) so the
   * default context is replaced on reload too.
   */
  serverOptions(): TlsOptions {
    return {
      ...contextOptions(this.#pair),
      SNICallback: (_servername, done) => done(null, this.#context),
    };
  }

  /** Keeps `server`'s default context in step with reload() until it closes. */
  follow(server: Server): void {
    this.#servers.add(server);
    server.once('close', () => this.#servers.delete(server));
  }

  /** tls.createServer(serverOptions()) that follows reloads. */
  createServer(listener?: (socket: tls.TLSSocket) => void): Server {
    const server = tls.createServer(this.serverOptions(), listener);
    this.follow(server);
    return server;
  }

  /**
   * Options for the STARTTLS swap: new tls.TLSSocket(socket, upgradeOptions()).
   * Call it at upgrade time, not once at start, to get the current context.
   */
  upgradeOptions(): TLSSocketOptions {
    return { isServer: true, secureContext: this.#context };
  }
}

function contextOptions(pair: LoadedCertificate) {
  return { key: pair.key, cert: pair.cert, minVersion: MIN_VERSION } as const;
}

function makeContext(pair: LoadedCertificate): SecureContext {
  try {
    return tls.createSecureContext(contextOptions(pair));
  } catch (err) {
    throw new Error(`TLS cannot use ${pair.certPath} with ${pair.keyPath}: ${(err as Error).message}`, { cause: err });
  }
}

// An expired certificate still encrypts, and MTAs that do not verify keep
// working, so this warns rather than refusing to start.
function warnIfExpired(pair: LoadedCertificate, log?: (msg: string) => void): void {
  const validTo = new X509Certificate(pair.cert).validToDate;
  if (validTo.getTime() < Date.now()) log?.(`TLS certificate ${pair.certPath} expired on ${validTo.toISOString()}`);
}
