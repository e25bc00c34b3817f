// An independent DKIM verifier for the tests, written from RFC 6376 section
// 6.1 and RFC 8463, deliberately sharing no code with src/relay/dkim.ts or
// dkim-canon.ts: a canonicalisation bug in the signer must not be repeated
// here, or the tests would pass with both sides wrong. It works on whole
// strings with regular expressions (the signer streams bytes through a state
// machine), and it also checks itself against the signed example in RFC 8463
// Appendix A.3 (see dkim.test.ts).
//
// Only what the tests need: c=relaxed/relaxed, rsa-sha256 and
// ed25519-sha256, the key given directly instead of looked up in DNS.

import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

export interface VerifyResult {
  ok: boolean;
  /** Why it failed, or "pass". */
  reason: string;
  tags: Map<string, string>;
}

/** RFC 6376 3.2: `tag=value; tag=value`, with white space (and folds) allowed around everything. */
export function parseTagList(text: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const spec of text.split(';')) {
    if (spec.trim() === '') continue; // a trailing ";" is allowed
    const eq = spec.indexOf('=');
    if (eq < 0) throw new Error(`tag without "=": ${JSON.stringify(spec)}`);
    const name = spec.slice(0, eq).trim();
    if (tags.has(name)) throw new Error(`duplicate tag ${name}`); // RFC 6376 3.2: a permanent error
    tags.set(name, spec.slice(eq + 1).trim());
  }
  return tags;
}

/** A public key from a DKIM TXT record value, `v=DKIM1; k=...; p=...` (RFC 6376 3.6.1, RFC 8463 4.2). */
export function publicKeyFromTxt(record: string): KeyObject {
  const tags = parseTagList(record);
  const p = Buffer.from((tags.get('p') ?? '').replace(/\s+/g, ''), 'base64');
  if ((tags.get('k') ?? 'rsa') === 'ed25519') {
    if (p.length !== 32) throw new Error(`an ed25519 p= must be 32 bytes, not ${p.length}`);
    // Wrap the raw key in the fixed SubjectPublicKeyInfo header of RFC 8410.
    return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), p]), format: 'der', type: 'spki' });
  }
  return createPublicKey({ key: p, format: 'der', type: 'spki' });
}

/** RFC 6376 3.4.4, on the whole body: the relaxed form (a string of latin1 "bytes"). */
export function relaxedBody(body: string): string {
  const lines = body.split(/\r?\n/).map((line) => line.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.length === 0 ? '' : lines.join('\r\n') + '\r\n';
}

/** RFC 6376 3.4.2, on one field (folds included, line end excluded). */
export function relaxedHeader(field: string): string {
  const unfolded = field.replace(/\r?\n(?=[ \t])/g, '');
  const match = /^([^:]*):(.*)$/s.exec(unfolded);
  if (!match) throw new Error(`not a header field: ${JSON.stringify(field)}`);
  const name = match[1].trim().toLowerCase();
  const value = match[2].replace(/[ \t]+/g, ' ').trim();
  return `${name}:${value}`;
}

/** Splits a message into its fields (each with its folds, without its line end) and its body. */
export function splitMessage(message: string): { fields: string[]; body: string } {
  const blank = /\r?\n\r?\n/.exec(message);
  const head = blank ? message.slice(0, blank.index) : message;
  const body = blank ? message.slice(blank.index + blank[0].length) : '';
  const fields: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) fields[fields.length - 1] += '\r\n' + line;
    else fields.push(line);
  }
  return { fields, body };
}

function nameOf(field: string): string {
  return field.slice(0, field.indexOf(':')).trim().toLowerCase();
}

/**
 * Verifies the `index`th DKIM-Signature field of `message` (counting from
 * the top) with `publicKey`, following RFC 6376 6.1.
 */
export function verifyDkim(message: Buffer | string, publicKey: KeyObject, index = 0): VerifyResult {
  const text = typeof message === 'string' ? message : message.toString('latin1');
  const { fields, body } = splitMessage(text);
  const signatureField = fields.filter((field) => nameOf(field) === 'dkim-signature')[index];
  if (signatureField === undefined) return { ok: false, reason: 'no DKIM-Signature field', tags: new Map() };
  const tags = parseTagList(signatureField.slice(signatureField.indexOf(':') + 1));
  const fail = (reason: string): VerifyResult => ({ ok: false, reason, tags });

  // RFC 6376 6.1.1: the checks made before any hashing.
  for (const required of ['v', 'a', 'b', 'bh', 'd', 'h', 's']) {
    if (!tags.has(required)) return fail(`missing ${required}=`);
  }
  if (tags.get('v') !== '1') return fail('v= is not 1');
  const algorithm = tags.get('a');
  if (algorithm !== 'rsa-sha256' && algorithm !== 'ed25519-sha256') return fail(`unsupported a=${algorithm}`);
  if ((tags.get('c') ?? 'simple/simple') !== 'relaxed/relaxed') return fail(`unsupported c=${tags.get('c')}`);
  if (tags.has('l')) return fail('l= is not supported');
  const signedNames = tags.get('h')!.split(':').map((name) => name.trim().toLowerCase());
  if (!signedNames.includes('from')) return fail('h= does not include from');

  // RFC 6376 6.1.3 step 1: the body hash.
  const bodyHash = createHash('sha256').update(Buffer.from(relaxedBody(body), 'latin1')).digest('base64');
  if (bodyHash !== tags.get('bh')!.replace(/\s+/g, '')) return fail('body hash mismatch');

  // RFC 6376 5.4.2: the nth use of a name takes the nth instance counting up from the bottom.
  const used = new Map<string, number>();
  let data = '';
  for (const name of signedNames) {
    const instances = fields.filter((field) => nameOf(field) === name);
    const taken = used.get(name) ?? 0;
    used.set(name, taken + 1);
    const field = instances[instances.length - 1 - taken];
    if (field !== undefined) data += relaxedHeader(field) + '\r\n';
  }
  // RFC 6376 3.7: the signature field itself last, b= emptied (white space
  // inside the value goes with it), no CRLF after it.
  const emptied = signatureField.replace(/((?:^[^:]*:|;)[ \t\r\n]*b[ \t\r\n]*=)[^;]*/, '$1');
  data += relaxedHeader(emptied);

  const signature = Buffer.from(tags.get('b')!.replace(/\s+/g, ''), 'base64');
  const signed = Buffer.from(data, 'latin1');
  const ok =
    algorithm === 'rsa-sha256'
      ? cryptoVerify('sha256', signed, publicKey, signature)
      : cryptoVerify(null, createHash('sha256').update(signed).digest(), publicKey, signature); // RFC 8463 3
  return ok ? { ok, reason: 'pass', tags } : fail('signature mismatch');
}
