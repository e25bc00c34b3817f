// The stamp a dot-lock is linked from (dotlock-stamp.ts): one file per
// directory, made once, linked as each lock; born young; made again when it
// vanished; strays of this process and of dead ones cleaned; bounded; gone
// when the process exits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isStale, lockFileContent, withMailboxLock } from '../../src/store/dotlock.ts';
import { removeAllStamps, removeIdleStamps } from '../../src/store/dotlock-stamp.ts';
import { scratchDir } from './helpers.ts';

const root = await scratchDir('dotlock-stamp');
let counter = 0;
const freshDir = async () => {
  const dir = path.join(root, `d${counter++}`);
  await fs.mkdir(dir);
  return dir;
};
const LOCK_CHILD = fileURLToPath(new URL('./children/lock-killed-child.ts', import.meta.url));
const ours = `.lock-stamp.${process.pid}.`;
const stampsIn = async (dir: string, prefix = '.lock-stamp.') => (await fs.readdir(dir)).filter((name) => name.startsWith(prefix));

test('every lock this process takes in a directory is a link to one stamp, made once: in turn and at once', async () => {
  const dir = await freshDir();
  const boxes = ['INBOX', 'Sent', 'Trash'].map((name) => path.join(dir, name));
  const inodes = new Set<number>();
  for (let round = 0; round < 5; round++) {
    for (const box of boxes) {
      await withMailboxLock(box, async () => {
        const lock = await fs.stat(box + '.lock');
        inodes.add(lock.ino);
        assert.equal(await fs.readFile(box + '.lock', 'utf8'), lockFileContent());
      });
    }
  }
  // Three at once: three names of one inode; releasing one leaves the others.
  await withMailboxLock(boxes[0], () =>
    withMailboxLock(boxes[1], async () => {
      await withMailboxLock(boxes[2], async () => {
        assert.equal((await fs.stat(boxes[2] + '.lock')).nlink, 4, 'the stamp and three locks');
      });
      assert.equal((await fs.stat(boxes[1] + '.lock')).nlink, 3, 'one lock released, two held');
      await assert.rejects(fs.stat(boxes[2] + '.lock'), { code: 'ENOENT' });
    }),
  );
  const stamps = await stampsIn(dir);
  assert.equal(stamps.length, 1, `one stamp: ${stamps}`);
  assert.ok(stamps[0].startsWith(ours));
  assert.deepEqual([...inodes], [(await fs.stat(path.join(dir, stamps[0]))).ino], 'every lock was the stamp');
  assert.deepEqual((await fs.readdir(dir)).filter((name) => name.endsWith('.lock')), [], 'no lock left');
});

test('a lock is born young: the stamp, idle for ten minutes, is linked with a fresh mtime', async () => {
  const dir = await freshDir();
  const box = path.join(dir, 'INBOX');
  await withMailboxLock(box, async () => {});
  const [stamp] = await stampsIn(dir);
  const tenMinutesAgo = new Date(Date.now() - 10 * 60_000);
  await fs.utimes(path.join(dir, stamp), tenMinutesAgo, tenMinutesAgo);
  await withMailboxLock(box, async () => {
    const lock = await fs.stat(box + '.lock');
    assert.ok(Date.now() - lock.mtimeMs < 60_000, `lock mtime ${new Date(lock.mtimeMs).toISOString()}`);
    // What another program (or another server) would judge with a 5-minute staleMs: held.
    assert.equal(isStale(await fs.readFile(box + '.lock', 'utf8'), lock.mtimeMs, 5 * 60_000), false);
  });
});

test('a stamp that vanished is made again; one that moved with a renamed directory is removed when a stamp is made where it went', async () => {
  const dir = await freshDir();
  const sub = path.join(dir, 'Archive.sbd');
  await fs.mkdir(sub);
  await withMailboxLock(path.join(sub, '2024'), async () => {});
  const [first] = await stampsIn(sub);
  // A folder renamed: its directory, with our stamp in it, moves.
  const moved = path.join(dir, 'Old.sbd');
  await fs.rename(sub, moved);
  await fs.mkdir(sub);
  await withMailboxLock(path.join(sub, '2025'), async () => {
    assert.ok(await fs.stat(path.join(sub, '2025.lock')));
  });
  assert.equal((await stampsIn(sub)).length, 1, 'made again where it vanished');
  assert.deepEqual(await stampsIn(moved), [first], 'the moved one is still there');
  // The first lock taken in the moved directory cleans it up.
  await withMailboxLock(path.join(moved, '2024'), async () => {});
  const left = await stampsIn(moved);
  assert.equal(left.length, 1);
  assert.notEqual(left[0], first, 'the stray is gone, a new stamp made');
});

test('strays: a dead process\'s stamp is removed, a live one\'s (the relay\'s, idle and old) is kept', async () => {
  const dir = await freshDir();
  const dead = spawnSync(process.execPath, ['-e', '']).pid!;
  const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    const old = new Date(Date.now() - 60 * 60_000);
    const deadStamp = path.join(dir, `.lock-stamp.${dead}.1`);
    const liveStamp = path.join(dir, `.lock-stamp.${alive.pid}.1`);
    await fs.writeFile(deadStamp, lockFileContent(dead));
    await fs.writeFile(liveStamp, lockFileContent(alive.pid));
    await fs.utimes(liveStamp, old, old);
    await withMailboxLock(path.join(dir, 'INBOX'), async () => {});
    const names = await stampsIn(dir);
    assert.ok(!names.includes(path.basename(deadStamp)), `dead one removed: ${names}`);
    assert.ok(names.includes(path.basename(liveStamp)), `live one kept: ${names}`);
    assert.equal(names.filter((name) => name.startsWith(ours)).length, 1);
  } finally {
    alive.kill();
  }
});

test('at most 64 stamps are kept: the least recently used go first, never one a held lock is linked from', async () => {
  removeAllStamps();
  const dirs: string[] = [];
  for (let i = 0; i < 70; i++) dirs.push(await freshDir());
  // The first directory's lock stays held while 69 more are taken.
  await withMailboxLock(path.join(dirs[0], 'INBOX'), async () => {
    for (const dir of dirs.slice(1)) await withMailboxLock(path.join(dir, 'INBOX'), async () => {});
    assert.equal((await fs.stat(path.join(dirs[0], 'INBOX.lock'))).nlink, 2, 'the held lock\'s stamp is still there');
  });
  let kept = 0;
  for (const dir of dirs) kept += (await stampsIn(dir, ours)).length;
  assert.equal(kept, 64);
  assert.equal((await stampsIn(dirs[0], ours)).length, 1, 'held while the others came: kept');
  assert.equal((await stampsIn(dirs[1], ours)).length, 0, 'the least recently used: removed');
  assert.equal((await stampsIn(dirs[69], ours)).length, 1);
  // A directory whose stamp was pushed out gets a new one.
  await withMailboxLock(path.join(dirs[1], 'INBOX'), async () => {});
  assert.equal((await stampsIn(dirs[1], ours)).length, 1);
});

test('a process that exits leaves no stamp behind', async () => {
  const dir = await freshDir();
  const child = spawnSync(process.execPath, [LOCK_CHILD, path.join(dir, 'INBOX'), 'plain'], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout, lockFileContent(child.pid), 'it held the lock');
  assert.deepEqual(await fs.readdir(dir), []);
});

test('a stamp no lock has used for 30 s is removed (a server at rest holds no file open in the mail tree); one a lock is linked from stays', async () => {
  const idle = await freshDir();
  const busy = await freshDir();
  await withMailboxLock(path.join(idle, 'INBOX'), async () => {});
  await withMailboxLock(path.join(busy, 'INBOX'), async () => {
    removeIdleStamps(30_000, Date.now() + 29_000);
    assert.equal((await stampsIn(idle, ours)).length, 1, 'idle for less than 30 s: kept');
    removeIdleStamps(30_000, Date.now() + 31_000);
    assert.deepEqual(await stampsIn(idle, ours), [], 'idle for 30 s: removed');
    assert.equal((await stampsIn(busy, ours)).length, 1, 'in use: kept');
  });
  await withMailboxLock(path.join(idle, 'INBOX'), async () => {});
  assert.equal((await stampsIn(idle, ours)).length, 1, 'made again when needed');
});
