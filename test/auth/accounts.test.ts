// Tests for Accounts: recipient resolution across local domains and
// aliases, logins, the addresses a user may send as, re-reading the files
// while running (with an injected clock, so no sleeping), and addAccount (account-writer.ts).

import { scrypt } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Accounts } from '../../src/auth/accounts.ts';
import { addAccount } from '../../src/auth/account-writer.ts';
import type { AccountsOptions } from '../../src/auth/accounts.ts';
import { PasswordHasher, hashPassword } from '../../src/auth/password.ts';

const DOMAINS = ['example.org', 'Example.NET'];

// One real hash shared by the accounts whose password we never check.
const someHash = hashPassword('unused');

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'auth-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  aliases: string,
  extra: Partial<AccountsOptions> = {},
): Promise<{ accounts: Accounts; dir: string; warnings: string[] }> {
  const dir = await tempDir(t);
  const hash = await someHash;
  const passwd = ['# accounts', '', `jjordan:${hash}`, `alice:${hash}`, `bob:${hash}`, ''].join('\n');
  await writeFile(join(dir, 'passwd'), passwd);
  if (aliases !== '') await writeFile(join(dir, 'aliases'), aliases);
  const warnings: string[] = [];
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS, warn: (m) => warnings.push(m), ...extra });
  return { accounts, dir, warnings };
}

const ALIASES = [
  '# who reads what',
  'postmaster: jjordan',
  'info@example.org: alice, bob',
  'team: alice, bob, alice',
  '',
  '   # an indented comment',
].join('\n');

test('an account receives mail in every local domain, case-insensitively', async (t) => {
  const { accounts } = await setup(t, '');
  for (const address of ['jjordan@example.org', 'jjordan@example.net', 'JJordan@EXAMPLE.org']) {
    assert.deepEqual(await accounts.resolve(address), { kind: 'local', accounts: ['jjordan'] }, address);
  }
});

test('unknown users in a local domain, and other domains', async (t) => {
  const { accounts } = await setup(t, '');
  assert.deepEqual(await accounts.resolve('nobody@example.org'), { kind: 'unknown' });
  assert.deepEqual(await accounts.resolve('@example.org'), { kind: 'unknown' });
  assert.deepEqual(await accounts.resolve('jjordan@elsewhere.com'), { kind: 'remote' });
  assert.deepEqual(await accounts.resolve('jjordan@[127.0.0.1]'), { kind: 'remote' });
  assert.deepEqual(await accounts.resolve('no-at-sign'), { kind: 'unknown' });
});

test('a listed domain literal is local', async (t) => {
  const { accounts } = await setup(t, '', { domains: ['example.org', '[127.0.0.1]'] });
  assert.deepEqual(await accounts.resolve('bob@[127.0.0.1]'), { kind: 'local', accounts: ['bob'] });
});

test('isLocalDomain ignores case', async (t) => {
  const { accounts } = await setup(t, '');
  assert.equal(accounts.isLocalDomain('EXAMPLE.org'), true);
  assert.equal(accounts.isLocalDomain('example.net'), true);
  assert.equal(accounts.isLocalDomain('example.com'), false);
});

test('aliases: by local part, by full address, to several accounts', async (t) => {
  const { accounts, warnings } = await setup(t, ALIASES);
  assert.deepEqual(warnings, []);
  assert.deepEqual(await accounts.resolve('postmaster@example.org'), { kind: 'local', accounts: ['jjordan'] });
  assert.deepEqual(await accounts.resolve('PostMaster@example.net'), { kind: 'local', accounts: ['jjordan'] });
  // A full-address alias applies only in its own domain.
  assert.deepEqual(await accounts.resolve('info@example.org'), { kind: 'local', accounts: ['alice', 'bob'] });
  assert.deepEqual(await accounts.resolve('info@example.net'), { kind: 'unknown' });
  // Duplicates are removed.
  assert.deepEqual(await accounts.resolve('team@example.net'), { kind: 'local', accounts: ['alice', 'bob'] });
});

test('RCPT TO:<Postmaster> without a domain means our postmaster', async (t) => {
  const { accounts } = await setup(t, ALIASES);
  assert.deepEqual(await accounts.resolve('Postmaster'), { kind: 'local', accounts: ['jjordan'] });
});

test('bad alias lines are skipped with a warning, not a crash', async (t) => {
  const aliases = [
    'sales: alice, ghost', // unknown target: dropped, alice kept
    'void: ghost', // nothing left: alias dropped
    'jjordan: bob', // would steal an account's mail
    'info@elsewhere.com: bob', // not our domain
    'no colon here',
  ].join('\n');
  const { accounts, warnings } = await setup(t, aliases);
  assert.deepEqual(await accounts.resolve('sales@example.org'), { kind: 'local', accounts: ['alice'] });
  assert.deepEqual(await accounts.resolve('void@example.org'), { kind: 'unknown' });
  assert.deepEqual(await accounts.resolve('jjordan@example.org'), { kind: 'local', accounts: ['jjordan'] });
  assert.equal(warnings.length, 5);
  assert.match(warnings.join('\n'), /no account named ghost/);
  assert.match(warnings.join('\n'), /belongs to account jjordan/);
  assert.match(warnings.join('\n'), /elsewhere.com is not a local domain/);
  assert.match(warnings.join('\n'), /aliases line 5/);
});

test('bad passwd lines are skipped with a warning', async (t) => {
  const dir = await tempDir(t);
  const hash = await someHash;
  await writeFile(join(dir, 'passwd'), `Bad Name:${hash}\nnohash\ncarol:${hash}\r\n`);
  const warnings: string[] = [];
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS, warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 2);
  assert.equal(await accounts.exists('carol'), true);
  assert.equal(await accounts.exists('nohash'), false);
});

test('no passwd file at all means no accounts', async (t) => {
  const dir = await tempDir(t);
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS });
  assert.equal(await accounts.exists('jjordan'), false);
  assert.deepEqual(await accounts.resolve('jjordan@example.org'), { kind: 'unknown' });
});

test('exists and verify', async (t) => {
  const dir = await tempDir(t);
  await addAccount(dir, 'jjordan', 'hunter2');
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS });
  assert.equal(await accounts.exists('jjordan'), true);
  assert.equal(await accounts.exists('nobody'), false);
  assert.equal(await accounts.verify('jjordan', 'hunter2'), true);
  assert.equal(await accounts.verify('jjordan', 'hunter3'), false);
  assert.equal(await accounts.verify('nobody', 'hunter2'), false);
});

test('addressesOf lists own addresses and alias addresses', async (t) => {
  const { accounts } = await setup(t, ALIASES);
  assert.deepEqual(await accounts.addressesOf('jjordan'), [
    'jjordan@example.org',
    'jjordan@example.net',
    'postmaster@example.org',
    'postmaster@example.net',
  ]);
  assert.deepEqual(await accounts.addressesOf('bob'), [
    'bob@example.org',
    'bob@example.net',
    'team@example.org',
    'team@example.net',
    'info@example.org',
  ]);
  assert.deepEqual(await accounts.addressesOf('nobody'), []);
});

test('changed files are re-read, at most once per interval', async (t) => {
  let clock = 1_000_000;
  const { accounts, dir } = await setup(t, '', { now: () => clock, recheckMs: 1000 });
  assert.equal(await accounts.exists('carol'), false);

  // Replace passwd the way addAccount does: write aside, then rename.
  const hash = await someHash;
  await writeFile(join(dir, 'passwd.new'), `carol:${hash}\n`);
  await rename(join(dir, 'passwd.new'), join(dir, 'passwd'));
  await writeFile(join(dir, 'aliases'), 'boss: carol\n');

  clock += 500; // too soon: the cached tables are still used
  assert.equal(await accounts.exists('carol'), false);
  clock += 600; // more than a second since the last look
  assert.equal(await accounts.exists('carol'), true);
  assert.equal(await accounts.exists('jjordan'), false);
  assert.deepEqual(await accounts.resolve('boss@example.org'), { kind: 'local', accounts: ['carol'] });
});

test('a file removed while running is seen as empty', async (t) => {
  let clock = 0;
  const { accounts, dir } = await setup(t, ALIASES, { now: () => clock });
  await rm(join(dir, 'aliases'));
  clock += 2000;
  assert.deepEqual(await accounts.resolve('team@example.org'), { kind: 'unknown' });
});

test('addAccount writes only a hash, with mode 0600, and creates the mail dir', async (t) => {
  const dir = await tempDir(t);
  assert.equal(await addAccount(dir, 'jjordan', 'Sup3r-Secret!'), 'added');
  const passwd = await readFile(join(dir, 'passwd'), 'utf8');
  assert.match(passwd, /^jjordan:\$scrypt\$/);
  assert.ok(!passwd.includes('Sup3r-Secret!'));
  assert.equal((await stat(join(dir, 'passwd'))).mode & 0o777, 0o600);
  const mailDir = await stat(join(dir, 'mail', 'jjordan'));
  assert.ok(mailDir.isDirectory());
  assert.equal(mailDir.mode & 0o777, 0o700);
});

test('addAccount a second time changes the password and keeps other lines', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'passwd'), '# my accounts\n');
  await addAccount(dir, 'alice', 'a-pass');
  await addAccount(dir, 'jjordan', 'old-pass');
  assert.equal(await addAccount(dir, 'jjordan', 'new-pass'), 'changed');
  const lines = (await readFile(join(dir, 'passwd'), 'utf8')).trimEnd().split('\n');
  assert.equal(lines.length, 3);
  assert.equal(lines[0], '# my accounts');
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS });
  assert.equal(await accounts.verify('jjordan', 'new-pass'), true);
  assert.equal(await accounts.verify('jjordan', 'old-pass'), false);
  assert.equal(await accounts.verify('alice', 'a-pass'), true);
});

test('addAccount refuses bad names and empty passwords', async (t) => {
  const dir = await tempDir(t);
  for (const name of ['', 'JJordan', '../etc', 'a:b', 'x'.repeat(65)]) {
    await assert.rejects(addAccount(dir, name, 'pw'), /invalid account name/, name);
  }
  await assert.rejects(addAccount(dir, 'jjordan', ''), /must not be empty/);
});

test('a successful login is remembered (no second scrypt); a wrong password or a changed one is not', async (t) => {
  const dir = await tempDir(t);
  await addAccount(dir, 'jjordan', 'first');
  let clock = 0;
  // Count scrypt computations through the injectable hasher instead of timing them.
  let computations = 0;
  const passwords = new PasswordHasher({
    scrypt: (password, salt, keyLength, options) => {
      computations++;
      return new Promise((resolve, reject) => scrypt(password, salt, keyLength, options, (e, key) => (e ? reject(e) : resolve(key))));
    },
  });
  const accounts = await Accounts.load({ dataDir: dir, domains: DOMAINS, now: () => clock, passwords });
  const verify = async (name: string, password: string) => {
    const before = computations;
    const ok = await accounts.verify(name, password);
    return { ok, scrypts: computations - before };
  };
  assert.deepEqual(await verify('jjordan', 'first'), { ok: true, scrypts: 1 });
  assert.deepEqual(await verify('jjordan', 'first'), { ok: true, scrypts: 0 }, 'a remembered login skips scrypt');
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await verify('jjordan', 'wrong'), { ok: false, scrypts: 1 }, 'a wrong password always pays scrypt');
  }
  assert.equal((await verify('nobody', 'first')).scrypts > 0, true, 'so does an unknown user');
  await addAccount(dir, 'jjordan', 'second');
  clock += 2000; // past the re-read interval: the new passwd is seen
  assert.deepEqual(await verify('jjordan', 'first'), { ok: false, scrypts: 1 }, 'the old password no longer works');
  assert.deepEqual(await verify('jjordan', 'second'), { ok: true, scrypts: 1 });
  assert.deepEqual(await verify('jjordan', 'second'), { ok: true, scrypts: 0 });
  clock += 16 * 60_000; // remembered logins expire
  assert.deepEqual(await verify('jjordan', 'second'), { ok: true, scrypts: 1 }, 'after 15 minutes scrypt runs again');
});
