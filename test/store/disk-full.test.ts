// A full disk: reading mail needs no free space (the side index is kept in
// memory until it can be written), removing mail refuses cleanly with an
// error that says why and changes nothing, and isDiskFull tells the
// protocols which errors mean "no room". First with injected failures,
// then, when the test runs as root, on a real small tmpfs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { DiskFullError, isDiskFull } from '../../src/store/disk-full.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { EXPUNGE_DISK_FULL, expungeMessages, expungeTempPath } from '../../src/store/mbox-expunge.ts';
import { indexPathFor, loadIndex, parseIndex } from '../../src/store/mbox-index.ts';
import type { IndexWriter, MailboxIndex } from '../../src/store/mbox-index.ts';
import { writeAll } from '../../src/store/file-io.ts';
import { contentOf, plainIndex, readOrNull, scratchDir } from './helpers.ts';
import { mountTmpfs, tmpfsUnavailable, unmountTmpfs } from '../helpers/tmpfs.ts';

const dir = await scratchDir('diskfull');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
const diskFull: IndexWriter = async () => {
  throw enospc();
};
// A full disk takes no journal line either.
const fullDisk = { writeIndex: diskFull, appendJournal: async (): Promise<number> => { throw enospc(); } };

async function deliver(mbox: string, numbers: number[], appender = new MboxAppender()): Promise<void> {
  for (const i of numbers) {
    const text = `Subject: message ${i}\nMessage-ID: <m${i}@example.org>\n\nBody ${i}.\n`;
    await appender.append(mbox, { envelopeFrom: `s${i}@example.org`, date: DATE, content: contentOf(text) });
  }
}

const uids = (index: MailboxIndex) => index.messages.records().map((m) => m.uid);
async function indexOnDisk(mbox: string): Promise<MailboxIndex | null> {
  const text = await readOrNull(indexPathFor(mbox));
  return text && (parseIndex(text)?.index ?? null);
}

test('isDiskFull: ENOSPC, EDQUOT and DiskFullError; nothing else', () => {
  assert.equal(isDiskFull(enospc()), true);
  assert.equal(isDiskFull(Object.assign(new Error('quota'), { code: 'EDQUOT' })), true);
  assert.equal(isDiskFull(new DiskFullError('x', enospc())), true);
  assert.equal(isDiskFull(Object.assign(new Error('io'), { code: 'EIO' })), false);
  assert.equal(isDiskFull(new Error('plain')), false);
  assert.equal(isDiskFull(null), false);
});

test('an index that cannot be written is served from memory, and written once space returns', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const first = await loadIndex(mbox);
  await deliver(mbox, [3, 4]);
  const full = await loadIndex(mbox, fullDisk);
  assert.deepEqual(uids(full), [1, 2, 3, 4]);
  assert.equal(full.uidValidity, first.uidValidity);
  assert.deepEqual(uids((await indexOnDisk(mbox))!), [1, 2], 'the file on disk is the old one');
  // Still full: the next load starts from the index in memory, so UIDs stay put.
  await deliver(mbox, [5]);
  const still = await loadIndex(mbox, fullDisk);
  assert.deepEqual(still.messages.records().slice(0, 4), full.messages.records());
  assert.deepEqual(uids(still), [1, 2, 3, 4, 5]);
  // Space is back: the very next load writes it, even with nothing new in the mbox.
  const back = await loadIndex(mbox);
  assert.deepEqual(plainIndex(back), plainIndex(still));
  assert.deepEqual(plainIndex((await indexOnDisk(mbox))!), plainIndex(still));
});

test('a lost index rebuilt on a full disk keeps one UIDVALIDITY until it can be written', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  await loadIndex(mbox);
  await fs.unlink(indexPathFor(mbox));
  const rebuilt = await loadIndex(mbox, { ...fullDisk, now: () => Date.UTC(2030, 0, 1) });
  const again = await loadIndex(mbox, { ...fullDisk, now: () => Date.UTC(2031, 0, 1) });
  assert.equal(again.uidValidity, rebuilt.uidValidity, 'a UIDL shown once still names the same message');
  assert.equal(await readOrNull(indexPathFor(mbox)), null);
  assert.equal((await loadIndex(mbox)).uidValidity, rebuilt.uidValidity);
});

test('other errors writing the index are not hidden', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1]);
  const denied: IndexWriter = async () => {
    throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  };
  await assert.rejects(loadIndex(mbox, { writeIndex: denied }), { code: 'EACCES' });
});

test('an expunge without room for the copy throws DiskFullError and changes nothing', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  await loadIndex(mbox);
  const file = await fs.readFile(mbox);
  const indexFile = await fs.readFile(indexPathFor(mbox));
  let room = 100; // bytes the "disk" still takes
  const writeCopy = async (handle: fs.FileHandle, data: Buffer) => {
    if (data.length > room) {
      await writeAll(handle, data.subarray(0, room));
      room = 0;
      throw enospc();
    }
    room -= data.length;
    await writeAll(handle, data);
  };
  await assert.rejects(expungeMessages(mbox, new Set([2]), { writeCopy }), (err: unknown) => {
    assert.ok(err instanceof DiskFullError);
    assert.equal(err.message, EXPUNGE_DISK_FULL);
    assert.equal(err.code, 'ENOSPC');
    assert.ok(isDiskFull(err));
    return true;
  });
  assert.deepEqual(await fs.readFile(mbox), file);
  assert.deepEqual(await fs.readFile(indexPathFor(mbox)), indexFile);
  assert.equal(await readOrNull(expungeTempPath(mbox)), null, 'no half copy left');
  assert.deepEqual((await expungeMessages(mbox, new Set([2]))).removed, [2], 'works once there is room');
});

test('an expunge whose index alone cannot be saved is done, and the index follows later', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  await loadIndex(mbox);
  const result = await expungeMessages(mbox, new Set([1, 3]), fullDisk);
  assert.deepEqual(result.removed, [1, 3]);
  assert.deepEqual(uids((await indexOnDisk(mbox))!), [1, 2, 3], 'the old index is still on disk');
  const after = await loadIndex(mbox);
  assert.deepEqual(plainIndex(after), plainIndex(result.index));
  assert.deepEqual(plainIndex((await indexOnDisk(mbox))!), plainIndex(result.index));
});

// ---- A real full disk (root only: mounting needs it) ----

const mountPoint = path.join(dir, 'tmpfs');
await fs.mkdir(mountPoint);
const noTmpfs = tmpfsUnavailable();
if (!noTmpfs) assert.equal(mountTmpfs(mountPoint, '1m'), null, 'mount');

async function fillDisk(filler: string): Promise<void> {
  const handle = await fs.open(filler, 'w');
  try {
    for (;;) await writeAll(handle, Buffer.alloc(64 * 1024, 0x41));
  } catch (err) {
    if (!isDiskFull(err)) throw err;
  } finally {
    await handle.close();
  }
}

test('on a really full disk: reading works, delivering and removing refuse, nothing changes', { skip: noTmpfs }, async () => {
  try {
    const mbox = path.join(mountPoint, 'user', 'INBOX');
    await deliver(mbox, [1, 2, 3]);
    const before = await loadIndex(mbox);
    await deliver(mbox, [4]); // not in the index file yet
    const filler = path.join(mountPoint, 'filler');
    await fillDisk(filler);
    const file = await fs.readFile(mbox);

    // Reading: the index is brought up to date in memory (the lock file
    // itself cannot even hold its line; it locks empty).
    const index = await loadIndex(mbox);
    assert.deepEqual(uids(index), [1, 2, 3, 4]);
    assert.equal(index.uidValidity, before.uidValidity);
    // Delivering: refused as a full disk, the mbox unchanged.
    await assert.rejects(new MboxAppender().append(mbox, { envelopeFrom: 'x@y', date: DATE, content: contentOf('A: 5\n'.repeat(20_000)) }), isDiskFull);
    assert.deepEqual(await fs.readFile(mbox), file);
    // Removing: refused with DiskFullError, nothing changed.
    await assert.rejects(expungeMessages(mbox, new Set([1])), DiskFullError);
    assert.deepEqual(await fs.readFile(mbox), file);
    assert.deepEqual(uids((await loadIndex(mbox))), [1, 2, 3, 4]);
    assert.equal(await readOrNull(mbox + '.lock'), null);

    // Space returns: the index reaches the disk and removal works.
    await fs.unlink(filler);
    assert.deepEqual(uids((await loadIndex(mbox))), [1, 2, 3, 4]);
    assert.deepEqual(uids((await indexOnDisk(mbox))!), [1, 2, 3, 4]);
    assert.deepEqual((await expungeMessages(mbox, new Set([1]))).removed, [1]);
  } finally {
    unmountTmpfs(mountPoint);
  }
});
