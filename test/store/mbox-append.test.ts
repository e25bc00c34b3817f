// Appending to mbox files: the bytes written, group commit, locking, and
// rollback on failure (the file must never keep half a message).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { journalPathFor } from '../../src/store/append-journal.ts';
import { LockTimeoutError } from '../../src/store/dotlock.ts';
import { MboxAppender, realAppendIO } from '../../src/store/mbox-append.ts';
import type { AppendIO, AppendRequest } from '../../src/store/mbox-append.ts';
import { readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import type { MboxEntry } from '../helpers/mbox-read.ts';
import { contentOf, scratchDir, withoutStamps } from './helpers.ts';

const dir = await scratchDir('append');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51)); // a Monday, day < 10

// Content arrives in small pieces (7 bytes) unless it is big, so that chunk
// boundaries fall everywhere, including inside "From ".
function message(text: string, envelopeFrom = 'alice@example.org'): AppendRequest {
  return { envelopeFrom, date: DATE, content: contentOf(text, text.length > 1000 ? 4096 : 7) };
}

async function scanAll(mbox: string): Promise<MboxEntry[]> {
  const entries: MboxEntry[] = [];
  for await (const entry of scanMbox(mbox)) entries.push(entry);
  return entries;
}

async function readAll(mbox: string): Promise<string[]> {
  const bodies: string[] = [];
  for (const entry of await scanAll(mbox)) bodies.push((await readMessageBuffer(mbox, entry)).toString());
  return bodies;
}

test('writes the From line, the quoted message and a blank line', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  const result = await appender.append(mbox, message('Subject: hi\n\nFrom me\n>From you\n'));
  const file = await fs.readFile(mbox, 'utf8');
  const expected = 'From alice@example.org Mon Nov  2 03:05:51 2026\nSubject: hi\n\n>From me\n>>From you\n';
  assert.equal(file, expected + '\n');
  assert.deepEqual(result, { offset: 0, length: Buffer.byteLength(expected) });
});

test('null sender becomes MAILER-DAEMON; whitespace in the sender becomes _', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('A: 1\n', ''));
  await appender.append(mbox, message('A: 2\n', 'we ird\t@x\ny'));
  const lines = (await fs.readFile(mbox, 'utf8')).split('\n').filter((l) => l.startsWith('From '));
  assert.deepEqual(lines, ['From MAILER-DAEMON Mon Nov  2 03:05:51 2026', 'From we_ird_@x_y Mon Nov  2 03:05:51 2026']);
  assert.deepEqual((await scanAll(mbox)).map((e) => e.envelopeFrom), ['MAILER-DAEMON', 'we_ird_@x_y']);
});

test('creates the directory (0700) and the file (0600)', async () => {
  const mbox = freshMbox();
  await new MboxAppender().append(mbox, message('A: 1\n'));
  assert.equal((await fs.stat(path.dirname(mbox))).mode & 0o777, 0o700);
  assert.equal((await fs.stat(mbox)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(journalPathFor(mbox))).mode & 0o777, 0o600);
  assert.deepEqual(withoutStamps(await fs.readdir(path.dirname(mbox))).sort(), ['.INBOX.append', 'INBOX']); // lock removed
});

test('append, scan and read back give the same bytes and offsets', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  const texts = [
    'Subject: one\n\nFrom the start\n>From quoted\n>>From twice\n',
    'Subject: two\n\nends with blank lines\n\n\n',
    'Subject: three\n\n' + 'long line '.repeat(50_000) + '\nFrom x\n',
    'Subject: four\n\nFrom ',
    '',
  ];
  const results = [];
  for (const text of texts) results.push(await appender.append(mbox, message(text)));
  const entries = await scanAll(mbox);
  assert.deepEqual(entries.map(({ offset, length }) => ({ offset, length })), results);
  const bodies = await readAll(mbox);
  // Each message comes back exactly, except that a missing final LF was added.
  assert.deepEqual(bodies, [texts[0], texts[1], texts[2], 'Subject: four\n\nFrom \n', '']);
});

test('100 concurrent appends: all present once, with far fewer than 100 fsyncs', async () => {
  const mbox = freshMbox();
  let fsyncs = 0;
  const io: AppendIO = { ...realAppendIO, fsync: (fd) => (fsyncs++, realAppendIO.fsync(fd)) };
  const appender = new MboxAppender({ io });
  const texts = Array.from({ length: 100 }, (_, i) => `Subject: ${i}\n\nFrom body ${i}\n` + 'x'.repeat(i * 37) + '\n');
  const results = await Promise.all(texts.map((t) => appender.append(mbox, message(t))));
  assert.ok(fsyncs < 100 && fsyncs >= 1, `${fsyncs} fsyncs`);
  const entries = await scanAll(mbox);
  assert.equal(entries.length, 100);
  assert.deepEqual(new Set(await readAll(mbox)), new Set(texts));
  // Each result points at its own message.
  for (let i = 0; i < 100; i++) {
    const entry = entries.find((e) => e.offset === results[i].offset)!;
    assert.equal(entry.length, results[i].length);
    assert.equal((await readMessageBuffer(mbox, entry)).toString(), texts[i]);
  }
});

test('group commit: a batch takes everything queued during the previous fsync', async () => {
  // Ten senders each appending 20 messages one after the other, on a "disk"
  // whose fsync takes 5 ms. One fsync per message would be 200 fsyncs; with
  // group commit nearly every batch carries all ten senders' messages.
  const mbox = freshMbox();
  let fsyncs = 0;
  const slowDisk: AppendIO = {
    ...realAppendIO,
    async fsync(fd) {
      fsyncs++;
      await new Promise((r) => setTimeout(r, 5));
      return realAppendIO.fsync(fd);
    },
  };
  const appender = new MboxAppender({ io: slowDisk });
  const body = 'Subject: load\n\n' + 'y'.repeat(5000) + '\n';
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 20; i++) await appender.append(mbox, message(body));
    }),
  );
  assert.equal((await scanAll(mbox)).length, 200);
  assert.ok(fsyncs <= 30, `${fsyncs} fsyncs for 200 appends`);
});

test('a lock held by another program delays the append until it is released', async () => {
  const mbox = freshMbox();
  await fs.mkdir(path.dirname(mbox), { recursive: true });
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`);
  let done = false;
  const pending = new MboxAppender().append(mbox, message('A: 1\n')).then((r) => ((done = true), r));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(done, false, 'appended while the mailbox was locked');
  await fs.unlink(mbox + '.lock');
  const fromLine = 'From alice@example.org Mon Nov  2 03:05:51 2026\n';
  assert.deepEqual(await pending, { offset: 0, length: fromLine.length + 'A: 1\n'.length });
  assert.equal((await readAll(mbox))[0], 'A: 1\n');
});

test('a lock held past the timeout rejects the batch and leaves the file unchanged', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender({ lockTimeoutMs: 100 });
  await appender.append(mbox, message('A: 1\n'));
  const before = await fs.readFile(mbox);
  await fs.writeFile(mbox + '.lock', `${process.pid}\n`);
  const attempts = [appender.append(mbox, message('A: 2\n')), appender.append(mbox, message('A: 3\n'))];
  for (const attempt of attempts) await assert.rejects(attempt, LockTimeoutError);
  assert.deepEqual(await fs.readFile(mbox), before);
  await fs.unlink(mbox + '.lock');
});

// An AppendIO whose writes fail with ENOSPC once `limit` bytes in total have
// been written (the bytes before the limit really reach the file).
function diskFullAfter(limit: number): AppendIO & { armed: boolean } {
  let written = 0;
  const io = {
    ...realAppendIO,
    armed: true,
    async write(fd: number, data: Buffer) {
      if (io.armed && written + data.length > limit) {
        await realAppendIO.write(fd, data.subarray(0, limit - written));
        written = limit;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      written += data.length;
      return realAppendIO.write(fd, data);
    },
  };
  return io;
}

test('a write failing mid-message leaves the file byte-identical; the next append works', async () => {
  const mbox = freshMbox();
  await fs.mkdir(path.dirname(mbox), { recursive: true });
  // A file left without its final blank line, so padding is written too.
  await fs.writeFile(mbox, 'From x@y Mon Nov  2 03:05:51 2026\nA: 0\n');
  const before = await fs.readFile(mbox);
  const io = diskFullAfter(100_000);
  const appender = new MboxAppender({ io });
  const big = 'Subject: big\n\n' + 'z'.repeat(300_000) + '\n';
  const results = await Promise.allSettled([appender.append(mbox, message(big)), appender.append(mbox, message('A: 2\n'))]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal((r.reason as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  assert.deepEqual(await fs.readFile(mbox), before);
  assert.deepEqual(withoutStamps(await fs.readdir(path.dirname(mbox))).sort(), ['.INBOX.append', 'INBOX']); // no lock left

  io.armed = false;
  await appender.append(mbox, message('A: 3\n'));
  assert.deepEqual(await readAll(mbox), ['A: 0\n', 'A: 3\n']);
});

test('a failing fsync also rolls the batch back', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('A: 1\n'));
  const before = await fs.readFile(mbox);
  let fail = true;
  const io: AppendIO = {
    ...realAppendIO,
    async fsync(fd) {
      if (fail) {
        fail = false;
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      }
      return realAppendIO.fsync(fd);
    },
  };
  await assert.rejects(new MboxAppender({ io }).append(mbox, message('A: 2\n')), /EIO/);
  assert.deepEqual(await fs.readFile(mbox), before);
});

test('a content stream that fails drops only its own message from the batch', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  const broken: AppendRequest = {
    envelopeFrom: 'bad@example.org',
    date: DATE,
    content: async function* () {
      yield Buffer.from('Subject: broken\n\n' + 'q'.repeat(100_000));
      throw new Error('spool file vanished');
    },
  };
  const results = await Promise.allSettled([
    appender.append(mbox, message('A: 1\n')),
    appender.append(mbox, broken),
    appender.append(mbox, message('A: 3\n')),
  ]);
  assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.match(String((results[1] as PromiseRejectedResult).reason), /spool file vanished/);
  assert.deepEqual(await readAll(mbox), ['A: 1\n', 'A: 3\n']);
  const third = (results[2] as PromiseFulfilledResult<{ offset: number }>).value;
  assert.equal((await scanAll(mbox))[1].offset, third.offset);
});

for (const [name, existing] of [
  ['a single final LF', 'From x@y Mon Nov  2 03:05:51 2026\nA: 0\n'],
  ['no final LF', 'From x@y Mon Nov  2 03:05:51 2026\nA: 0'],
  ['a proper blank line', 'From x@y Mon Nov  2 03:05:51 2026\nA: 0\n\n'],
]) {
  test(`appending after a file that ends with ${name}`, async () => {
    const mbox = freshMbox();
    await fs.mkdir(path.dirname(mbox), { recursive: true });
    await fs.writeFile(mbox, existing);
    const result = await new MboxAppender().append(mbox, message('A: 1\n'));
    const file = await fs.readFile(mbox, 'utf8');
    assert.ok(file.startsWith(existing));
    // The new From line follows a blank line, and the old message keeps its bytes.
    assert.equal(file.slice(result.offset - 2, result.offset), '\n\n');
    const entries = await scanAll(mbox);
    assert.equal(entries.length, 2);
    assert.equal(entries[1].offset, result.offset);
    assert.deepEqual(await readAll(mbox), ['A: 0\n', 'A: 1\n']);
  });
}
