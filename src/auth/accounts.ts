// Who lives here: the accounts, their passwords and their addresses.
//
// Accounts are read from two files in the data directory (formats in
// files.ts): `passwd` (name:hash) and the optional `aliases`. The SMTP server
// asks resolve() where a recipient's mail goes; POP3 and IMAP ask verify()
// whether a login is right; the submission side asks addressesOf() which
// senders a user may use.
//
// The server runs for months while `npm run adduser` edits passwd, so the
// files are re-read when their size, mtime or inode changes. To keep a busy
// server from calling stat() on every command, we look at most once per
// second.
//
// Invariants:
// - An account `name` always receives name@<every local domain>. An alias
//   that would claim one of those addresses is ignored, so a typo in aliases
//   cannot steal an existing user's mail.
// - No plaintext password is ever written to disk (only scrypt hashes).

import { chown, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createHmac, randomBytes } from 'node:crypto';
import { accountDir, isValidAccountName, mailDir } from '../store/paths.ts';
import { writeFileAtomic } from '../store/safeio.ts';
import { parseAliases, parsePasswd, setPasswdLine } from './files.ts';
import type { AliasLine, Warn } from './files.ts';
import { defaultPasswordHasher, hashPassword } from './password.ts';
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

/** How long a successful login is remembered, and how many are. */
const LOGIN_CACHE_MS = 15 * 60_000;
const LOGIN_CACHE_ENTRIES = 1000;

export class Accounts {
  private readonly cacheKey = randomBytes(32);
  private readonly recentLogins = new Map<string, number>();
  private readonly passwdPath: string;
  private readonly aliasesPath: string;
  private readonly domains: string[];
  private readonly warn: Warn;
  private readonly now: () => number;
  private readonly recheckMs: number;
  private readonly passwords: PasswordVerifier;

  private tables: Tables = { hashes: new Map(), byLocalPart: new Map(), byAddress: new Map() };
  private stamps = ''; // identifies the file versions `tables` was built from
  private lastCheck = -Infinity;
  private checking: Promise<void> | null = null;

  private constructor(opts: AccountsOptions) {
    this.passwdPath = join(opts.dataDir, 'passwd');
    this.aliasesPath = join(opts.dataDir, 'aliases');
    this.domains = [...new Set(opts.domains.map((d) => d.toLowerCase()))];
    this.warn = opts.warn ?? ((msg) => console.warn(`accounts: ${msg}`));
    this.now = opts.now ?? Date.now;
    this.recheckMs = opts.recheckMs ?? 1000;
    this.passwords = opts.passwords ?? defaultPasswordHasher;
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
    // Mail clients log in again and again (every POP3 check, several IMAP
    // connections), and scrypt is slow on purpose (tens of milliseconds, more
    // on a Raspberry Pi) and runs one at a time (password-queue.ts). So a
    // recent success is remembered, like Dovecot's auth cache: only a keyed
    // hash (HMAC with a key made at start-up, never stored) of the name, the
    // stored hash and the password. A changed
    // password changes the stored hash, so old entries stop matching; a wrong
    // password never matches, so failures always pay the full scrypt.
    const tag = createHmac('sha256', this.cacheKey).update(`${name}\0${hash}\0`).update(password).digest('base64');
    const now = this.now();
    if ((this.recentLogins.get(tag) ?? 0) > now) return true;
    if (!(await this.passwords.verify(password, hash))) return false;
    this.recentLogins.delete(tag); // re-insert: the Map's order is then oldest-first
    this.recentLogins.set(tag, now + LOGIN_CACHE_MS);
    if (this.recentLogins.size > LOGIN_CACHE_ENTRIES) this.recentLogins.delete(this.recentLogins.keys().next().value!);
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
    // stat before reading: if a file changes in between, the next check
    // sees a new stamp and reads again, so no change is ever missed.
    const stamps = `${await fileStamp(this.passwdPath)} ${await fileStamp(this.aliasesPath)}`;
    if (stamps === this.stamps) return;
    const passwdText = await readIfExists(this.passwdPath);
    const aliasesText = await readIfExists(this.aliasesPath);
    this.tables = this.buildTables(passwdText, aliasesText);
    this.stamps = stamps;
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

/**
 * Create an account or change its password. Returns which of the two it did.
 * Only the scrypt hash is written, into passwd (mode 0600) by an atomic
 * rename, so a running server never sees a half-written file.
 *
 * Two adduser runs at the same instant could each miss the other's change;
 * this is an operator's tool, run by hand, so we accept that.
 */
export async function addAccount(dataDir: string, name: string, password: string): Promise<'added' | 'changed'> {
  if (!isValidAccountName(name)) {
    throw new Error(`invalid account name ${JSON.stringify(name)}: use a-z, 0-9, '.', '_', '-' (up to 64)`);
  }
  if (password === '') throw new Error('the password must not be empty');
  const hash = await hashPassword(password);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const passwdPath = join(dataDir, 'passwd');
  const updated = setPasswdLine(await readIfExists(passwdPath), name, hash);
  await writeFileAtomic(passwdPath, updated.text, { mode: 0o600 });
  await mkdir(accountDir(dataDir, name), { recursive: true, mode: 0o700 });
  await giveToDataDirOwner(dataDir, [passwdPath, mailDir(dataDir), accountDir(dataDir, name)]);
  return updated.replaced ? 'changed' : 'added';
}

/**
 * Run as root, `adduser` would leave root-owned files that the server (which
 * drops to runAs.user, the owner of the data directory) cannot read. Files in
 * the data directory belong to the data directory's owner.
 */
async function giveToDataDirOwner(dataDir: string, paths: string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const owner = await stat(dataDir);
  if (owner.uid === 0) return;
  for (const path of paths) await chown(path, owner.uid, owner.gid);
}

// Size, mtime and inode together: an atomic rename changes the inode even
// when the new file has the same size and lands in the same millisecond.
async function fileStamp(path: string): Promise<string> {
  try {
    const st = await stat(path);
    return `${st.size}/${st.mtimeMs}/${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
}

async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
