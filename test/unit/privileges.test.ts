import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dropPrivileges, lookupIds, PrivilegeError } from '../../src/privileges.ts';
import type { ProcessIdentity } from '../../src/privileges.ts';

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
