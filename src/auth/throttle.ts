// Slowing down password guessing per client address, the way Dovecot's
// auth_penalty does: a growing delay before the password is checked, never a
// refusal.
//
// Each login attempt from an address group (addressGroup(): the IPv4
// address, or the IPv6 /64) first reserves its place: until its password has
// been checked, it counts as a failure. It then waits a delay that grows with
// the failures and reservations of its group (1 s, 2 s, 4 s, 8 s, then 15 s at
// most), counted from the group's latest attempt, and only then is its
// password checked. So:
// - The delay comes before the check, as in Dovecot: a guesser cannot skip it
//   by hanging up early, and the reply time says nothing about the password.
// - Guesses sent all at once are spaced out like guesses sent one after
//   another (up to the cap): while guesses are in flight nobody sees a clean
//   record. Without the reservation, 40 concurrent guesses all saw zero
//   failures and were all checked at once. A clean address may have a few
//   attempts in flight without waiting (FREE_IN_FLIGHT): a mail client opens
//   several connections at once after a restart, each logging in with the
//   right password, and must not wait 1, 2, 4 and 8 s for that.
// - A right password is never refused, only delayed, by 15 s at most. The
//   neighbours behind the same address (a family behind one NAT) wait only
//   while failures are recent, since the delay counts from the latest attempt.
// - A success clears its group's failures, as in Dovecot: the usual culprit is
//   a user who mistyped or a client with an old password, and once someone
//   behind that address has logged in, their next login should not wait. The
//   price: a guesser who owns an account here can reset their own penalty;
//   each guess still costs them an scrypt in the one-at-a-time password queue.
//
// Nothing is kept per account: a per-account lockout, or even a delay, lets
// anyone who knows a user's name lock out or slow down that user from
// anywhere, for ever. Guessing one account from many addresses is slowed by
// scrypt and by the single password queue (password-queue.ts), which caps
// how many passwords the whole server checks per second.
//
// State is in memory and bounded (oldest groups dropped first, a group
// forgotten windowMs after its latest attempt); it is lost on restart, which
// is acceptable: the point is to slow guessing down, not to ban.

import { isIP } from 'node:net';
import { addressGroup, inNetworks, normaliseAddress } from '../wire/client-address.ts';

export interface ThrottleOptions {
  /** Delay after the first failure; doubles with each further one. */
  baseDelayMs?: number;
  /** The longest delay (Dovecot's auth_penalty stops at 15 s too). */
  maxDelayMs?: number;
  /** How long a group's failures are remembered after its latest attempt. */
  windowMs?: number;
  /** Most address groups remembered at once. */
  maxEntries?: number;
  now?: () => number;
}

/** One login attempt, from its reservation to its outcome. */
export interface LoginAttempt {
  /** Wait this long before checking the password. */
  readonly delayMs: number;
  /** Then report one outcome; later calls are ignored. */
  succeeded(): void;
  failed(): void;
  /** The password was never checked (the password queue was full, or an error): not a failure. */
  abandoned(): void;
}

interface Penalty {
  /** Wrong passwords, counted after their check. */
  failures: number;
  /** Attempts reserved and not yet checked. */
  pending: number;
  /** When the latest attempt began or failed. */
  latest: number;
}

type Outcome = 'success' | 'failure' | 'abandoned';

/** Attempts a group without failures may have in flight before they count (Thunderbird opens up to 5 connections). */
export const FREE_IN_FLIGHT = 4;

export class LoginThrottle {
  private readonly groups = new Map<string, Penalty>();
  private readonly options: Required<ThrottleOptions>;

  constructor(options: ThrottleOptions = {}) {
    this.options = {
      baseDelayMs: 1000,
      maxDelayMs: 15_000,
      windowMs: 15 * 60_000,
      maxEntries: 10_000,
      now: Date.now,
      ...options,
    };
  }

  /** Reserve an attempt from `address` and say how long it must wait. */
  begin(address: string): LoginAttempt {
    const group = addressGroup(address);
    const now = this.options.now();
    const penalty = this.lookup(group, now) ?? { failures: 0, pending: 0, latest: now };
    const delayMs = this.delayOf(penalty, now);
    penalty.pending++;
    penalty.latest = Math.max(penalty.latest, now);
    this.remember(group, penalty);

    let settled = false;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      this.settle(group, penalty, outcome);
    };
    return {
      delayMs,
      succeeded: () => settle('success'),
      failed: () => settle('failure'),
      abandoned: () => settle('abandoned'),
    };
  }

  /** The delay a new attempt from `address` would get now (for tests and logs; reserves nothing). */
  currentDelay(address: string): number {
    const now = this.options.now();
    const penalty = this.lookup(addressGroup(address), now);
    return penalty ? this.delayOf(penalty, now) : 0;
  }

  // The full delay for this many failures and reservations, less the time
  // that has passed since the group's latest attempt.
  private delayOf(penalty: Penalty, now: number): number {
    // Once a password failed, every attempt in flight counts; before, only those past the free few.
    const count = penalty.failures > 0 ? penalty.failures + penalty.pending : Math.max(0, penalty.pending - FREE_IN_FLIGHT + 1);
    if (count === 0) return 0;
    const full = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (count - 1));
    return Math.max(0, full - Math.max(0, now - penalty.latest));
  }

  private settle(group: string, penalty: Penalty, outcome: Outcome): void {
    const now = this.options.now();
    let current = this.groups.get(group);
    // `penalty` may have been dropped meanwhile (too many groups); then its
    // reservation went with it, and only the outcome still matters.
    if (current === penalty) penalty.pending--;
    if (outcome === 'success' && current) current.failures = 0;
    if (outcome === 'failure') {
      current ??= { failures: 0, pending: 0, latest: now };
      current.failures++;
      current.latest = Math.max(current.latest, now);
      this.remember(group, current);
    }
    if (current && current.failures === 0 && current.pending === 0) this.groups.delete(group);
  }

  private lookup(group: string, now: number): Penalty | undefined {
    const penalty = this.groups.get(group);
    if (penalty && penalty.pending === 0 && now - penalty.latest > this.options.windowMs) {
      this.groups.delete(group);
      return undefined;
    }
    return penalty;
  }

  private remember(group: string, penalty: Penalty): void {
    this.groups.delete(group); // re-insert: the Map's order is then oldest-first
    this.groups.set(group, penalty);
    while (this.groups.size > this.options.maxEntries) {
      this.groups.delete(this.groups.keys().next().value!);
    }
  }
}

/**
 * The address to throttle a login under. A trusted client, such as our
 * webmail logging in over IMAP for its users, may tell us the real user's
 * address (IMAP ID `x-originating-ip`, which Dovecot accepts from its
 * login_trusted_networks); everyone else is throttled under the address they
 * connect from, whatever they claim. A claim that is not an IP address is
 * ignored.
 */
export function throttleAddress(connectionAddress: string, claimedAddress: string | undefined, trusted: readonly string[]): string {
  if (claimedAddress === undefined) return connectionAddress;
  const connection = normaliseAddress(connectionAddress);
  if (!inNetworks(connection, trusted)) return connectionAddress;
  const claimed = normaliseAddress(claimedAddress.trim());
  return isIP(claimed) === 0 ? connectionAddress : claimed;
}
