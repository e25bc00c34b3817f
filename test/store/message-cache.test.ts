// The message cache (store/message-cache.ts) through a real mailbox: values
// worked out once and read back, also after the mailbox was opened afresh;
// never another message's value (a damaged or torn file, another
// program's rewrite, a new UIDVALIDITY, a foreign file); dead records
// compacted away; a full disk costs the cache, never the answer; and the
// file goes with its folder when it is renamed or deleted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { deleteFolder, renameFolder, createFolder, folderPath } from '../../src/store/folders.ts';
import { openMailbox } from '../../src/store/mailbox.ts';
import type { CacheFill, MailboxOptions, MessageContent } from '../../src/store/mailbox.ts';
import { dropIdleMailboxes } from '../../src/store/mailbox-registry.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { indexPathFor } from '../../src/store/mbox-index.ts';
import { cachePathFor } from '../../src/store/message-cache-file.ts';
import { writeAt } from '../../src/store/message-cache-file.ts';
import { CacheDirectory } from '../../src/store/message-cache-directory.ts';
import { contentOf, scratchDir } from './helpers.ts';

const dir = await scratchDir('message-cache');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

const text = (i: number, pad = 0) => `Subject: message ${i}\nMessage-ID: <m${i}@example.org>\n\nBody of message ${i}.\n${'x'.repeat(pad)}\n`;

async function deliver(mbox: string, numbers: number[], pad = 0): Promise<void> {
  const appender = new MboxAppender();
  for (const i of numbers) await appender.append(mbox, { envelopeFrom: `s${i}@example.org`, date: DATE, content: contentOf(text(i, pad)) });
}

/** A fill that makes two values from the header and counts the messages it was called for. */
function countingFill(pad = 0): CacheFill & { calls: number } {
  const fill = {
    calls: 0,
    extent: 'header' as const,
    compute(content: MessageContent) {
      fill.calls++;
      const header = content.bytes!.toString('latin1');
      return [`subject=${/Subject: (.*)/.exec(header)![1]}`, `length=${header.length}${'v'.repeat(pad)}`];
    },
  };
  return fill;
}

async function values(mbox: string, fill: CacheFill, opts: MailboxOptions = {}): Promise<(string | null)[]> {
  const box = await openMailbox(mbox, opts);
  try {
    return await box.cachedValues([...box.snapshot().uids], [0, 5], fill);
  } finally {
    await box.close();
    await dropIdleMailboxes(); // queued writes done, nothing kept in memory: the next open reads the file
  }
}

// Another program (procmail, mutt) changing the file under the dot-lock.
async function outside(mbox: string, change: (file: string) => string): Promise<void> {
  await withMailboxLock(mbox, async () => fs.writeFile(mbox, change(await fs.readFile(mbox, 'latin1')), 'latin1'));
  const later = new Date(Date.now() + 5000);
  await fs.utimes(mbox, later, later);
}

const expected = (numbers: number[]) => numbers.flatMap((i) => [`subject=message ${i}`, `length=${text(i).indexOf('\n\n') + 2}`]);

test('values are worked out once and read back, also by a mailbox opened afresh', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const fill = countingFill();
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 3);
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 3, 'none worked out again');
  // Some UIDs only, one of them gone: null for it.
  const box = await openMailbox(mbox);
  try {
    assert.deepEqual(await box.cachedValues([2, 99], [5], fill), [expected([2])[1], null]);
    assert.equal(fill.calls, 3);
  } finally {
    await box.close();
  }
  await deliver(mbox, [4]);
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3, 4]));
  assert.equal(fill.calls, 4, 'only the new message');
});

test('a damaged record and a torn end are worked out again, never believed', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const fill = countingFill();
  await values(mbox, fill);
  const cache = cachePathFor(mbox);
  const bytes = await fs.readFile(cache);
  const damaged = Buffer.from(bytes);
  const at = damaged.indexOf('subject=message 2');
  damaged[at + 8] ^= 0x20; // "Subject=..." would be another value: the CRC says so
  await fs.writeFile(cache, damaged);
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 4, 'the damaged one only');
  // Cut in the middle of the last record, as a crash may leave it.
  const whole = await fs.readFile(cache);
  await fs.writeFile(cache, whole.subarray(0, whole.length - 5));
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 5, 'the torn one only');
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 5, 'and written again whole');
  // Not a cache file at all: ignored, and replaced.
  await fs.writeFile(cache, 'jjordan-cache 1\n' + 'garbage '.repeat(100));
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 8);
  await fs.writeFile(cache, 'something else entirely\n');
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 11);
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 11);
});

test('a value never goes to another message: a rewritten mbox, a new UIDVALIDITY', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const fill = countingFill();
  await values(mbox, fill);
  // mutt marks message 2 read: a Status field in its header, its UID and
  // fingerprint kept. The index is rebuilt from the file, and the cache
  // with it: every value is worked out again, from the file as it is.
  await outside(mbox, (file) => file.replace('Subject: message 2\n', 'Subject: message 2\nStatus: RO\n'));
  const after = await values(mbox, fill);
  assert.equal(fill.calls, 6);
  assert.deepEqual(after, [...expected([1]), 'subject=message 2', `length=${text(2).indexOf('\n\n') + 2 + 'Status: RO\n'.length}`, ...expected([3])]);
  // An edit that keeps the size (and so the UID, the fingerprint and the size the values are keyed by).
  await outside(mbox, (file) => file.replace('Subject: message 3\n', 'Subject: MESSAGE 3\n'));
  assert.equal((await values(mbox, fill))[4], 'subject=MESSAGE 3');
  assert.equal(fill.calls, 9);
  // The index lost: a new UIDVALIDITY, so every value is worked out again.
  await fs.rm(indexPathFor(mbox));
  await values(mbox, fill);
  assert.equal(fill.calls, 12);
});

test('records of expunged messages are compacted away; the others stay', async () => {
  const mbox = freshMbox();
  const numbers = Array.from({ length: 60 }, (_, i) => i + 1);
  await deliver(mbox, numbers);
  const fill = countingFill(20_000); // about 40 KB a message: past the size below which dead records stay
  await values(mbox, fill);
  const before = (await fs.stat(cachePathFor(mbox))).size;
  const box = await openMailbox(mbox);
  try {
    assert.equal((await box.expunge(numbers.slice(0, 40))).length, 40);
  } finally {
    await box.close();
  }
  const kept = await values(mbox, fill); // the load finds 2/3 dead: a compaction is queued
  assert.equal(kept.length, 40);
  assert.equal(fill.calls, 60, 'nothing worked out again');
  await values(mbox, fill);
  const after = (await fs.stat(cachePathFor(mbox))).size;
  assert.ok(after < before / 2, `compacted: ${before} -> ${after} bytes`);
  assert.deepEqual(await values(mbox, fill), kept);
  assert.equal(fill.calls, 60);
});

test('a full disk costs the cache, never the answer', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  let attempts = 0;
  const writeCache = () => {
    attempts++;
    throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  };
  const fill = countingFill();
  assert.deepEqual(await values(mbox, fill, { writeCache }), expected([1, 2, 3]));
  assert.ok(attempts > 0, 'a write was tried');
  assert.deepEqual(await values(mbox, fill), expected([1, 2, 3]));
  assert.equal(fill.calls, 6, 'nothing was kept');
});

test('a batch is written in one write per megabyte of values, not one per block read', async () => {
  // 300 messages of about 4 KB: two 1 MiB blocks for the reader, 300 values to keep.
  const mbox = freshMbox();
  await deliver(mbox, Array.from({ length: 300 }, (_, i) => i + 1), 4000);
  let writes = 0;
  const writeCache = (fd: number, bytes: Buffer, position: number) => {
    if (position > 0) writes++; // (not the new file's header)
    writeAt(fd, bytes, position);
  };
  const fill = countingFill();
  await values(mbox, fill, { writeCache });
  assert.equal(writes, 1, 'about 20 KB of values: one write, at the end');
  assert.equal(fill.calls, 300);
  await values(mbox, fill);
  assert.equal(fill.calls, 300, 'all of them were kept');
  // Values of 4 KB each, 1.2 MB in all: a write is queued once a megabyte waits (it takes what waits
  // when it runs), then one for the rest, if any is left; all of them kept.
  await fs.rm(cachePathFor(mbox));
  writes = 0;
  const bigFill = countingFill(4000);
  await values(mbox, bigFill, { writeCache });
  assert.ok(writes >= 1 && writes <= 2, `${writes} writes`);
  await values(mbox, bigFill);
  assert.equal(bigFill.calls, 300, 'all of them were kept');
});

test('the cache goes with its folder: renamed, deleted', async () => {
  const account = path.join(dir, `account${counter++}`);
  await createFolder(account, 'Work');
  const work = folderPath(account, 'Work');
  await deliver(work, [1, 2]);
  const fill = countingFill();
  await values(work, fill);
  await fs.access(cachePathFor(work));
  await renameFolder(account, 'Work', 'Done');
  const done = folderPath(account, 'Done');
  await assert.rejects(fs.access(cachePathFor(work)));
  assert.deepEqual(await values(done, fill), expected([1, 2]));
  assert.equal(fill.calls, 2, 'the values moved with the folder');
  await deleteFolder(account, 'Done');
  await assert.rejects(fs.access(cachePathFor(done)));
  assert.deepEqual((await fs.readdir(account)).filter((name) => name.includes('cache')), []);
});

test('the directory remembers a checked CRC without changing the lengths it reports or counts as dead', () => {
  const directory = new CacheDirectory();
  directory.align(new Uint32Array([7, 8, 9]));
  directory.set(0, 0, 16, 100);
  directory.set(0, 1, 116, 200, true);
  assert.equal(directory.checkedAt(0, 0), false);
  assert.equal(directory.checkedAt(0, 1), true);
  directory.markChecked(0, 0);
  assert.equal(directory.checkedAt(0, 0), true);
  assert.deepEqual([directory.lengthAt(0, 0), directory.lengthAt(0, 1)], [100, 200]);
  directory.set(0, 1, 316, 50); // a new record for row 1: the old one is dead, and not yet checked
  assert.equal(directory.checkedAt(0, 1), false);
  assert.equal(directory.deadBytes, 200);
  directory.align(new Uint32Array([8])); // UID 7 expunged; UID 8 keeps its entry
  assert.equal(directory.deadBytes, 300);
  assert.deepEqual([directory.offsetAt(0, 0), directory.lengthAt(0, 0)], [316, 50]);
  const seen: number[] = [];
  directory.forEach((_kind, _k, _offset, length) => seen.push(length));
  assert.deepEqual(seen, [50]);
});
