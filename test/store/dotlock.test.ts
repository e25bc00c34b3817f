// The dot-lock: exclusion within the process and against other processes,
// bounded waiting, and breaking locks left behind by dead programs (but
// never one whose holder may be alive elsewhere, or is merely slow).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { BREAK_STALE_MS, breakFilePath, isStale, LockTimeoutError, lockFileContent, lockRetryDelay, parseLockFile, withMailboxLock } from '../../src/store/dotlock.ts';
import { readOrNull, scratchDir } from './helpers.ts';

const dir = await scratchDir('dotlock');
let counter = 0;
const freshMbox = () => path.join(dir, `mbox${counter++}`);
const LOCK_CHILD = fileURLToPath(new URL('./children/lock-killed-child.ts', import.meta.url));

// The PID of a process that has certainly exited: a child we ran to the end.
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  assert.ok(child.pid && child.pid > 0);
  return child.pid;
}

test('the lock file holds PID:HOSTNAME (and our PID space) while fn runs and is gone afterwards', async () => {
  const mbox = freshMbox();
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'));
  assert.equal(seen, lockFileContent());
  assert.ok(seen.startsWith(`${process.pid}:${hostname()}\n`), seen);
  const owner = parseLockFile(seen);
  assert.deepEqual([owner?.pid, owner?.host], [process.pid, hostname()]);
  if (process.platform === 'linux') assert.match(owner!.pidSpace, /^[0-9a-f-]{36}\/\d+$/);
  assert.equal(await readOrNull(mbox + '.lock'), null);
});

test('a holder killed while it takes the lock leaves no lock behind: the lock is never an empty file, which only age could break', async () => {
  const mbox = freshMbox();
  const child = spawnSync(process.execPath, [LOCK_CHILD, mbox, 'kill'], { encoding: 'utf8' });
  assert.equal(child.signal, 'SIGKILL', `the child was killed while writing its lock line (${child.stdout}${child.stderr})`);
  assert.equal(await readOrNull(mbox + '.lock'), null, 'no lock file, empty or not');
  // The next holder gets the mailbox at once, not after staleMs.
  assert.equal(await withMailboxLock(mbox, async () => 'taken', { timeoutMs: 1000 }), 'taken');
  // What the kill left: the private file the lock was to be linked from (its stamp: a hidden name, never a lock).
  const strays = (await fs.readdir(path.dirname(mbox))).filter((name) => name.startsWith(`.lock-stamp.${child.pid}.`));
  assert.equal(strays.length, 1, 'the private file of the killed holder');
});

test('where hard links are not supported (a FAT card), the lock is created in place, with the same content', async () => {
  const mbox = freshMbox();
  const child = spawnSync(process.execPath, [LOCK_CHILD, mbox, 'no-links'], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(parseLockFile(child.stdout)?.pid, child.pid, 'the lock held the child\'s PID');
  assert.equal(child.stderr, 'links tried: 1\n', 'a directory that refused a link is not asked again');
  const base = path.basename(mbox);
  const left = (await fs.readdir(path.dirname(mbox))).filter((name) => name.startsWith(`${base}.`) || name.startsWith(`.${base}.`) || name.startsWith(`.lock-stamp.${child.pid}.`));
  assert.deepEqual(left, [], 'nothing left behind (no stamp either)');
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
  let removed = false;
  setTimeout(() => {
    removed = true; // before the unlink: the lock may be taken as soon as the file is gone
    void fs.unlink(mbox + '.lock');
  }, 150);
  const result = await withMailboxLock(mbox, async () => (removed ? 'got it after the holder left' : 'got it while held'), { timeoutMs: 5000 });
  assert.equal(result, 'got it after the holder left');
});

test('a lock held past the timeout rejects with LockTimeoutError and is left alone', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`);
  let ran = false;
  await assert.rejects(
    withMailboxLock(mbox, async () => (ran = true), { timeoutMs: 150 }),
    (err) => err instanceof LockTimeoutError && err.lockPath === mbox + '.lock',
  );
  assert.equal(ran, false);
  assert.equal(await fs.readFile(mbox + '.lock', 'utf8'), `${process.pid}\n`);
});

test('a lock written on this host and in this PID space by a dead PID is broken at once', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', lockFileContent(deadPid()));
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'), { timeoutMs: 2000 });
  assert.equal(seen, lockFileContent());
});

// A dead PID proves nothing unless the PID is ours to check: another host
// (NFS), another container (its own PID namespace), another boot, or a lock
// that does not say where it comes from. Those locks wait for their age.
const ourPidSpace = parseLockFile(lockFileContent())!.pidSpace;
for (const [where, content] of [
  ['another host', (pid: number) => `${pid}:not-${hostname()}\n`],
  ['another PID namespace with our host name', (pid: number) => `${pid}:${hostname()}\npidspace=${ourPidSpace || 'x'}0\n`],
  ['a bare PID (liblockfile, older versions of this server)', (pid: number) => `${pid}\n`],
  ["Dovecot's PID:HOST on our host, without a PID space", (pid: number) => `${pid}:${hostname()}\n`],
] as const) {
  if (where.startsWith('Dovecot') && ourPidSpace === '') continue; // without /proc that is our own format
  test(`a dead PID from ${where} is not broken while the lock is young`, async () => {
    const mbox = freshMbox();
    const text = content(deadPid());
    await fs.writeFile(mbox + '.lock', text);
    await assert.rejects(withMailboxLock(mbox, async () => {}, { timeoutMs: 150 }), LockTimeoutError);
    assert.equal(await fs.readFile(mbox + '.lock', 'utf8'), text);
    // Once older than staleMs it is abandoned whatever it says.
    const old = new Date(Date.now() - 10 * 60 * 1000);
    await fs.utimes(mbox + '.lock', old, old);
    assert.equal(await withMailboxLock(mbox, async () => 'got it', { timeoutMs: 2000 }), 'got it');
  });
}

test('a lock older than staleMs is broken even if its PID is alive', async () => {
  const mbox = freshMbox();
  await fs.writeFile(mbox + '.lock', lockFileContent());
  const tenMinutesAgo = new Date(Date.now() - 10 * 60 * 1000);
  await fs.utimes(mbox + '.lock', tenMinutesAgo, tenMinutesAgo);
  const seen = await withMailboxLock(mbox, async () => fs.readFile(mbox + '.lock', 'utf8'), { timeoutMs: 2000 });
  assert.equal(seen, lockFileContent());
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

test('isStale decides by age, and by PID only for locks from our PID space', () => {
  const now = 1_000_000_000;
  assert.equal(isStale(lockFileContent(), now, 60_000, now), false);
  assert.equal(isStale(lockFileContent(), now - 60_001, 60_000, now), true);
  assert.equal(isStale(lockFileContent(deadPid()), now, 60_000, now), true);
  assert.equal(isStale(`${deadPid()}:elsewhere.example\n`, now, 60_000, now), false);
  assert.equal(isStale(`${deadPid()}\n`, now, 60_000, now), false);
  assert.equal(isStale('', now, 60_000, now), false);
  assert.equal(isStale('garbage', now, 60_000, now), false);
});

test('the retry delay grows from 5 ms and stops at 200 ms', () => {
  const delays = Array.from({ length: 8 }, (_, n) => lockRetryDelay(n));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 160, 200, 200]);
});

// ---- Breaking stale locks without a race ----

test('a fresh break file means someone is breaking the lock: we wait', async () => {
  const mbox = freshMbox();
  const lock = mbox + '.lock';
  await fs.writeFile(lock, lockFileContent(deadPid()));
  await fs.writeFile(breakFilePath(lock), '');
  await assert.rejects(withMailboxLock(mbox, async () => {}, { timeoutMs: 150 }), LockTimeoutError);
  assert.ok(await readOrNull(lock), 'the stale lock was left to the breaker holding the break file');
});

test('a break file left by a crash is passed over, never removed', async () => {
  const mbox = freshMbox();
  const lock = mbox + '.lock';
  await fs.writeFile(lock, lockFileContent(deadPid()));
  await fs.writeFile(breakFilePath(lock), '');
  const old = new Date(Date.now() - BREAK_STALE_MS - 60_000);
  await fs.utimes(breakFilePath(lock), old, old);
  assert.equal(await withMailboxLock(mbox, async () => 'got it', { timeoutMs: 2000 }), 'got it');
  assert.ok(await readOrNull(breakFilePath(lock)), 'the old break file is still there');
  assert.equal(await readOrNull(breakFilePath(lock, 1)), null, 'the one we used is gone');
  assert.equal(path.basename(breakFilePath(lock)), `.${path.basename(mbox)}.lock-break`);
});

const CHILD = fileURLToPath(new URL('./children/lock-child.ts', import.meta.url));

function startChild(args: string[]): { child: ChildProcess; lines: AsyncIterator<string>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines: createInterface({ input: child.stdout! })[Symbol.asyncIterator](), exited };
}

async function nextLine(lines: AsyncIterator<string>): Promise<string> {
  const { value, done } = await lines.next();
  assert.ok(!done, 'the child ended early');
  return value;
}

// Holders' "ROUND enter PID" / "ROUND exit PID" lines must pair up: nobody
// enters while someone else is inside.
function assertNoOverlap(log: string): void {
  let inside: string | null = null;
  for (const line of log.trim().split('\n')) {
    const [round, what, pid] = line.split(' ');
    if (what === 'enter') {
      assert.equal(inside, null, `round ${round}: ${pid} entered while ${inside} held the lock`);
      inside = pid;
    } else {
      assert.equal(inside, pid, `round ${round}: exit of ${pid}`);
      inside = null;
    }
  }
}

test('three processes racing to break one stale lock: never two holders at once', { timeout: 120_000 }, async () => {
  const log = path.join(dir, 'race.log');
  await fs.writeFile(log, '');
  const racers = [0, 1, 2].map(() => startChild(['race', '60000', '15', log]));
  const rounds = 40;
  try {
    for (let round = 0; round < rounds; round++) {
      const mbox = freshMbox();
      // Stale by age (10 minutes old) and from another host: every racer
      // judges it stale at the same moment.
      await fs.writeFile(mbox + '.lock', '4242:another-host.example\n');
      const old = new Date(Date.now() - 10 * 60 * 1000);
      await fs.utimes(mbox + '.lock', old, old);
      const at = Date.now() + 150; // time for the line to reach every racer
      for (const { child } of racers) child.stdin!.write(`${round} ${mbox} ${at}\n`);
      for (const { lines } of racers) assert.equal(await nextLine(lines), `done ${round}`);
    }
  } finally {
    for (const { child } of racers) child.stdin!.end();
    await Promise.all(racers.map((r) => r.exited));
  }
  const text = await fs.readFile(log, 'utf8');
  assert.equal(text.trim().split('\n').length, rounds * 3 * 2);
  assertNoOverlap(text);
});

test('a holder working for longer than staleMs keeps its lock (it refreshes the mtime)', { timeout: 60_000 }, async () => {
  const mbox = freshMbox();
  const log = path.join(dir, 'long.log');
  await fs.writeFile(log, '');
  const staleMs = 1500;
  const holder = startChild(['hold', mbox, String(staleMs), '4500', log]);
  assert.equal(await nextLine(holder.lines), 'locked');
  // Another process (this one) wants the same mailbox, with the same notion of stale.
  await withMailboxLock(mbox, async () => fs.appendFile(log, `hold enter ${process.pid}\nhold exit ${process.pid}\n`), { staleMs, timeoutMs: 30_000 });
  assert.equal(await holder.exited, 0);
  const text = await fs.readFile(log, 'utf8');
  assertNoOverlap(text);
  assert.deepEqual(text.trim().split('\n').map((l) => l.split(' ')[2]), [String(holder.child.pid), String(holder.child.pid), String(process.pid), String(process.pid)]);
});
