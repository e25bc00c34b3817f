// Remembered logins: a successful password check is kept for a while, so a
// mail client that logs in again and again does not pay scrypt every time.
//
// Mail clients log in often (every POP3 check, several IMAP connections),
// and scrypt is slow on purpose (tens of milliseconds, more on a Raspberry
// Pi) and runs one at a time (password-queue.ts). Dovecot keeps an auth
// cache for the same reason (auth_cache_ttl); we do as it does.
//
// Invariants:
// - No password is kept, only a keyed hash (HMAC with a key made at start-up,
//   never stored) of the account name, its stored password hash and the
//   password. A changed password changes the stored hash, so old entries
//   stop matching.
// - Only successes are remembered: a wrong password never matches, so
//   failures always pay the full scrypt (and the throttle, login.ts).
// - Bounded: entries expire, and past the limit the oldest is dropped.

import { createHmac, randomBytes } from 'node:crypto';

/** How long a successful login is remembered, and how many are. */
const LOGIN_CACHE_MS = 15 * 60_000;
const LOGIN_CACHE_ENTRIES = 1000;

export type LoginCacheOptions = {
  /** Clock, injectable so tests need not sleep. */
  now: () => number;
  ttlMs?: number;
  maxEntries?: number;
};

export class LoginCache {
  readonly #key = randomBytes(32);
  // tag -> expiry time; the Map's order is oldest-first (see remember).
  readonly #expiries = new Map<string, number>();
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(opts: LoginCacheOptions) {
    this.#now = opts.now;
    this.#ttlMs = opts.ttlMs ?? LOGIN_CACHE_MS;
    this.#maxEntries = opts.maxEntries ?? LOGIN_CACHE_ENTRIES;
  }

  /** Whether this name, stored hash and password succeeded recently. */
  has(name: string, storedHash: string, password: string): boolean {
    return (this.#expiries.get(this.#tag(name, storedHash, password)) ?? 0) > this.#now();
  }

  /** Remembers a login that scrypt has just found right. */
  remember(name: string, storedHash: string, password: string): void {
    const tag = this.#tag(name, storedHash, password);
    this.#expiries.delete(tag); // re-insert, so the Map stays oldest-first
    this.#expiries.set(tag, this.#now() + this.#ttlMs);
    if (this.#expiries.size > this.#maxEntries) this.#expiries.delete(this.#expiries.keys().next().value!);
  }

  #tag(name: string, storedHash: string, password: string): string {
    return createHmac('sha256', this.#key).update(`${name}\0${storedHash}\0`).update(password).digest('base64');
  }
}
