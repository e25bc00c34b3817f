// The dot-lock: exclusion within the process and against other processes,
// bounded waiting, and breaking locks left behind by dead programs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isStale, LockTimeoutError, lockRetryDelay, withMailboxLock } from '../../src/store/dotlock.ts';
import { readOrNull, scratchDir } from './helpers.ts';

const dir = await scratchDir('dotlock');
let counter = 0;
const freshMbox = () => path.join(dir, `mbox${counter++}`);

// The PID of a process that has certainly exited: a child we ran to the end.
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.ok(child.pid && child.pid > 0);
  return child.pid;
}

test('the lock file holds our PID while fn runs and is gone afterwards', async () => {
  const mbox = freshMbox();
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'));
  assert.equal(seen, `${process.pid}\n`);
  assert.equal(await readOrNull(mbox + '.lock'), null);
});

test('the lock file is removed when fn throws, and the error passes through', async () => {
  const mbox = freshMbox();
  await assert.rejects(
    withMailboxLock(mbox, async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await readOrNull(mbox + '.lock'), null);
});

test('callers in one process never overlap, and go in arrival order', async () => {
  const mbox = freshMbox();
  const events: string[] = [];
  let inside = 0;
  const work = (name: string) =>
    withMailboxLock(mbox, async () => {
      inside++;
      assert.equal(inside, 1, 'two holders at once');
      events.push(`${name}+`);
      await new Promise((r) => setTimeout(r, 5));
      events.push(`${name}-`);
      inside--;
    });
  await Promise.all([work('a'), work('b'), work('c')]);
  assert.deepEqual(events, ['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
});

test('callers in this process queue in memory: timeoutMs only bounds other processes', async () => {
  // The second caller's 30 ms timeout would expire if it polled the lock file
  // while the first holds it for 150 ms; it waits its turn in the mutex.
  const mbox = freshMbox();
  const first = withMailboxLock(mbox, () => new Promise((r) => setTimeout(r, 150)));
  const second = withMailboxLock(mbox, async () => 'second ran', { timeoutMs: 30 });
  await first;
  assert.equal(await second, 'second ran');
});

test('a lock held by a live process makes us wait until it is removed', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`); // "another program"
  const started = Date.now();
  setTimeout(() => void fs.unlink(mbox + '.lock'), 150);
  const result = await withMailboxLock(mbox, async () => 'got it', { timeoutMs: 5000 });
  assert.equal(result, 'got it');
  assert.ok(Date.now() - started >= 140, 'did not wait for the holder');
});

test('a lock held past the timeout rejects with LockTimeoutError and is left alone', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`);
  let ran = false;
  const started = Date.now();
  await assert.rejects(
    withMailboxLock(mbox, async () => (ran = true), { timeoutMs: 150 }),
    (err) => err instanceof LockTimeoutError && err.lockPath === mbox + '.lock',
  );
  const waited = Date.now() - started;
  assert.ok(waited >= 140 && waited < 2000, `waited ${waited} ms`);
  assert.equal(ran, false);
  assert.equal(await fs.readFile(mbox + '.lock', 'utf8'), `${process.pid}\n`);
});

test('a lock naming a dead PID is broken at once', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', `${deadPid()}\n`);
  const started = Date.now();
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'), { timeoutMs: 2000 });
  assert.equal(seen, `${process.pid}\n`);
  assert.ok(Date.now() - started < 1000);
});

test('a lock older than staleMs is broken even if its PID is alive', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`);
  const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
  await fs.utimes(mbox + '.lock', tenMinutesAgo, tenMinutesAgo);
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'), { timeoutMs: 2000 });
  assert.equal(seen, `${process.pid}\n`);
});

test('an empty fresh lock (owner between create and write) is respected', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', '');
  await assert.rejects(withMailboxLock(mbox, async () => {}, { timeoutMs: 100 }), LockTimeoutError);
});

test('a lock broken by someone else meanwhile is not removed on release', async () => {
  const mbox = freshMbox();
  await withMailboxLock(mbox, async () => {
    // Another program decides our lock is stale and takes a new one.
    await fs.unlink(mbox + '.lock');
    await fs.writeFile(mbox + '.lock', '99\n');
  });
  assert.equal(await fs.readFile(mbox + '.lock', 'utf8'), '99\n');
});

test('isStale decides by age and by PID', () => {
  const now = 1_000_000_000;
  assert.equal(isStale(`${process.pid}\n`, now, 60_000, now), false);
  assert.equal(isStale(`${process.pid}\n`, now - 60_001, 60_000, now), true);
  assert.equal(isStale(`${deadPid()}\n`, now, 60_000, now), true);
  assert.equal(isStale('', now, 60_000, now), false);
  assert.equal(isStale('garbage', now, 60_000, now), false);
});

test('the retry delay grows from 5 ms and stops at 200 ms', () => {
  const delays = Array.from({ length: 8 }, (_, n) => lockRetryDelay(n));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160, 200, 200]);
});
