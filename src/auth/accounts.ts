// Who lives here: the accounts, their passwords and their addresses.
//
// Accounts are read from two files in the data directory (formats in
// files.ts): `passwd` (name:hash) and the optional `aliases`. The SMTP server
// asks resolve() where a recipient's mail goes; POP3 and IMAP ask verify()
// whether a login is right; the submission side asks addressesOf() which
// senders a user may use.
//
// The server runs for months while `npm run adduser` edits passwd, so the
// files are re-read when they change (changed-files.ts). To keep a busy
// server from calling stat() on every command, we look at most once per
// second.
//
// Nearby: the file formats (files.ts), remembered logins (login-cache.ts),
// and creating accounts (account-writer.ts, for adduser).
//
// Invariants:
// - An account `name` always receives name@<every local domain>. An alias
//   that would claim one of those addresses is ignored, so a typo in aliases
//   cannot steal an existing user's mail.

import { join } from 'node:path';
import { ChangedFiles } from './changed-files.ts';
import { parseAliases, parsePasswd } from './files.ts';
import type { AliasLine, Warn } from './files.ts';
import { LoginCache } from './login-cache.ts';
import { defaultPasswordHasher } from './password.ts';
import type { PasswordVerifier } from './password.ts';

export type Resolution = { kind: 'local'; accounts: string[] } | { kind: 'unknown' } | { kind: 'remote' };

export type AccountsOptions = {
  dataDir: string;
  /** Domains we accept mail for, e.g. ["example.org"]. Case does not matter. */
  domains: string[];
  warn?: Warn;
  /** Clock and re-check interval, injectable so tests need not sleep. */
  now?: () => number;
  recheckMs?: number;
  /**
   * Who runs scrypt: the process's shared hasher (and its queue) by default;
   * tests pass their own to count verifications instead of timing them.
   */
  passwords?: PasswordVerifier;
};

// What we build from the two files; replaced as a whole on reload.
type Tables = {
  hashes: Map<string, string>; // account -> password hash
  byLocalPart: Map<string, string[]>; // "postmaster" -> accounts, any local domain
  byAddress: Map<string, string[]>; // "info@example.org" -> accounts
};

export class Accounts {
  private readonly files: ChangedFiles; // passwd, aliases
  private readonly recentLogins: LoginCache;
  private readonly domains: string[];
  private readonly warn: Warn;
  private readonly now: () => number;
  private readonly recheckMs: number;
  private readonly passwords: PasswordVerifier;

  private tables: Tables = { hashes: new Map(), byLocalPart: new Map(), byAddress: new Map() };
  private lastCheck = -Infinity;
  private checking: Promise<void> | null = null;

  private constructor(opts: AccountsOptions) {
    this.files = new ChangedFiles([join(opts.dataDir, 'passwd'), join(opts.dataDir, 'aliases')]);
    this.domains = [...new Set(opts.domains.map((d) => d.toLowerCase()))];
    this.warn = opts.warn ?? ((msg) => console.warn(`accounts: ${msg}`));
    this.now = opts.now ?? Date.now;
    this.recheckMs = opts.recheckMs ?? 1000;
    this.passwords = opts.passwords ?? defaultPasswordHasher;
    this.recentLogins = new LoginCache({ now: this.now });
  }

  /** Read the files once; throws if they exist but cannot be read. */
  static async load(opts: AccountsOptions): Promise<Accounts> {
    const accounts = new Accounts(opts);
    await accounts.reload();
    return accounts;
  }

  isLocalDomain(domain: string): boolean {
    return this.domains.includes(domain.toLowerCase());
  }

  /** Where mail for `address` (local@domain) goes. */
  async resolve(address: string): Promise<Resolution> {
    await this.refresh();
    const at = address.lastIndexOf('@');
    if (at < 0) {
      // RFC 5321 4.1.1.3: "RCPT TO:<Postmaster>" without a domain must be
      // accepted; it means the postmaster of this server.
      if (address.toLowerCase() === 'postmaster' && this.domains.length > 0) {
        return this.resolve(`postmaster@${this.domains[0]}`);
      }
      return { kind: 'unknown' };
    }
    const local = address.slice(0, at).toLowerCase();
    const domain = address.slice(at + 1).toLowerCase();
    // A domain literal such as [127.0.0.1] is just a string that is not in
    // the list, so it is remote unless the operator listed it.
    if (!this.isLocalDomain(domain)) return { kind: 'remote' };

    const { hashes, byAddress, byLocalPart } = this.tables;
    const targets = hashes.has(local) ? [local] : (byAddress.get(`${local}@${domain}`) ?? byLocalPart.get(local));
    if (targets !== undefined) return { kind: 'local', accounts: targets };
    // RFC 5321 4.5.1: every domain must accept mail for postmaster. With no
    // alias for it, it goes to the first account (on a one-person server,
    // the person running it), as Debian's installer points it at root.
    if (local === 'postmaster' && hashes.size > 0) return { kind: 'local', accounts: [hashes.keys().next().value!] };
    return { kind: 'unknown' };
  }

  async exists(name: string): Promise<boolean> {
    await this.refresh();
    return this.tables.hashes.has(name);
  }

  /**
   * Check a login. Account names are lowercase; callers should lowercase
   * what the user typed before calling. An unknown user still costs one
   * scrypt run, so the reply time does not tell which accounts exist.
   * Rejects with PasswordQueueFullError when too many checks are waiting.
   */
  async verify(name: string, password: string): Promise<boolean> {
    await this.refresh();
    const hash = this.tables.hashes.get(name);
    if (hash === undefined) return this.passwords.verifyAgainstDummy(password);
    // A recent success skips scrypt (login-cache.ts says why and how).
    if (this.recentLogins.has(name, hash, password)) return true;
    if (!(await this.passwords.verify(password, hash))) return false;
    this.recentLogins.remember(name, hash, password);
    return true;
  }

  /** Every address that delivers to this account: its own and its aliases. */
  async addressesOf(name: string): Promise<string[]> {
    await this.refresh();
    const { hashes, byAddress, byLocalPart } = this.tables;
    if (!hashes.has(name)) return [];
    const addresses = this.domains.map((d) => `${name}@${d}`);
    for (const [local, targets] of byLocalPart) {
      if (targets.includes(name)) addresses.push(...this.domains.map((d) => `${local}@${d}`));
    }
    for (const [address, targets] of byAddress) {
      if (targets.includes(name)) addresses.push(address);
    }
    return [...new Set(addresses)];
  }

  // Re-read the files if they changed, checking at most once per interval.
  // Concurrent callers share one check instead of each starting their own.
  private async refresh(): Promise<void> {
    if (this.checking !== null) return this.checking;
    if (this.now() - this.lastCheck < this.recheckMs) return;
    this.checking = this.reload()
      .catch((err: Error) => this.warn(`could not re-read account files, keeping the old ones: ${err.message}`))
      .finally(() => (this.checking = null));
    return this.checking;
  }

  private async reload(): Promise<void> {
    this.lastCheck = this.now();
    const texts = await this.files.readIfChanged();
    if (texts === null) return;
    const [passwdText, aliasesText] = texts;
    this.tables = this.buildTables(passwdText, aliasesText);
  }

  private buildTables(passwdText: string, aliasesText: string): Tables {
    const hashes = parsePasswd(passwdText, this.warn);
    const byLocalPart = new Map<string, string[]>();
    const byAddress = new Map<string, string[]>();
    for (const alias of parseAliases(aliasesText, this.warn)) {
      const targets = this.checkAlias(alias, hashes);
      if (targets.length === 0) continue;
      const table = alias.source.includes('@') ? byAddress : byLocalPart;
      // Two lines for the same name add up, as in sendmail.
      table.set(alias.source, [...new Set([...(table.get(alias.source) ?? []), ...targets])]);
    }
    return { hashes, byLocalPart, byAddress };
  }

  // The alias's existing targets, or [] (with a warning) if it is unusable.
  private checkAlias(alias: AliasLine, hashes: Map<string, string>): string[] {
    const where = `aliases line ${alias.lineNo}`;
    const [local, domain] = alias.source.split('@');
    if (domain !== undefined && !this.isLocalDomain(domain)) {
      this.warn(`${where}: ${domain} is not a local domain, alias ignored`);
      return [];
    }
    if (hashes.has(local)) {
      this.warn(`${where}: ${alias.source} belongs to account ${local}, alias ignored`);
      return [];
    }
    return alias.targets.filter((target) => {
      if (hashes.has(target)) return true;
      this.warn(`${where}: no account named ${target}, target ignored`);
      return false;
    });
  }
}
