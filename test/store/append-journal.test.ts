// The append journal: its record, the recovery rules, and recovery by each
// of its callers (the appender, the index load, the expunge) on files left
// the way a killed process or a power cut leaves them. The kill test with a
// real process is append-crash.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { AppendJournal, formatRecord, journalPathFor, pageChecksums, parseRecord, planRecovery, rangeToCheck, stateOf } from '../../src/store/append-journal.ts';
import type { JournalRecord, MboxState } from '../../src/store/append-journal.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { expungeMessages } from '../../src/store/mbox-expunge.ts';
import { loadIndex } from '../../src/store/mbox-index.ts';
import { readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import { contentOf, scratchDir } from './helpers.ts';

const dir = await scratchDir('journal');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

const message = (text: string) => ({ envelopeFrom: 'a@example.org', date: DATE, content: contentOf(text) });

async function bodies(mbox: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of scanMbox(mbox)) out.push((await readMessageBuffer(mbox, entry)).toString());
  return out;
}

async function mboxState(mbox: string): Promise<MboxState> {
  return stateOf(await fs.stat(mbox, { bigint: true }));
}

// Writes a record into the mbox's journal, as the appender would have.
async function writeRecord(mbox: string, record: JournalRecord): Promise<void> {
  await fs.writeFile(journalPathFor(mbox), formatRecord(record));
}

// The state a process killed mid-batch leaves: a pending record at the old
// end, and half a message after it.
async function tornBatch(mbox: string): Promise<{ whole: Buffer }> {
  await new MboxAppender().append(mbox, message('Subject: whole\n\nkept\n'));
  const whole = await fs.readFile(mbox);
  const { ino } = await mboxState(mbox);
  await writeRecord(mbox, { ino, start: whole.length, end: null, ctimeNs: null });
  await fs.appendFile(mbox, 'From b@example.org Mon Nov  2 03:05:51 2026\nSubject: torn\n\nhalf a li');
  return { whole };
}

test('a record is 512 bytes, reads back, and a damaged one reads as none', () => {
  const pending: JournalRecord = { ino: 123456789012n, start: 42, end: null, ctimeNs: null };
  const complete: JournalRecord = { ino: 7n, start: 42, end: 5000, ctimeNs: 1763780751123456789n };
  const planned: JournalRecord = { ino: 99999999999999999999n, start: 999_999_999_000_000, end: 999_999_999_065_536, ctimeNs: null, pages: Array.from({ length: 17 }, (_, i) => 0xffffffff - i) };
  for (const record of [pending, complete, planned]) {
    const bytes = formatRecord(record);
    assert.equal(bytes.length, 512);
    assert.deepEqual(parseRecord(bytes), record);
  }
  for (const record of [complete, planned]) {
    const bytes = formatRecord(record);
    const torn = Buffer.concat([formatRecord({ ...record, start: 99 }).subarray(0, 60), bytes.subarray(60)]);
    assert.equal(parseRecord(torn), null, 'half old, half new');
    assert.equal(parseRecord(Buffer.from(bytes.toString().replace(`end=${record.end}`, `end=${record.end! + 1}`))), null, 'checksum');
  }
  assert.equal(parseRecord(Buffer.from(formatRecord(planned).toString().replace('pages=ffffffff', 'pages=fffffffe'))), null, 'a page sum is covered too');
  assert.equal(parseRecord(Buffer.alloc(0)), null);
});

test('pageChecksums: one CRC per page of the file the bytes fall in, the first and last pieces short', () => {
  const bytes = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));
  // Written at 4000: 96 bytes finish page 0, then pages 1 and 2 whole, then 1712 bytes of page 3.
  const sums = pageChecksums(4000, bytes);
  assert.equal(sums.length, 4);
  assert.deepEqual(pageChecksums(4000, bytes.subarray(0, 96 + 4096)), sums.slice(0, 2), 'a prefix ending on a page boundary: the same sums');
  assert.equal(pageChecksums(0, bytes).length, 3);
  assert.deepEqual(pageChecksums(0, Buffer.alloc(0)), []);
});

test('planRecovery: what is cut, and what is never cut', () => {
  const ino = 10n;
  const T = 1_000_000n;
  const pending = { ino, start: 100, end: null, ctimeNs: null };
  const complete = { ino, start: 100, end: 200, ctimeNs: T };
  const at = (size: number, ctimeNs = T, fileIno = ino): MboxState => ({ size, ino: fileIno, ctimeNs });
  // A batch that never finished: cut back to its start.
  assert.deepEqual(planRecovery(pending, at(150)), { cutTo: 100, settle: true });
  assert.deepEqual(planRecovery(pending, at(100)), { cutTo: null, settle: true }); // nothing written yet
  assert.deepEqual(planRecovery(pending, at(50)), { cutTo: null, settle: true }); // rewritten by someone: never cut
  assert.deepEqual(planRecovery(pending, at(150, T, 11n)), { cutTo: null, settle: true }); // another file
  // A complete batch: bytes after it (another program appending) are never cut.
  assert.deepEqual(planRecovery(complete, at(200)), { cutTo: null, settle: false });
  assert.deepEqual(planRecovery(complete, at(300, T + 5n)), { cutTo: null, settle: false });
  // Shorter than its end, not touched since: a power cut before the mbox's fsync.
  assert.deepEqual(planRecovery(complete, at(150)), { cutTo: 100, settle: true });
  assert.deepEqual(planRecovery(complete, at(150, T - 1n)), { cutTo: 100, settle: true });
  // Shorter, but changed since (mutt rewrote it in place), or replaced: left alone.
  assert.deepEqual(planRecovery(complete, at(150, T + 1n)), { cutTo: null, settle: false });
  assert.deepEqual(planRecovery(complete, at(150, T, 11n)), { cutTo: null, settle: false });
  assert.deepEqual(planRecovery(null, at(150)), { cutTo: null, settle: false });
});

test('planRecovery of a planned batch: cut only a tail that is whole pages of the batch itself', () => {
  const ino = 10n;
  const start = 4000;
  const batch = Buffer.from(Array.from({ length: 10_000 }, (_, i) => 'abcdefghij'.charCodeAt(i % 10)));
  const planned: JournalRecord = { ino, start, end: start + batch.length, ctimeNs: null, pages: pageChecksums(start, batch) };
  const at = (size: number, fileIno = ino): MboxState => ({ size, ino: fileIno, ctimeNs: 5n });
  // Whole (it reaches its end, or more was appended since), never begun, or another file: nothing to read, nothing to do.
  for (const state of [at(14_000), at(20_000), at(4000), at(100), at(8000, 11n)]) {
    assert.equal(rangeToCheck(planned, state), null);
    assert.deepEqual(planRecovery(planned, state), { cutTo: null, settle: false });
  }
  // Torn at a page boundary: the bytes there are the batch's, page for page.
  const tornAt = 8192; // the first piece (96 bytes) and one whole page
  assert.deepEqual(rangeToCheck(planned, at(tornAt)), { from: start, to: tornAt });
  assert.deepEqual(planRecovery(planned, at(tornAt), batch.subarray(0, tornAt - start)), { cutTo: start, settle: true });
  // The same length of other bytes (another program rewrote the file since), or a length no crash
  // leaves (not on a page boundary): left alone, and settled so that it is not read again.
  const other = Buffer.from(batch.subarray(0, tornAt - start)).fill('x', 50, 60);
  assert.deepEqual(planRecovery(planned, at(tornAt), other), { cutTo: null, settle: true });
  assert.deepEqual(planRecovery(planned, at(tornAt + 10), batch.subarray(0, tornAt + 10 - start)), { cutTo: null, settle: true });
  assert.deepEqual(planRecovery(planned, at(tornAt), null), { cutTo: null, settle: true }, 'bytes not read: never cut');
});

test('a small batch leaves a planned record of its bytes; a batch over 64 KiB a complete record of where it went', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('Subject: 1\n\none\n'));
  const first = (await fs.stat(mbox)).size;
  const result = await appender.append(mbox, message('Subject: 2\n\ntwo\n'));
  let state = await mboxState(mbox);
  const written = (await fs.readFile(mbox)).subarray(first);
  assert.deepEqual(parseRecord(await fs.readFile(journalPathFor(mbox))), { ino: state.ino, start: first, end: state.size, ctimeNs: null, pages: pageChecksums(first, written) });
  assert.equal(result.offset, first);

  const large = await appender.append(mbox, message(`Subject: 3\n\n${'x'.repeat(70 * 1024)}\n`));
  state = await mboxState(mbox);
  assert.deepEqual(parseRecord(await fs.readFile(journalPathFor(mbox))), { ino: state.ino, start: large.offset, end: state.size, ctimeNs: state.ctimeNs });
});

// The state a crash leaves in a small batch: its planned record, and the
// batch's first pages (up to a page boundary of the file) after the old end.
async function tornPlannedBatch(mbox: string): Promise<{ whole: Buffer }> {
  await new MboxAppender().append(mbox, message('Subject: whole\n\nkept\n'));
  const whole = await fs.readFile(mbox);
  const { ino } = await mboxState(mbox);
  const batch = Buffer.from(`From b@example.org Mon Nov  2 03:05:51 2026\nSubject: torn\n\n${'y'.repeat(9000)}\n\n`);
  await writeRecord(mbox, { ino, start: whole.length, end: whole.length + batch.length, ctimeNs: null, pages: pageChecksums(whole.length, batch) });
  await fs.appendFile(mbox, batch.subarray(0, 4096 - whole.length)); // up to the end of the file's first page
  return { whole };
}

test('a small batch torn by a crash is cut by the next append and by the index load', async () => {
  for (const next of ['append', 'index'] as const) {
    const mbox = freshMbox();
    const { whole } = await tornPlannedBatch(mbox);
    if (next === 'append') {
      await new MboxAppender().append(mbox, message('Subject: next\n\nafter the crash\n'));
      assert.deepEqual(await bodies(mbox), ['Subject: whole\n\nkept\n', 'Subject: next\n\nafter the crash\n']);
    } else {
      assert.equal((await loadIndex(mbox)).messages.length, 1);
      assert.deepEqual(await fs.readFile(mbox), whole);
    }
  }
});

test('after a small batch, a file another program rewrote shorter holds other bytes: never cut', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('Subject: 1\n\none\n'));
  await appender.append(mbox, message(`Subject: 2\n\n${'z'.repeat(6000)}\n`));
  // mutt deletes message 1 and rewrites the file in place: message 2 moves down. Cut at a page
  // boundary inside where the batch was, the file looks like a torn batch by its length alone.
  const file = await fs.readFile(mbox);
  const rewritten = file.subarray(file.indexOf('\n\nFrom ') + 2).subarray(0, 4096);
  const handle = await fs.open(mbox, 'r+');
  await handle.write(rewritten, 0, rewritten.length, 0);
  await handle.truncate(rewritten.length);
  await handle.close();
  const record = parseRecord(await fs.readFile(journalPathFor(mbox)))!;
  assert.ok(record.start < 4096 && record.end! > 4096, 'the file now ends inside where the batch was');
  await loadIndex(mbox);
  assert.deepEqual(await fs.readFile(mbox), rewritten);
});

test('the next append cuts off a batch torn by a crash, then appends after the whole mail', async () => {
  const mbox = freshMbox();
  const { whole } = await tornBatch(mbox);
  await new MboxAppender().append(mbox, message('Subject: next\n\nafter the crash\n'));
  assert.deepEqual(await bodies(mbox), ['Subject: whole\n\nkept\n', 'Subject: next\n\nafter the crash\n']);
  assert.ok((await fs.readFile(mbox)).subarray(0, whole.length).equals(whole));
});

test('loading the index cuts off a torn batch: it is never indexed or served', async () => {
  const mbox = freshMbox();
  const { whole } = await tornBatch(mbox);
  const index = await loadIndex(mbox);
  assert.equal(index.messages.length, 1);
  assert.deepEqual(await fs.readFile(mbox), whole);
  const record = parseRecord(await fs.readFile(journalPathFor(mbox)))!;
  assert.deepEqual([record.start, record.end], [whole.length, whole.length], 'settled');
  // Settled: mail another program appends now is left alone by the next load.
  const procmail = 'From c@example.org Mon Nov  2 03:05:51 2026\nSubject: procmail\n\nby another program\n\n';
  await fs.appendFile(mbox, procmail);
  assert.equal((await loadIndex(mbox)).messages.length, 2);
  assert.deepEqual(await bodies(mbox), ['Subject: whole\n\nkept\n', 'Subject: procmail\n\nby another program\n']);
});

test('an expunge cuts off a torn batch before it copies the mailbox', async () => {
  const mbox = freshMbox();
  const { whole } = await tornBatch(mbox);
  const result = await expungeMessages(mbox, new Set([99]));
  assert.deepEqual([result.removed, result.index.messages.length], [[], 1]);
  assert.deepEqual(await fs.readFile(mbox), whole);
});

test('mail another program appended after a complete batch is never cut', async () => {
  const mbox = freshMbox();
  await new MboxAppender().append(mbox, message('Subject: ours\n\n1\n'));
  const procmail = 'From c@example.org Mon Nov  2 03:05:51 2026\nSubject: theirs\n\n2\n\n';
  await fs.appendFile(mbox, procmail);
  await loadIndex(mbox);
  await new MboxAppender().append(mbox, message('Subject: ours again\n\n3\n'));
  assert.deepEqual(await bodies(mbox), ['Subject: ours\n\n1\n', 'Subject: theirs\n\n2\n', 'Subject: ours again\n\n3\n']);
});

test('a file rewritten shorter by another program after a complete batch is left alone', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('Subject: 1\n\none\n'));
  await appender.append(mbox, message('Subject: 2\n\ntwo\n'));
  // mutt deletes message 2 and rewrites the file in place: same inode, shorter, later ctime.
  const file = await fs.readFile(mbox);
  const first = file.subarray(0, file.indexOf('\n\nFrom ') + 2);
  await new Promise((resolve) => setTimeout(resolve, 20)); // a coarse ctime clock moves on
  const handle = await fs.open(mbox, 'r+');
  await handle.truncate(first.length);
  await handle.close();
  const index = await loadIndex(mbox);
  assert.equal(index.messages.length, 1);
  assert.deepEqual(await fs.readFile(mbox), first);
});

test('a power cut before the mbox reached the disk: the unacknowledged batch is cut', async () => {
  const mbox = freshMbox();
  await new MboxAppender().append(mbox, message('Subject: 1\n\none\n'));
  const whole = await fs.readFile(mbox);
  // The journal says "complete up to E", but the mbox holds only part of
  // the batch and has not been touched since: cut back to the batch start.
  await fs.appendFile(mbox, 'From b@example.org Mon Nov  2 03:05:51 2026\nSubject: 2\n\nha');
  const state = await mboxState(mbox);
  await writeRecord(mbox, { ino: state.ino, start: whole.length, end: state.size + 500, ctimeNs: state.ctimeNs });
  await loadIndex(mbox);
  assert.deepEqual(await fs.readFile(mbox), whole);
});

test('an append to a mailbox without a journal (an older mailbox) creates one', async () => {
  const mbox = freshMbox();
  await fs.mkdir(path.dirname(mbox), { recursive: true });
  await fs.writeFile(mbox, 'From x@y Mon Nov  2 03:05:51 2026\nA: 0\n\n');
  assert.equal(AppendJournal.openExisting(mbox), null);
  await new MboxAppender().append(mbox, message('A: 1\n'));
  assert.deepEqual(await bodies(mbox), ['A: 0\n', 'A: 1\n']);
  assert.notEqual(parseRecord(await fs.readFile(journalPathFor(mbox))), null);
});

test('a planned record is refused for a batch over 64 KiB (its page sums would not fit the record), and the journal keeps what it had', async () => {
  const mbox = freshMbox();
  await new MboxAppender().append(mbox, message('Subject: 1\n\none\n'));
  const before = await fs.readFile(journalPathFor(mbox));
  const journal = await AppendJournal.open(mbox);
  try {
    await assert.rejects(journal.plan(1n, 0, Buffer.alloc(64 * 1024 + 1)), RangeError);
  } finally {
    journal.close();
  }
  assert.deepEqual(await fs.readFile(journalPathFor(mbox)), before);
  // The largest planned batch (17 pieces, started mid-page) reads back whole.
  const bytes = Buffer.alloc(64 * 1024, 'q');
  const record: JournalRecord = { ino: 99999999999999999999n, start: 999_999_999_999_000 - 65536, end: 999_999_999_999_000, ctimeNs: null, pages: pageChecksums(999_999_999_999_000 - 65536, bytes) };
  assert.equal(record.pages!.length, 17);
  assert.deepEqual(parseRecord(formatRecord(record)), record);
});
