// Throttling failed logins, so that guessing passwords is slow even for an
// attacker with many connections. Failures are counted per client IP and per
// account name; each failure makes the next answer wait longer (like Dovecot's
// auth_failure_delay, doubled each time), and past a limit the IP or account
// is refused for a while with a temporary error, whatever password it tries.
// A success clears the counters for that IP and account.
//
// State is in memory and bounded (oldest entries dropped first); it is lost on
// restart, which is acceptable: the point is to slow guessing, not to ban.

export interface ThrottleOptions {
  /** Delay after the first failure; doubles with each further failure. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failures after which the IP or account is refused outright. */
  lockoutAfter?: number;
  /** How long failures are remembered (and a lockout lasts). */
  windowMs?: number;
  /** Most IPs/accounts remembered at once. */
  maxEntries?: number;
  now?: () => number;
}

interface FailureCount {
  failures: number;
  last: number;
}

export type ThrottleVerdict = { refuse: true } | { refuse: false };

export class LoginThrottle {
  private readonly entries = new Map<string, FailureCount>();
  private readonly options: Required<ThrottleOptions>;

  constructor(options: ThrottleOptions = {}) {
    this.options = {
      baseDelayMs: 1000,
      maxDelayMs: 15_000,
      lockoutAfter: 10,
      windowMs: 15 * 60_000,
      maxEntries: 10_000,
      now: Date.now,
      ...options,
    };
  }

  private failuresOf(key: string): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    if (this.options.now() - entry.last > this.options.windowMs) {
      this.entries.delete(key);
      return 0;
    }
    return entry.failures;
  }

  /** Before checking a password: is this IP or account locked out for now? */
  check(ip: string, account: string): ThrottleVerdict {
    const worst = Math.max(this.failuresOf(`ip:${ip}`), this.failuresOf(`user:${account.toLowerCase()}`));
    return worst >= this.options.lockoutAfter ? { refuse: true } : { refuse: false };
  }

  /** Record a failure; returns how long to wait before answering it. */
  failure(ip: string, account: string): number {
    let worst = 0;
    for (const key of [`ip:${ip}`, `user:${account.toLowerCase()}`]) {
      const failures = this.failuresOf(key) + 1;
      this.entries.delete(key); // re-insert: the Map's order is then oldest-first
      this.entries.set(key, { failures, last: this.options.now() });
      worst = Math.max(worst, failures);
    }
    while (this.entries.size > this.options.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    return Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (worst - 1));
  }

  success(ip: string, account: string): void {
    this.entries.delete(`ip:${ip}`);
    this.entries.delete(`user:${account.toLowerCase()}`);
  }
}
