// When to try again. Temporary failures are retried on a growing schedule,
// like Postfix (minimal_backoff_time 300s, doubling, capped): 5, 10, 20 and
// 40 minutes, then 1h20, 2h40, then every 4 hours, until the message is older
// than the maximum age (default 5 days, Postfix's maximal_queue_lifetime),
// when it bounces. Small pure functions with the clock passed in, so the
// tests need no sleeping.

const MINUTE = 60_000;

/** Delay after the `attempts`-th failed attempt (1-based). */
export function retryDelayMs(attempts: number): number {
  const doubled = 5 * MINUTE * 2 ** Math.max(0, attempts - 1);
  return Math.min(doubled, 240 * MINUTE);
}

export function nextAttemptAt(now: Date, attempts: number): Date {
  return new Date(now.getTime() + retryDelayMs(attempts));
}

/** True once a message has been in the queue longer than `maxAgeHours`. */
export function isExpired(arrived: Date, now: Date, maxAgeHours: number): boolean {
  return now.getTime() - arrived.getTime() >= maxAgeHours * 60 * MINUTE;
}

/** True when a "still trying" notice is due (once, after `delayWarningHours`; 0 = never). */
export function delayWarningDue(arrived: Date, now: Date, delayWarningHours: number, alreadyWarned: boolean): boolean {
  if (alreadyWarned || delayWarningHours <= 0) return false;
  return now.getTime() - arrived.getTime() >= delayWarningHours * 60 * MINUTE;
}
