// The server's TLS certificate: where it comes from and how it is swapped.
//
// The pair lives in <dataDir>/tls (cert.pem, key.pem) unless the config names
// other files. On first start we make a self-signed pair there (selfsigned.ts),
// so STARTTLS works out of the box; a real certificate is installed there by
// scripts/certbot-deploy-hook.ts, which then sends SIGHUP, and SIGHUP calls
// TlsCredentials.reload().
//
// The server reads the files as the unprivileged user it runs as, at start
// and on reload alike: a key only root can read would load once and then
// never again, and the old certificate would quietly expire.
//
// Invariants:
//  - Handshakes always use the *current* context: implicit TLS and STARTTLS
//    alike ask for `context` at the moment the handshake starts
//    (wire/listener.ts, wire/connection.ts). Nobody keeps a context of their own.
//  - A failed reload changes nothing: the new pair is read and checked
//    completely before it replaces the old, so a bad renewal cannot take
//    TLS down. Connections already open keep the context they started with.
//  - The key is written before the certificate, so a cert.pem we made
//    always has its key.pem beside it (see createPair).

import { X509Certificate, createPrivateKey } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { SecureContext, TLSSocketOptions } from 'node:tls';
import { userInfo } from 'node:os';
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

// Read both files and check them (checkPair).
async function readPair(certPath: string, keyPath: string): Promise<{ cert: string; key: string }> {
  const cert = await readNamed(certPath, 'TLS certificate');
  const key = await readNamed(keyPath, 'TLS private key');
  checkPair(cert, key, certPath, keyPath);
  return { cert, key };
}

/**
 * Check that a PEM certificate (chain) and key parse and belong together,
 * with errors that name the file, since "bad decrypt" or "key values
 * mismatch" from OpenSSL tells an operator nothing about which file to fix.
 */
export function checkPair(cert: string, key: string, certPath: string, keyPath: string): void {
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
}

async function readNamed(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? `is not readable by user ${userInfo().username} (permission denied): ` +
            'install the pair where that user can read it, e.g. with scripts/certbot-deploy-hook.ts (see the README)'
          : (err as Error).message;
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
 *   new tls.TLSSocket(socket, creds.upgradeOptions());      // a handshake, now
 *   process.on('SIGHUP', () => creds.reload().catch(log));  // renewal
 */
export class TlsCredentials {
  #pair: LoadedCertificate;
  #context: SecureContext;

  // Use TlsCredentials.load(): construction needs the files read first.
  private constructor(pair: LoadedCertificate) {
    this.#pair = pair;
    this.#context = makeContext(pair);
  }

  static async load(opts: CertificateOptions): Promise<TlsCredentials> {
    return new TlsCredentials(await loadOrCreateCertificate(opts));
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

  /** When the certificate being served stops being valid. */
  get validTo(): Date {
    return new X509Certificate(this.#pair.cert).validToDate;
  }

  /**
   * A sentence for the log when the served certificate has expired or
   * expires within EXPIRY_WARNING_DAYS; null while all is well.
   */
  expiryWarning(now = new Date()): string | null {
    return expiryWarning(this.#pair.certPath, this.validTo, now);
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
  }

  /**
   * Options for a server-side handshake on an accepted socket (implicit TLS)
   * or after STARTTLS: new tls.TLSSocket(socket, upgradeOptions()). Call it
   * when the handshake starts, not once at start, to get the current context.
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

/**
 * Warn this many days ahead. Let's Encrypt certificates last 90 days and
 * certbot renews them 30 days before the end, so a warning means renewal
 * (or installing the renewal) has failed for two weeks.
 */
export const EXPIRY_WARNING_DAYS = 14;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * An expired certificate still encrypts, and MTAs that do not verify keep
 * working, so expiry is a warning in the log, never a refusal to start.
 */
export function expiryWarning(certPath: string, validTo: Date, now: Date): string | null {
  const left = validTo.getTime() - now.getTime();
  if (left < 0) return `TLS certificate ${certPath} expired on ${validTo.toISOString()}`;
  if (left < EXPIRY_WARNING_DAYS * DAY_MS) {
    return `TLS certificate ${certPath} expires in ${Math.floor(left / DAY_MS)} days, on ${validTo.toISOString()}: renew it`;
  }
  return null;
}
