// Checking a login, the same way for SMTP AUTH, POP3 and IMAP: reserve the
// attempt with the throttle, wait out the client address's penalty, then
// check the password, then log the result (a success with the account, a
// failure with the client's address, never the password).
//
// A right password is never refused because of earlier failures; it may only
// be delayed (throttle.ts). The one temporary refusal, `throttled`, has
// nothing to do with the password: too many password checks are already
// waiting (password-queue.ts).
//
// A user may log in as `jjordan` or as `jjordan@<a local domain>`; mail
// clients such as Thunderbird default to the full address.

import type { Accounts } from './accounts.ts';
import type { LoginThrottle } from './throttle.ts';
import { PasswordQueueFullError } from './password-queue.ts';
import type { Logger } from '../log.ts';

export interface LoginService {
  accounts: Accounts;
  throttle: LoginThrottle;
  /** Waiting out a penalty; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /**
   * Clients allowed to tell us their user's real address (the webmail, over
   * IMAP ID x-originating-ip). A protocol passes them to throttleAddress()
   * (throttle.ts) and gives checkLogin the address that returns.
   */
  trustedAddresses?: readonly string[];
}

export type LoginResult =
  | { ok: true; account: string }
  /** Wrong name or password (after the address's penalty delay, if any). */
  | { ok: false; reason: 'bad-credentials' }
  /** Busy: too many password checks waiting. Temporary; says nothing about the password. */
  | { ok: false; reason: 'throttled' };

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The account a login name refers to, or null when it is not one of ours. */
export function accountNameOf(accounts: Accounts, login: string): string | null {
  const name = login.trim().toLowerCase();
  const at = name.lastIndexOf('@');
  if (at < 0) return name;
  return accounts.isLocalDomain(name.slice(at + 1)) ? name.slice(0, at) : null;
}

/** `ip` is the address to throttle under: the client's, or what throttleAddress() returned. */
export async function checkLogin(
  service: LoginService,
  log: Logger,
  ip: string,
  login: string,
  password: string,
): Promise<LoginResult> {
  const account = accountNameOf(service.accounts, login) ?? '';
  // Reserved before anything is awaited, so concurrent attempts count each other.
  const attempt = service.throttle.begin(ip);
  try {
    if (attempt.delayMs > 0) {
      // Before the check, even for a right or remembered password: the time
      // to the answer must not depend on the password.
      log.event('auth-delayed', { ip, delayMs: attempt.delayMs });
      await (service.sleep ?? defaultSleep)(attempt.delayMs);
    }
    // verify() costs one scrypt even for unknown names, so timing does not tell which exist.
    if (await service.accounts.verify(account, password)) {
      attempt.succeeded();
      log.event('auth-ok', { account });
      return { ok: true, account };
    }
    attempt.failed();
    log.event('auth-failed', { ip });
    return { ok: false, reason: 'bad-credentials' };
  } catch (err) {
    if (!(err instanceof PasswordQueueFullError)) throw err;
    log.event('auth-busy', { ip });
    return { ok: false, reason: 'throttled' };
  } finally {
    attempt.abandoned(); // does nothing when the attempt already has its outcome
  }
}
