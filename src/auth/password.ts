// Password hashing for the passwd file.
//
// We store passwords only as scrypt hashes (RFC 7914), a deliberately slow,
// memory-hard function, so a stolen passwd file does not give away the
// passwords. Each hash is a self-describing string in the style of the
// "PHC string format":
//
//     $scrypt$ln=14,r=8,p=1$<salt, base64>$<hash, base64>
//
// "ln" is log2(N), the cost. Because the parameters travel with the hash, we
// can raise the cost later and old hashes keep verifying. The string never
// contains ':' (base64 uses A-Z a-z 0-9 + / =), so it fits in a
// "name:hash" line.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';

// Cost parameters for new hashes: N = 2^14, r = 8, p = 1 needs 16 MiB of
// memory and takes about 50 ms, the classic interactive-login setting.
const LOG2_N = 14;
const BLOCK_SIZE = 8; // r
const PARALLELISM = 1; // p
const SALT_BYTES = 16;
const KEY_BYTES = 32;

// Limits for parameters read back from a stored hash. The passwd file is
// trusted, but a typo such as ln=40 should fail cleanly rather than ask for
// terabytes of memory.
const MAX_LOG2_N = 20;
const MAX_R = 32;
const MAX_P = 16;

/** Hash a password for storage. Different every call, thanks to the salt. */
export async function hashPassword(plain: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const params = { ln: LOG2_N, r: BLOCK_SIZE, p: PARALLELISM };
  const key = await derive(plain, salt, KEY_BYTES, params);
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * Check a password against a stored hash. Returns false, never throws, when
 * the stored string is malformed: one bad line in passwd must not turn a
 * login attempt into a crash.
 */
export async function verifyPassword(plain: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored);
  if (parsed === null) return false;
  let key: Buffer;
  try {
    key = await derive(plain, parsed.salt, parsed.hash.length, parsed.params);
  } catch {
    return false;
  }
  // Compare in constant time so the response time does not reveal how many
  // leading bytes of a guess were right.
  return timingSafeEqual(key, parsed.hash);
}

// A hash of a password nobody knows, computed once on first use.
let dummyHash: Promise<string> | undefined;

/**
 * Spend the same time as a real verification, then return false. Used when
 * the user does not exist: answering "no" instantly would let an attacker
 * find out which account names exist by timing the replies.
 */
export async function verifyAgainstDummy(plain: string): Promise<false> {
  dummyHash ??= hashPassword(randomBytes(SALT_BYTES).toString('base64'));
  await verifyPassword(plain, await dummyHash);
  return false;
}

type ScryptParams = { ln: number; r: number; p: number };
type ParsedHash = { params: ScryptParams; salt: Buffer; hash: Buffer };

// Parse "$scrypt$ln=14,r=8,p=1$salt$hash"; null when anything is off.
function parseHash(stored: string): ParsedHash | null {
  const parts = stored.split('$');
  // A leading '$' makes parts[0] the empty string.
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== 'scrypt') return null;
  const params = parseParams(parts[2]);
  if (params === null) return null;
  const salt = decodeBase64(parts[3]);
  const hash = decodeBase64(parts[4]);
  if (salt === null || hash === null) return null;
  if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
  return { params, salt, hash };
}

function parseParams(text: string): ScryptParams | null {
  const values = new Map<string, number>();
  for (const pair of text.split(',')) {
    const match = /^(ln|r|p)=(\d{1,3})$/.exec(pair);
    if (match === null || values.has(match[1])) return null;
    values.set(match[1], Number(match[2]));
  }
  const ln = values.get('ln');
  const r = values.get('r');
  const p = values.get('p');
  if (ln === undefined || r === undefined || p === undefined) return null;
  if (ln < 1 || ln > MAX_LOG2_N || r < 1 || r > MAX_R || p < 1 || p > MAX_P) return null;
  return { ln, r, p };
}

// Buffer.from(..., 'base64') silently skips junk, so check the alphabet first.
function decodeBase64(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}

function derive(plain: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.ln;
  const options: ScryptOptions = {
    N,
    r: params.r,
    p: params.p,
    // scrypt needs about 128 * N * r bytes; Node refuses above maxmem
    // (32 MiB by default), so allow what these parameters need plus slack.
    maxmem: 128 * N * params.r * 2 + 1024 * 1024,
  };
  // NFC normalisation (as RFC 8265 asks for passwords): the same password
  // typed on two systems may arrive as different Unicode sequences.
  const password = plain.normalize('NFC');
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}
