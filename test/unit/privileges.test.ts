// Dropping root and preparing the data directory (src/privileges.ts). The
// order of the calls is checked on a pretend process; what only root can do
// is done for real when the tests run as root (CI does), and the whole
// start-up as root is in test/e2e/root-startup.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chown, lstat, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDataDir, dropPrivileges, leaveRoot, lookupIds, prepareDataDir, PrivilegeError } from '../../src/privileges.ts';
import type { ProcessIdentity } from '../../src/privileges.ts';

const isRoot = process.getuid?.() === 0;
const needsRoot = isRoot ? false : 'only as root (as CI runs the tests)';

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'privileges-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A pretend process: records the calls, becomes the user on setuid. */
function fakeProcess(uid: number) {
  const calls: string[] = [];
  const identity: ProcessIdentity = {
    getuid: () => uid,
    setuid: (id) => {
      calls.push(`setuid ${id}`);
      uid = 1000;
    },
    setgid: (id) => void calls.push(`setgid ${id}`),
    initgroups: (user, group) => void calls.push(`initgroups ${user} ${group}`),
  };
  return { identity, calls };
}

test('root drops to the configured user: groups first, uid last', () => {
  const { identity, calls } = fakeProcess(0);
  assert.equal(dropPrivileges({ user: 'mail', group: 'mailgrp', allowRoot: false }, identity), 'dropped');
  assert.deepEqual(calls, ['initgroups mail mailgrp', 'setgid mailgrp', 'setuid mail']);
});

test('root with no user to become refuses to run, unless explicitly allowed', () => {
  assert.throws(() => dropPrivileges({ user: '', group: '', allowRoot: false }, fakeProcess(0).identity), PrivilegeError);
  assert.equal(dropPrivileges({ user: '', group: '', allowRoot: true }, fakeProcess(0).identity), 'kept-root');
});

test('a non-root process changes nothing', () => {
  const { identity, calls } = fakeProcess(1000);
  assert.equal(dropPrivileges({ user: 'mail', group: '', allowRoot: false }, identity), 'not-root');
  assert.deepEqual(calls, []);
});

test('a setuid that silently fails is caught', () => {
  const identity: ProcessIdentity = { getuid: () => 0, setuid: () => {}, setgid: () => {} };
  assert.throws(() => dropPrivileges({ user: 'mail', group: '', allowRoot: false }, identity), /still root/);
});

test('really dropping to nobody (only when the tests run as root)', { skip: process.getuid?.() !== 0 }, () => {
  const script = `
    import { dropPrivileges } from ${JSON.stringify(new URL('../../src/privileges.ts', import.meta.url).href)};
    console.log(dropPrivileges({ user: 'nobody', group: 'nogroup', allowRoot: false }), process.getuid(), process.getgid());`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const [result, uid] = run.stdout.trim().split(' ');
  assert.equal(result, 'dropped');
  assert.notEqual(Number(uid), 0);
});

test('an unknown runAs user or group is a clear error naming it', () => {
  assert.throws(() => lookupIds('no-such-user-jjordan', ''), /runAs.user "no-such-user-jjordan" does not exist/);
  assert.throws(() => lookupIds('root', 'no-such-group-jjordan'), /runAs.group "no-such-group-jjordan" does not exist/);
  assert.deepEqual(lookupIds('root', 'root'), { uid: 0, gid: 0 });
});

test('not root: leaveRoot changes nothing and prepares nothing', { skip: isRoot ? 'as root this would drop the test runner' : false }, async () => {
  assert.equal(await leaveRoot({ user: 'mail', group: 'mail', allowRoot: false }, '/nonexistent/data'), 'not-root');
});

test('as root, a missing data directory is created 0700 for the runAs user, and only that directory', { skip: needsRoot }, async (t) => {
  const parent = await scratch(t);
  const mail = lookupIds('mail', 'mail');
  const dataDir = join(parent, 'data');
  assert.equal(await prepareDataDir(dataDir, mail, 'mail'), 'created');
  const info = await lstat(dataDir);
  assert.equal(info.uid, mail.uid);
  assert.equal(info.gid, mail.gid);
  assert.equal(info.mode & 0o777, 0o700);
  assert.equal((await lstat(parent)).uid, 0, 'the parent keeps its owner');
  assert.equal(await prepareDataDir(dataDir, mail, 'mail'), 'exists', 'the second time it is only checked');
  await assert.rejects(createDataDir(join(parent, 'no/such/parent'), mail), /no\/such does not exist/);
});

test('as root, a data directory that is not the runAs user\'s is refused with the command to fix it, never chowned', { skip: needsRoot }, async (t) => {
  const dataDir = await scratch(t); // root's
  const mail = lookupIds('mail', 'mail');
  await assert.rejects(
    prepareDataDir(dataDir, mail, 'mail'),
    (err: Error) => err instanceof PrivilegeError && err.message.includes(`belongs to uid 0, not to mail`) && err.message.includes(`chown -R mail: ${dataDir}`),
  );
  assert.equal((await lstat(dataDir)).uid, 0);
  const file = join(dataDir, 'file');
  await writeFile(file, '');
  await assert.rejects(prepareDataDir(file, mail, 'mail'), /is not a directory/);
});

test('as root, a data directory path that is a link is not created through, nor chowned', { skip: needsRoot }, async (t) => {
  const parent = await scratch(t);
  const target = join(parent, 'target');
  await writeFile(target, 'root file');
  await symlink(target, join(parent, 'data'));
  assert.equal(await createDataDir(join(parent, 'data'), lookupIds('mail', 'mail')), false, 'it exists (as a link)');
  assert.equal((await lstat(target)).uid, 0, 'the link target keeps its owner');
});

test('as root, adduser and the certbot hook become the owner of the data directory', { skip: needsRoot }, async (t) => {
  const dir = await scratch(t);
  const mail = lookupIds('mail', 'mail');
  await chown(dir, mail.uid, mail.gid);
  const script = `
    import { becomeOwnerOf } from ${JSON.stringify(new URL('../../src/privileges.ts', import.meta.url).href)};
    becomeOwnerOf(${JSON.stringify(dir)});
    console.log(process.getuid(), process.getgid(), process.getgroups().join(','));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.equal(run.stdout.trim(), `${mail.uid} ${mail.gid} ${mail.gid}`);
  // A root-owned directory: stays root (the server runs as root there, with allowRoot).
  const rootRun = spawnSync(process.execPath, ['--input-type=module', '-e', script.replace(JSON.stringify(dir), JSON.stringify(tmpdir()))], { encoding: 'utf8' });
  assert.equal(rootRun.stdout.split(' ')[0], '0');
});
