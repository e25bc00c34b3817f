// `node scripts/dkim-keygen.ts --domain example.org [--selector mail]
//  [--algorithm rsa|ed25519] [--bits 2048] [--out DIR] [--force]`:
// make a DKIM signing key and print the DNS record that publishes it.
//
// The private key stays on the server (the relay signs with it, see
// src/relay/dkim.ts); the public half goes into DNS as a TXT record at
// <selector>._domainkey.<domain> (RFC 6376 3.6.2.1), where receivers look
// it up to check our signatures. The selector lets a domain have several
// keys at once, which is how keys are rotated: publish a new selector,
// switch the relay to it, remove the old record later.
//
// RSA 2048 is the safe default: every receiver understands it (RFC 8301
// 3.2). Ed25519 (RFC 8463) is shorter and faster but not yet checked by
// every receiver, so domains that use it usually sign with both.

import { generateKeyPairSync } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/store/safeio.ts';
import { dataDirOf, loadConfig } from '../src/config.ts';
import { becomeOwnerOf } from '../src/privileges.ts';
import { checkDkimName, dkimRecordName, dkimTxtRecord } from '../src/relay/dkim.ts';
import { exists, runWhenStarted, usageErrorFor } from './lib/cli.ts';

const USAGE =
  'usage: node scripts/dkim-keygen.ts --domain DOMAIN [--selector mail] [--algorithm rsa|ed25519] [--bits 2048] [--out DIR] [--config FILE] [--force]';
const usageError = usageErrorFor('dkim-keygen', USAGE);

/** Run the command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        domain: { type: 'string' },
        selector: { type: 'string', default: 'mail' },
        algorithm: { type: 'string', default: 'rsa' },
        bits: { type: 'string' },
        out: { type: 'string' }, // default: <data directory>/dkim
        config: { type: 'string' },
        force: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (!values.domain) return usageError('--domain is required');
  try {
    checkDkimName('domain', values.domain);
    checkDkimName('selector', values.selector);
  } catch (err) {
    return usageError((err as Error).message.replace(/^dkim: /, ''));
  }
  if (values.algorithm !== 'rsa' && values.algorithm !== 'ed25519') return usageError('--algorithm must be rsa or ed25519');
  if (values.algorithm === 'ed25519' && values.bits !== undefined) return usageError('--bits applies to rsa keys only');
  const bits = Number(values.bits ?? '2048');
  // RFC 8301 3.2: at least 1024 bits; above 4096 the record no longer fits
  // comfortably in one DNS answer and signing gets slow for no real gain.
  if (!/^\d+$/.test(values.bits ?? '2048') || bits < 1024 || bits > 4096) return usageError('--bits must be a whole number from 1024 to 4096');

  // The data directory by the server's rule (config.ts dataDirOf); as root,
  // write as its owner, so the relay's unprivileged user can read the key.
  const dataDir = dataDirOf(loadConfig(values.config));
  const out = resolve(values.out ?? join(dataDir, 'dkim'));
  if (values.out === undefined) becomeOwnerOf(dataDir);
  const keyPath = join(out, `${values.selector}.${values.domain}.key.pem`);
  // Replacing a key whose public half is already in DNS breaks every
  // signature until the record is updated: refuse unless told to.
  if (!values.force && (await exists(keyPath))) {
    return usageError(`${keyPath} already exists (use --force to replace it)`, false);
  }

  const { privateKey } =
    values.algorithm === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: bits, publicExponent: 0x10001 })
      : generateKeyPairSync('ed25519');
  await mkdir(out, { recursive: true, mode: 0o700 });
  await writeFileAtomic(keyPath, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });

  const name = dkimRecordName(values.selector, values.domain);
  console.log(`private key: ${keyPath} (keep it secret: mode 0600)`);
  console.log('publish this DNS TXT record:');
  console.log(`name:  ${name}`);
  console.log(`value: ${txtStrings(dkimTxtRecord(privateKey))}`);
  console.log(`zone file line:\n${name}. IN TXT ( ${txtStrings(dkimTxtRecord(privateKey))} )`);
  if (values.algorithm === 'rsa' && bits < 2048) console.log('note: RFC 8301 recommends 2048-bit RSA keys');
  const entry = { domain: values.domain, selector: values.selector, keyFile: keyPath };
  console.log(`then add it to the config's relay.dkim.keys:\n${JSON.stringify(entry)}`);
  return 0;
}

/**
 * A TXT value as DNS zone files and providers' forms take it: quoted
 * strings of at most 255 characters each (RFC 1035 3.3.14: a TXT record is
 * a list of such strings), which DKIM verifiers join back together (RFC
 * 6376 3.6.2.2). A 2048-bit RSA record is about 400 characters, so it
 * always needs splitting.
 */
export function txtStrings(value: string): string {
  const parts: string[] = [];
  for (let at = 0; at < value.length || parts.length === 0; at += 255) {
    parts.push(`"${value.slice(at, at + 255).replace(/["\\]/g, '\\$&')}"`);
  }
  return parts.join(' ');
}

runWhenStarted(import.meta.url, 'dkim-keygen', main);
