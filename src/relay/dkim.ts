// DKIM signing for the mail the relay sends (RFC 6376, with Ed25519 keys
// from RFC 8463). A DKIM-Signature field lets the receiving server check,
// with a public key published in our DNS, that the message really left a
// server of this domain and that the body and the important header fields
// were not changed on the way. DMARC then ties that domain to the From
// address the reader sees.
//
// What we sign, and how (RFC 6376 section numbers beside each choice):
//  - c=relaxed/relaxed (3.4.2, 3.4.4; see dkim-canon.ts), the setting
//    almost every signer uses, because "simple" breaks as soon as a
//    forwarder re-folds a header line;
//  - bh= the SHA-256 of the canonical body (3.7), computed as the body
//    streams past, so memory does not grow with the message;
//  - h= the fields a reader relies on, in the order they appear (5.4, 5.4.1),
//    with From listed once more than it occurs ("oversigning"), so nobody
//    can add a second From without breaking the signature (8.15);
//  - b= the signature over the selected header fields and this field with
//    b= empty (3.5, 3.7); rsa-sha256 (3.3.1) or ed25519-sha256 (RFC 8463 3).
//
// The verifier in test/relay/dkim-verify.ts is written separately from the
// RFC, so a mistake here does not simply repeat itself there.

import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { splitHeaderFields } from '../mime/header.ts';
import type { HeaderField } from '../mime/header.ts';
import { RelaxedBodyHasher, relaxedHeaderField } from './dkim-canon.ts';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKeyPem: string;
}

export interface DkimOptions {
  /** Field names to sign when present (case-insensitive). Default DEFAULT_SIGNED_HEADERS. From is always signed. */
  headers?: string[];
  /** The signing time for t=. Default: now. */
  now?: Date;
}

/**
 * The fields signed when present. This is OpenDKIM's default list of fields
 * that "should be signed" (the RFC 6376 5.4.1 recommendations plus Sender,
 * Message-ID and the MIME fields), which rspamd's default also covers, with
 * List-Unsubscribe-Post added because RFC 8058 3.3 requires it to be signed.
 * Left out on purpose: Received and Return-Path (added or rewritten on the
 * way, RFC 6376 5.4.1), and any DKIM-Signature or ARC fields.
 */
export const DEFAULT_SIGNED_HEADERS: readonly string[] = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-id', 'content-description',
  'resent-date', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-message-id',
  'in-reply-to', 'references',
  'list-id', 'list-help', 'list-unsubscribe', 'list-unsubscribe-post', 'list-subscribe', 'list-post',
  'list-owner', 'list-archive',
];

/** RFC 8301 3.2: signers MUST use RSA keys of at least 1024 bits (2048 recommended). */
const MIN_RSA_BITS = 1024;

/** Folded lines of the DKIM-Signature field stay within RFC 5322 2.1.1's 78 characters. */
const LINE_LIMIT = 78;

/**
 * Signs a message: returns the complete `DKIM-Signature:` field, folded,
 * ending in CRLF, to put in front of the header. `header` is the header
 * section without the blank line (LF or CRLF); `body` streams the body.
 */
export async function dkimSign(
  header: Buffer,
  body: AsyncIterable<Buffer>,
  key: DkimKey,
  opts: DkimOptions = {},
): Promise<string> {
  checkDkimName('domain', key.domain);
  checkDkimName('selector', key.selector);
  const privateKey = createPrivateKey(key.privateKeyPem);
  const keyAlgorithm = algorithmOf(privateKey);
  if (keyAlgorithm !== key.algorithm) {
    throw new Error(`dkim: the key for ${key.selector}._domainkey.${key.domain} is ${keyAlgorithm}, not ${key.algorithm}`);
  }

  const fields = splitHeaderFields(header);
  const names = chooseSignedHeaders(fields, opts.headers ?? DEFAULT_SIGNED_HEADERS);

  const bodyHasher = new RelaxedBodyHasher();
  for await (const chunk of body) bodyHasher.update(chunk);
  const bodyHash = bodyHasher.digest().toString('base64');

  const seconds = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  // b= goes last, on a line of its own, so the field we sign (b= empty) is
  // exactly the field we send with the value cut off (RFC 6376 3.5, b=).
  const unsigned = foldTags(
    [`v=1;`, `a=${key.algorithm};`, 'c=relaxed/relaxed;', `d=${key.domain};`, `s=${key.selector};`, `t=${seconds};`],
    names,
    bodyHash,
  ) + '\r\n b=';
  const signature = signHeaderData(headerHashInput(fields, names, unsigned), privateKey, key.algorithm);
  return unsigned + foldBase64(signature.toString('base64'), ' b='.length) + '\r\n';
}

/** Reads a PEM private key (PKCS#8 or PKCS#1) and picks the algorithm from the key type. */
export async function loadDkimKey(domain: string, selector: string, pemPath: string): Promise<DkimKey> {
  checkDkimName('domain', domain);
  checkDkimName('selector', selector);
  const privateKeyPem = await readFile(pemPath, 'utf8');
  let key: KeyObject;
  try {
    key = createPrivateKey(privateKeyPem);
  } catch (err) {
    throw new Error(`dkim: ${pemPath} is not a PEM private key (${(err as Error).message})`);
  }
  return { domain, selector, algorithm: algorithmOf(key), privateKeyPem };
}

/**
 * The keys to sign with, by domain (lower case): one key per signing domain,
 * each domain at most once. Any key that cannot be used stops start-up.
 */
export async function loadDkimKeys(entries: readonly { domain: string; selector: string; keyFile: string }[]): Promise<Map<string, DkimKey>> {
  const keys = new Map<string, DkimKey>();
  for (const entry of entries) {
    const domain = entry.domain.toLowerCase();
    if (!entry.selector || !entry.keyFile) throw new Error(`dkim: the key for ${JSON.stringify(domain)} needs a selector and a keyFile`);
    if (keys.has(domain)) throw new Error(`dkim: two keys for ${domain}: give each domain one`);
    keys.set(domain, await loadDkimKey(domain, entry.selector, entry.keyFile));
  }
  return keys;
}

/**
 * The domain of the message's From: address (RFC 5322 3.6.2), lower case:
 * the domain a signature has to carry in d= for DMARC (RFC 7489 3.1.1).
 * Null when there is no single From: field with a single address in it;
 * such mail is not signed.
 */
export function fromDomain(header: Buffer): string | null {
  const fields = splitHeaderFields(header).filter((field) => field.name.toLowerCase() === 'from');
  if (fields.length !== 1) return null;
  const raw = fields[0].raw.toString('utf8');
  // A quoted display name or a comment may hold anything ("a, <b@c>"): blank them out first.
  let value = raw.slice(raw.indexOf(':') + 1).replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (let previous = ''; previous !== value; ) {
    previous = value;
    value = value.replace(/\((?:[^()\\]|\\.)*\)/g, ' '); // innermost comments first (RFC 5322 3.2.2 nests them)
  }
  if (value.includes(',')) return null; // a list of authors
  const angle = /<([^<>]*)>/.exec(value);
  const address = (angle ? angle[1] : value).trim();
  const at = address.lastIndexOf('@');
  if (at < 0) return null;
  return address.slice(at + 1).trim().toLowerCase();
}

/** rsa-sha256 or ed25519-sha256 for a key; anything else (or a short RSA key) is refused. */
export function algorithmOf(key: KeyObject): DkimAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519-sha256';
  if (key.asymmetricKeyType === 'rsa') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw new Error(`dkim: a ${bits}-bit RSA key is too short (RFC 8301 3.2: at least ${MIN_RSA_BITS})`);
    return 'rsa-sha256';
  }
  throw new Error(`dkim: ${key.asymmetricKeyType ?? 'this'} keys are not used for DKIM: use RSA or Ed25519`);
}

/**
 * The h= list: every present field whose name is in `wanted`, in header
 * order, then "from" once more. Listing a name more often than it occurs
 * signs the absence of further instances (RFC 6376 5.4.2, 8.15), so a
 * second From added later breaks the signature. A message with no From at
 * all still gets h=from (its absence is signed) rather than no signature:
 * RFC 6376 6.1.1 has verifiers ignore any signature whose h= lacks From.
 */
export function chooseSignedHeaders(fields: readonly HeaderField[], wanted: readonly string[]): string[] {
  const want = new Set(wanted.map((name) => name.toLowerCase()));
  want.add('from'); // RFC 6376 5.4: From MUST be signed
  const names = fields.map((field) => field.name.toLowerCase()).filter((name) => want.has(name));
  names.push('from');
  return names;
}

/**
 * The bytes the b= signature covers (RFC 6376 3.7): the fields named in h=
 * in relaxed form, each ending in CRLF, then the DKIM-Signature field itself
 * (with b= empty) in relaxed form and without a final CRLF.
 */
export function headerHashInput(fields: readonly HeaderField[], names: readonly string[], signatureField: string): Buffer {
  // RFC 6376 5.4.2: for a name listed n times, sign the last instance first,
  // then the one above it, and so on; a name with no instance left adds nothing.
  const instances = new Map<string, HeaderField[]>();
  for (const field of fields) {
    const name = field.name.toLowerCase();
    instances.set(name, [...(instances.get(name) ?? []), field]);
  }
  let text = '';
  for (const name of names) {
    const field = instances.get(name.toLowerCase())?.pop();
    if (field) text += relaxedHeaderField(field.raw) + '\r\n';
  }
  text += relaxedHeaderField(signatureField);
  return Buffer.from(text, 'latin1'); // latin1 gives back the bytes the header held
}

/** The b= value: RSA PKCS#1 v1.5 over SHA-256, or RFC 8463's Ed25519 over the SHA-256 hash. */
export function signHeaderData(data: Buffer, key: KeyObject, algorithm: DkimAlgorithm): Buffer {
  if (algorithm === 'rsa-sha256') return cryptoSign('sha256', data, key);
  // RFC 8463 3: ed25519-sha256 signs the 32-byte SHA-256 digest with pure
  // Ed25519 (no prehash mode), so the data is hashed here, by us.
  return cryptoSign(null, createHash('sha256').update(data).digest(), key);
}

/**
 * The TXT record that publishes a key (RFC 6376 3.6.1): for RSA the
 * SubjectPublicKeyInfo DER in base64; for Ed25519 the bare 32-byte public
 * key (RFC 8463 4.2). A private key is accepted too; its public half is used.
 */
export function dkimTxtRecord(key: KeyObject): string {
  const publicKey = createPublicKey(key);
  if (algorithmOf(publicKey) === 'ed25519-sha256') {
    const { x } = publicKey.export({ format: 'jwk' }); // x is the raw key, base64url
    return `v=DKIM1; k=ed25519; p=${Buffer.from(x as string, 'base64url').toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${publicKey.export({ format: 'der', type: 'spki' }).toString('base64')}`;
}

/** The DNS name of a key's TXT record (RFC 6376 3.6.2.1). */
export function dkimRecordName(selector: string, domain: string): string {
  return `${selector}._domainkey.${domain}`;
}

/**
 * Refuses a domain or selector that is not a plain DNS name: either goes
 * into a tag value and a DNS query, where a ";" or a space would break it
 * (RFC 6376 3.5 d= and s=: letters, digits, hyphens, dots).
 */
export function checkDkimName(what: 'domain' | 'selector', name: string): void {
  const label = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
  if (name.length > 253 || !new RegExp(`^${label}(?:\\.${label})*$`).test(name)) {
    throw new Error(`dkim: ${JSON.stringify(name)} is not a valid ${what} (letters, digits, hyphens and dots)`);
  }
}

/**
 * Lays out everything before b=: the tags joined by spaces, h= with its
 * names joined by colons, a fold ("CRLF space") wherever the next piece
 * would pass the line limit. Relaxed canonicalisation turns each fold back
 * into one space, so where we fold does not change what is signed.
 */
function foldTags(tags: string[], names: readonly string[], bodyHash: string): string {
  const pieces: { text: string; glue: string }[] = tags.map((text) => ({ text, glue: ' ' }));
  names.forEach((name, i) => {
    const last = i === names.length - 1;
    pieces.push({ text: `${i === 0 ? 'h=' : ''}${name}${last ? ';' : ':'}`, glue: i === 0 ? ' ' : '' });
  });
  pieces.push({ text: `bh=${bodyHash};`, glue: ' ' });

  let out = 'DKIM-Signature:';
  let column = out.length;
  for (const { text, glue } of pieces) {
    if (column + glue.length + text.length > LINE_LIMIT) {
      // RFC 6376 3.2 allows folding white space between tags and, in h=,
      // around the colons; the continuation line starts with a space.
      out += `\r\n ${text}`;
      column = 1 + text.length;
    } else {
      out += glue + text;
      column += glue.length + text.length;
    }
  }
  return out;
}

/** Base64 broken into folded lines; `column` is where the value starts. */
function foldBase64(value: string, column: number): string {
  let out = value.slice(0, LINE_LIMIT - column);
  for (let at = LINE_LIMIT - column; at < value.length; at += LINE_LIMIT - 1) {
    out += `\r\n ${value.slice(at, at + LINE_LIMIT - 1)}`; // RFC 6376 3.5: FWS inside b= is ignored
  }
  return out;
}
