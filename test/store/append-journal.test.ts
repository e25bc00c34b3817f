// The append journal: its record, the recovery rules, and recovery by each
// of its callers (the appender, the index load, the expunge) on files left
// the way a killed process or a power cut leaves them. The kill test with a
// real process is append-crash.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { AppendJournal, formatRecord, journalPathFor, parseRecord, planRecovery, stateOf } from '../../src/store/append-journal.ts';
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

test('a record is 128 bytes, reads back, and a damaged one reads as none', () => {
  const pending: JournalRecord = { ino: 123456789012n, start: 42, end: null, ctimeNs: null };
  const complete: JournalRecord = { ino: 7n, start: 42, end: 5000, ctimeNs: 1763780751123456789n };
  for (const record of [pending, complete]) {
    const bytes = formatRecord(record);
    assert.equal(bytes.length, 128);
    assert.deepEqual(parseRecord(bytes), record);
  }
  const bytes = formatRecord(complete);
  const torn = Buffer.concat([formatRecord({ ...complete, start: 99 }).subarray(0, 40), bytes.subarray(40)]);
  assert.equal(parseRecord(torn), null, 'half old, half new');
  assert.equal(parseRecord(Buffer.from(bytes.toString().replace('end=5000', 'end=5001'))), null, 'checksum');
  assert.equal(parseRecord(Buffer.alloc(0)), null);
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

test('each batch leaves a complete record of where it went', async () => {
  const mbox = freshMbox();
  const appender = new MboxAppender();
  await appender.append(mbox, message('Subject: 1\n\none\n'));
  const first = (await fs.stat(mbox)).size;
  const result = await appender.append(mbox, message('Subject: 2\n\ntwo\n'));
  const state = await mboxState(mbox);
  const record = parseRecord(await fs.readFile(journalPathFor(mbox)));
  assert.deepEqual(record, { ino: state.ino, start: first, end: state.size, ctimeNs: state.ctimeNs });
  assert.equal(result.offset, first);
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
