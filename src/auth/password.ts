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
//
// Every scrypt computation (hashing, verifying, and the dummy verification
// for unknown users) goes through one PasswordQueue (password-queue.ts), so a
// burst of logins never runs more of them at once than the queue allows.

import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { PasswordQueue, PasswordQueueFullError } from './password-queue.ts';
import type { PasswordQueueOptions } from './password-queue.ts';

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

/** node:crypto's scrypt as a promise; tests pass their own to count or hold computations. */
export type ScryptFunction = (password: string, salt: Buffer, keyLength: number, options: ScryptOptions) => Promise<Buffer>;

const nodeScrypt: ScryptFunction = (password, salt, keyLength, options) =>
  new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });

/** What Accounts needs to check passwords; a PasswordHasher, or a stand-in in tests. */
export interface PasswordVerifier {
  verify(plain: string, stored: string): Promise<boolean>;
  verifyAgainstDummy(plain: string): Promise<false>;
}

export interface PasswordHasherOptions extends PasswordQueueOptions {
  scrypt?: ScryptFunction;
}

export class PasswordHasher implements PasswordVerifier {
  private readonly queue: PasswordQueue;
  private readonly scrypt: ScryptFunction;
  // A hash of a password nobody knows, computed once on first use.
  private dummyHash: Promise<string> | undefined;

  constructor(options: PasswordHasherOptions = {}) {
    this.queue = new PasswordQueue(options);
    this.scrypt = options.scrypt ?? nodeScrypt;
  }

  /** Hash a password for storage. Different every call, thanks to the salt. */
  async hash(plain: string): Promise<string> {
    const salt = randomBytes(SALT_BYTES);
    const params = { ln: LOG2_N, r: BLOCK_SIZE, p: PARALLELISM };
    const key = await this.derive(plain, salt, KEY_BYTES, params);
    return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`;
  }

  /**
   * Check a password against a stored hash. Returns false, never throws, when
   * the stored string is malformed: one bad line in passwd must not turn a
   * login attempt into a crash. Rejects with PasswordQueueFullError when too
   * many checks are waiting: that is "busy", not "wrong".
   */
  async verify(plain: string, stored: string): Promise<boolean> {
    const parsed = parseHash(stored);
    if (parsed === null) return false;
    let key: Buffer;
    try {
      key = await this.derive(plain, parsed.salt, parsed.hash.length, parsed.params);
    } catch (err) {
      if (err instanceof PasswordQueueFullError) throw err;
      return false; // scrypt refused the parameters: a bad stored hash
    }
    // Compare in constant time so the response time does not reveal how many
    // leading bytes of a guess were right.
    return timingSafeEqual(key, parsed.hash);
  }

  /**
   * Spend the same time as a real verification, then return false. Used when
   * the user does not exist: answering "no" instantly would let an attacker
   * find out which account names exist by timing the replies.
   */
  async verifyAgainstDummy(plain: string): Promise<false> {
    this.dummyHash ??= this.hash(randomBytes(SALT_BYTES).toString('base64'));
    // A failed first computation (the queue was full) must not be kept.
    const dummy = await this.dummyHash.catch((err: unknown) => {
      this.dummyHash = undefined;
      throw err;
    });
    await this.verify(plain, dummy);
    return false;
  }

  /** For logs and tests: computations running and waiting. */
  get load(): { running: number; waiting: number } {
    return this.queue.load;
  }

  private derive(plain: string, salt: Buffer, length: number, params: ScryptParams): Promise<Buffer> {
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
    return this.queue.run(() => this.scrypt(password, salt, length, options));
  }
}

/** The process's one hasher: the server and `adduser` share its queue. */
export const defaultPasswordHasher = new PasswordHasher();

/** Hash a password for storage, through the shared queue. */
export const hashPassword = (plain: string): Promise<string> => defaultPasswordHasher.hash(plain);

/** Check a password against a stored hash, through the shared queue. */
export const verifyPassword = (plain: string, stored: string): Promise<boolean> => defaultPasswordHasher.verify(plain, stored);

/** A verification that always fails, for unknown users, through the shared queue. */
export const verifyAgainstDummy = (plain: string): Promise<false> => defaultPasswordHasher.verifyAgainstDummy(plain);

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
