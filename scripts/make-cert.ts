// `node scripts/make-cert.ts --hostname mail.example.org [--out DIR] [--days N]
//  [--alt NAME]... [--force]`: make a self-signed certificate and key.
//
// The server makes one by itself on first start (src/tls/certificates.ts);
// this is for making one ahead of time, for another name, or for tests. It
// prints the SHA-256 fingerprint, which is what a client pins or an
// operator compares by eye when a self-signed certificate is presented.
// No openssl binary is needed: src/tls/selfsigned.ts writes the DER itself.

import { X509Certificate } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/store/safeio.ts';
import { dataDirOf, loadConfig } from '../src/config.ts';
import { becomeOwnerOf } from '../src/privileges.ts';
import { createSelfSignedCertificate } from '../src/tls/selfsigned.ts';
import { exists, runWhenStarted, usageErrorFor } from './lib/cli.ts';

const USAGE = 'usage: node scripts/make-cert.ts --hostname NAME [--out DIR] [--config FILE] [--days N] [--alt NAME]... [--force]';
const usageError = usageErrorFor('make-cert', USAGE);

/** Run the command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        hostname: { type: 'string' },
        out: { type: 'string' }, // default: <data directory>/tls, where the server looks
        config: { type: 'string' },
        days: { type: 'string', default: '825' },
        alt: { type: 'string', multiple: true, default: [] },
        force: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (!values.hostname) return usageError('--hostname is required');
  if (!/^\d+$/.test(values.days) || Number(values.days) < 1) return usageError('--days must be a positive whole number');

  // The data directory by the server's rule (config.ts dataDirOf); as root,
  // write as its owner, so the server's unprivileged user can read the key.
  const dataDir = dataDirOf(loadConfig(values.config));
  const out = resolve(values.out ?? join(dataDir, 'tls'));
  if (values.out === undefined) becomeOwnerOf(dataDir);
  const certPath = join(out, 'cert.pem');
  const keyPath = join(out, 'key.pem');
  // Refuse to replace a certificate by accident: it may be a real one.
  if (!values.force && (await exists(certPath))) {
    return usageError(`${certPath} already exists (use --force to replace it)`, false);
  }

  let pair;
  try {
    pair = createSelfSignedCertificate({ hostname: values.hostname, altNames: values.alt, days: Number(values.days) });
  } catch (err) {
    return usageError((err as Error).message, false);
  }
  await mkdir(out, { recursive: true, mode: 0o700 });
  // Key first, as the server does: a cert.pem never lacks its key.
  await writeFileAtomic(keyPath, pair.keyPem, { mode: 0o600 });
  await writeFileAtomic(certPath, pair.certPem, { mode: 0o644 });

  const x509 = new X509Certificate(pair.certPem);
  console.log(`certificate: ${certPath}`);
  console.log(`key:         ${keyPath}`);
  console.log(`subject:     ${x509.subject}`);
  console.log(`names:       ${x509.subjectAltName}`);
  console.log(`sha256:      ${x509.fingerprint256}`);
  console.log(`valid from:  ${x509.validFromDate.toISOString()}`);
  console.log(`valid to:    ${x509.validToDate.toISOString()}`);
  return 0;
}

runWhenStarted(import.meta.url, 'make-cert', main);
