// Checking a login, the same way for SMTP AUTH, POP3 and IMAP: throttle
// first, then the password, then log the result (a success with the account,
// a failure with the client's IP, never the password).
//
// A user may log in as `jjordan` or as `jjordan@<a local domain>`; mail
// clients such as Thunderbird default to the full address.

import type { Accounts } from './accounts.ts';
import type { LoginThrottle } from './throttle.ts';
import type { Logger } from '../log.ts';

export interface LoginService {
  accounts: Accounts;
  throttle: LoginThrottle;
  /** Waiting before a failure reply; injectable so tests need not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

export type LoginResult =
  | { ok: true; account: string }
  /** Wrong name or password (after the throttling delay). */
  | { ok: false; reason: 'bad-credentials' }
  /** Too many failures from this IP or for this account: try later. */
  | { ok: false; reason: 'throttled' };

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The account a login name refers to, or null when it is not one of ours. */
export function accountNameOf(accounts: Accounts, login: string): string | null {
  const name = login.trim().toLowerCase();
  const at = name.lastIndexOf('@');
  if (at < 0) return name;
  return accounts.isLocalDomain(name.slice(at + 1)) ? name.slice(0, at) : null;
}

export async function checkLogin(
  service: LoginService,
  log: Logger,
  ip: string,
  login: string,
  password: string,
): Promise<LoginResult> {
  const account = accountNameOf(service.accounts, login) ?? '';
  if (service.throttle.check(ip, account || login).refuse) {
    log.event('auth-throttled', { ip });
    return { ok: false, reason: 'throttled' };
  }
  // verify() costs one scrypt even for unknown names, so timing does not tell which exist.
  if (await service.accounts.verify(account, password)) {
    service.throttle.success(ip, account);
    log.event('auth-ok', { account });
    return { ok: true, account };
  }
  const delay = service.throttle.failure(ip, account || login);
  log.event('auth-failed', { ip, delayMs: delay });
  await (service.sleep ?? defaultSleep)(delay);
  return { ok: false, reason: 'bad-credentials' };
}
