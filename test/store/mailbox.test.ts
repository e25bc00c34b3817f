// The shared mailbox (store/mailbox.ts): one state per mbox in a process,
// seen through handles. Snapshots shared and copy-on-write, events for
// deliveries, flag changes and expunges, \Recent given to one session,
// appends with flags and dates, reads checked against the file, and
// another program's appends and deletes reconciled with UIDs kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { flagJournalPathFor } from '../../src/store/flag-journal.ts';
import { InvalidFlagError, MessageChangedError, MessageExpungedError, openMailbox } from '../../src/store/mailbox.ts';
import type { FlagsEvent, Mailbox, MailboxChange } from '../../src/store/mailbox.ts';
import { dropIdleMailboxes, mailboxTouched, openMailboxPaths } from '../../src/store/mailbox-registry.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { indexPathFor, loadIndex } from '../../src/store/mbox-index.ts';
import { scanMbox } from '../helpers/mbox-read.ts';
import { contentOf, scratchDir } from './helpers.ts';

const dir = await scratchDir('mailbox');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

const text = (i: number) => `Subject: message ${i}\nMessage-ID: <m${i}@example.org>\n\nBody of message ${i}.\n`;

async function deliver(mbox: string, numbers: number[]): Promise<void> {
  const appender = new MboxAppender();
  for (const i of numbers) await appender.append(mbox, { envelopeFrom: `s${i}@example.org`, date: DATE, content: contentOf(text(i)) });
}

async function readAll(box: Mailbox, uid: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of box.read(uid)) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

/** The next `event` on `box`. */
function next<T>(box: Mailbox, event: string): Promise<T> {
  return new Promise((resolve) => box.once(event, resolve));
}

// Another program (procmail, mutt) changing the file under the dot-lock.
async function outside(mbox: string, change: (file: Buffer) => Buffer): Promise<void> {
  await withMailboxLock(mbox, async () => fs.writeFile(mbox, change(await fs.readFile(mbox))));
  const later = new Date(Date.now() + 5000);
  await fs.utimes(mbox, later, later); // a coarse clock could keep the mtime
}

test('two handles share one state and one snapshot until something changes', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const a = await openMailbox(mbox);
  const b = await openMailbox(mbox);
  try {
    assert.equal(a.snapshot(), b.snapshot(), 'the same object');
    assert.deepEqual([...a.snapshot().uids], [1, 2, 3]);
    assert.equal(openMailboxPaths().filter((p) => p === path.resolve(mbox)).length, 1);
    const before = a.snapshot();
    const seen = next<MailboxChange>(b, 'changed');
    const uids = await a.append([{ content: contentOf('Subject: appended\r\n\r\nhi\r\n'), flags: ['\\Seen'], internalDate: DATE }]);
    assert.deepEqual(uids, [4]);
    const change = await seen;
    assert.deepEqual([change.appended, change.expunged, change.origin === a], [[4], [], true]);
    // Copy-on-write: the old snapshot still shows what it showed; the new one shares its memory.
    assert.deepEqual([...before.uids], [1, 2, 3]);
    assert.deepEqual([...b.snapshot().uids], [1, 2, 3, 4]);
    assert.equal(b.snapshot().version, before.version + 1);
    assert.equal(b.snapshot().uids.buffer, before.uids.buffer, 'an append reuses the column');
    const expunged = next<MailboxChange>(a, 'changed');
    assert.deepEqual(await b.expunge([2]), [2]);
    assert.deepEqual((await expunged).expunged, [2]);
    assert.notEqual(a.snapshot().uids.buffer, before.uids.buffer, 'an expunge makes a new one');
    assert.deepEqual([...before.uids], [1, 2, 3], 'and the old one is untouched');
    assert.deepEqual([...a.snapshot().uids], [1, 3, 4]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('flag changes: journal, not index; one new mod-sequence; an event for every handle', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const a = await openMailbox(mbox);
  const b = await openMailbox(mbox);
  try {
    const indexBefore = await fs.stat(indexPathFor(mbox));
    const modseq = a.highestModseq;
    const event = next<FlagsEvent>(b, 'flags');
    const changes = await a.setFlags([1, 2, 99], 'add', ['\\seen', '$Label1']);
    assert.deepEqual(changes, [
      { uid: 1, flags: ['\\Seen', '$Label1'], modseq: modseq + 1 },
      { uid: 2, flags: ['\\Seen', '$Label1'], modseq: modseq + 1 },
    ]);
    assert.deepEqual((await event).changes, changes);
    assert.equal((await event).origin, a);
    assert.equal(b.message(1)!.modseq, modseq + 1);
    assert.equal(b.highestModseq, modseq + 1);
    // Nothing to change: no new mod-sequence, no event.
    assert.deepEqual(await a.setFlags([1], 'add', ['\\Seen']), []);
    assert.equal(a.highestModseq, modseq + 1);
    // UNCHANGEDSINCE (RFC 7162 3.1.3): message 1 changed after `modseq`, message 3 did not.
    const conditional = await a.setFlags([1, 3], 'set', ['\\Flagged'], { unchangedSince: modseq });
    assert.deepEqual(conditional.map((c) => c.uid), [3]);
    assert.deepEqual(a.message(1)!.flags, ['\\Seen', '$Label1']);
    assert.deepEqual(await a.setFlags([1], 'remove', ['$LABEL1']), [{ uid: 1, flags: ['\\Seen'], modseq: modseq + 3 }]);
    assert.deepEqual(a.keywords(), ['$Label1']);
    await assert.rejects(a.setFlags([1], 'add', ['\\Recent']), InvalidFlagError);
    await assert.rejects(a.setFlags([1], 'add', ['bad(keyword']), InvalidFlagError);
    const indexAfter = await fs.stat(indexPathFor(mbox));
    assert.equal(indexAfter.mtimeMs, indexBefore.mtimeMs, 'the index was not rewritten');
    assert.match(await fs.readFile(flagJournalPathFor(mbox), 'utf8'), /\n1 \d+ \\Seen \$Label1\n/);
  } finally {
    await a.close();
    await b.close();
  }
  // Read back from the files: the journal is applied.
  await dropIdleMailboxes();
  const index = await loadIndex(mbox);
  assert.deepEqual(index.messages.records().map((m) => m.flags), [['\\Seen'], ['\\Seen', '$Label1'], ['\\Flagged']]);
});

test('the journal is merged into the index once it is large, and emptied', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const box = await openMailbox(mbox);
  try {
    // 16 KiB + 16 bytes per message: a few hundred changes.
    let merged = false;
    for (let i = 0; i < 2000 && !merged; i++) {
      await box.setFlags([1 + (i % 2)], i % 4 < 2 ? 'add' : 'remove', ['\\Seen']);
      merged = (await fs.stat(flagJournalPathFor(mbox))).size === 0;
    }
    assert.ok(merged, 'merged');
    const index = await loadIndex(mbox);
    assert.deepEqual(index.messages.records().map((m) => m.flags), [box.message(1)!.flags, box.message(2)!.flags]);
    assert.equal(index.highestModseq, box.highestModseq);
  } finally {
    await box.close();
  }
});

test('\\Recent goes to exactly one caller, and the mark survives a reload', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const a = await openMailbox(mbox);
  const b = await openMailbox(mbox);
  try {
    assert.deepEqual(a.claimRecent(), [1, 2]);
    assert.deepEqual(b.claimRecent(), []);
    assert.equal(a.status().recent, 0);
    const arrived = next<MailboxChange>(b, 'changed');
    await deliver(mbox, [3]);
    mailboxTouched(mbox);
    assert.deepEqual((await arrived).appended, [3]);
    assert.equal(b.status().recent, 1);
    assert.deepEqual(b.claimRecent(), [3]);
    assert.deepEqual(a.claimRecent(), []);
  } finally {
    await a.close();
    await b.close();
  }
  await dropIdleMailboxes();
  const again = await openMailbox(mbox);
  try {
    assert.deepEqual(again.claimRecent(), [], 'nobody gets them twice');
  } finally {
    await again.close();
  }
});

test('append: flags, internal date to the second, CRLF stored as LF, all or nothing', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1]);
  const box = await openMailbox(mbox);
  try {
    const when = new Date(Date.UTC(2020, 1, 29, 12, 34, 56, 789));
    const uids = await box.append([
      { content: contentOf('Subject: a\r\n\r\nFrom here\r\nline\r\n'), flags: ['\\Seen', '\\Draft'], internalDate: when },
      { content: contentOf('Subject: b\n\nbare\rCR\n'), flags: [], internalDate: when },
    ]);
    assert.deepEqual(uids, [2, 3]);
    const m = box.message(2)!;
    assert.deepEqual([m.flags, m.internalDate], [['\\Seen', '\\Draft'], Math.floor(when.getTime() / 1000)]);
    assert.equal(await readAll(box, 2), 'Subject: a\n\nFrom here\nline\n');
    assert.equal(m.size, 'Subject: a\r\n\r\nFrom here\r\nline\r\n'.length);
    assert.equal(await readAll(box, 3), 'Subject: b\n\nbare\nCR\n');
    // A failing content: nothing of the batch stays.
    const before = await fs.readFile(mbox);
    const failing = async function* () {
      yield Buffer.from('Subject: half\r\n');
      throw new Error('client went away');
    };
    await assert.rejects(box.append([{ content: contentOf('Subject: ok\r\n\r\nx\r\n'), flags: [], internalDate: when }, { content: failing, flags: [], internalDate: when }]), /client went away/);
    assert.deepEqual(await fs.readFile(mbox), before);
    await assert.rejects(box.append([{ content: contentOf('x'), flags: ['\\Bogus'], internalDate: when }]), InvalidFlagError);
    assert.deepEqual(await fs.readFile(mbox), before);
    assert.deepEqual([...box.snapshot().uids], [1, 2, 3]);
  } finally {
    await box.close();
  }
  // Mutt and our own scan agree on the file.
  const entries = [];
  for await (const e of scanMbox(mbox)) entries.push(e.envelopeFrom);
  assert.deepEqual(entries, ['s1@example.org', 'MAILER-DAEMON', 'MAILER-DAEMON']);
});

test('another program appends and deletes under the dot-lock: UIDs are kept, sessions told', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const box = await openMailbox(mbox);
  try {
    await box.setFlags([2], 'add', ['\\Flagged']);
    // procmail appends one.
    let change = next<MailboxChange>(box, 'changed');
    await outside(mbox, (file) => Buffer.concat([file, Buffer.from(`From x@y Mon Nov  2 03:05:51 2026\n${text(4)}\n`)]));
    await box.refresh();
    assert.deepEqual((await change).appended, [4]);
    // mutt deletes message 1 and adds a Status: field to message 3.
    change = next<MailboxChange>(box, 'changed');
    await outside(mbox, (file) => {
      const start2 = file.indexOf('\n\nFrom ') + 2;
      return Buffer.from(file.subarray(start2).toString().replace('Subject: message 3\n', 'Subject: message 3\nStatus: RO\n'));
    });
    await box.refresh();
    const seen = await change;
    assert.deepEqual([seen.expunged, seen.appended], [[1], []]);
    assert.deepEqual([...box.snapshot().uids], [2, 3, 4]);
    assert.deepEqual(box.message(2)!.flags, ['\\Flagged'], 'flags kept with the UID');
    assert.match(await readAll(box, 3), /Status: RO\n/);
    assert.equal(await readAll(box, 4), text(4));
  } finally {
    await box.close();
  }
});

test('a same-size rewrite behind the index: read throws, never other bytes; then the refresh heals', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const box = await openMailbox(mbox);
  try {
    const record = box.message(2)!;
    // Rewritten in place, same size, same mtime: message 2 moves by one byte.
    const file = await fs.readFile(mbox);
    const { mtime } = await fs.stat(mbox);
    const shifted = Buffer.from(file.toString().replace('Subject: message 1\n', 'Subject: message 1 \n').replace('Body of message 2.\n', 'Body of message 2\n'));
    assert.equal(shifted.length, file.length);
    await fs.writeFile(mbox, shifted);
    await fs.utimes(mbox, mtime, mtime);
    await assert.rejects(readAll(box, 2), MessageChangedError);
    await assert.rejects(readAll(box, 1), MessageChangedError);
    // The index is rebuilt once the file's time shows the change.
    const later = new Date(Date.now() + 5000);
    await fs.utimes(mbox, later, later);
    await box.refresh();
    const uids = [...box.snapshot().uids];
    for (const uid of uids) assert.match(await readAll(box, uid), /^Subject: message [12] ?\n/);
    assert.ok(!uids.includes(2) || box.message(2)!.offset !== record.offset);
  } finally {
    await box.close();
  }
});

test('a message expunged through another handle: read throws MessageExpungedError', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const a = await openMailbox(mbox);
  const b = await openMailbox(mbox);
  try {
    const stale = a.read(1); // asked for before the expunge
    await b.expunge([1]);
    await assert.rejects(readAll(a, 1), MessageExpungedError);
    assert.equal(a.message(1), undefined);
    assert.equal(await readAll(a, 2), text(2));
    // One asked for before the expunge, read after it: an error too (its
    // file was replaced), not bytes from the new file.
    await assert.rejects(async () => {
      for await (const chunk of stale) assert.fail(`got bytes: ${chunk}`);
    }, MessageChangedError);
  } finally {
    await a.close();
    await b.close();
  }
});

test('watching (IDLE): a change by another program is noticed without a refresh call', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1]);
  const box = await openMailbox(mbox);
  try {
    box.watch(true);
    const change = next<MailboxChange>(box, 'changed');
    await outside(mbox, (file) => Buffer.concat([file, Buffer.from(`From x@y Mon Nov  2 03:05:51 2026\n${text(2)}\n`)]));
    assert.deepEqual((await change).appended, [2]);
    box.watch(false);
  } finally {
    await box.close();
  }
});

test('status: messages, recent, unseen and the UID figures', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const box = await openMailbox(mbox);
  try {
    await box.setFlags([2], 'add', ['\\Seen']);
    const status = box.status();
    assert.deepEqual({ ...status, uidValidity: 0, highestModseq: 0 }, { messages: 3, recent: 3, unseen: 2, uidNext: 4, uidValidity: 0, highestModseq: 0 });
    assert.equal(status.uidValidity, box.uidValidity);
  } finally {
    await box.close();
  }
});

test('a closed handle refuses use; closing twice is harmless; the last close keeps the state a while', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1]);
  const box = await openMailbox(mbox);
  await box.close();
  await box.close();
  assert.throws(() => box.snapshot(), /closed/);
  assert.ok(openMailboxPaths().includes(path.resolve(mbox)), 'kept for a quick reopen');
  await dropIdleMailboxes();
  assert.ok(!openMailboxPaths().includes(path.resolve(mbox)));
});

test('append to a folder whose file does not exist is refused (TRYCREATE); INBOX is made', async () => {
  const account = path.join(dir, `user${counter++}`);
  const missing = await openMailbox(path.join(account, 'Nowhere'));
  try {
    await assert.rejects(missing.append([{ content: contentOf('Subject: x\r\n\r\nx\r\n'), flags: [], internalDate: DATE }]), /no such folder/);
  } finally {
    await missing.close();
  }
  await assert.rejects(fs.access(path.join(account, 'Nowhere')), { code: 'ENOENT' });
  const inbox = await openMailbox(path.join(account, 'INBOX'));
  try {
    assert.deepEqual(await inbox.append([{ content: contentOf('Subject: x\r\n\r\nx\r\n'), flags: [], internalDate: DATE }]), [1]);
  } finally {
    await inbox.close();
  }
});

test('a full disk: flag changes and new mail are kept in memory, and written when space returns', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const enospc = () => Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
  const full = { writeIndex: async () => { throw enospc(); }, appendJournal: async (): Promise<number> => { throw enospc(); } };
  const indexBefore = await fs.readFile(indexPathFor(mbox)).catch(() => null);
  const box = await openMailbox(mbox, full);
  try {
    assert.equal((await box.setFlags([1], 'add', ['\\Seen'])).length, 1, 'the change is made, in memory');
    assert.deepEqual(box.message(1)!.flags, ['\\Seen']);
    const arrived = next<MailboxChange>(box, 'changed');
    await deliver(mbox, [3]);
    mailboxTouched(mbox);
    assert.deepEqual((await arrived).appended, [3]);
  } finally {
    await box.close();
  }
  assert.deepEqual(await fs.readFile(indexPathFor(mbox)).catch(() => null), indexBefore, 'nothing reached the disk');
  await dropIdleMailboxes(); // tries to write once more: still full
  // Space is back: the next open writes what memory kept.
  const again = await openMailbox(mbox);
  try {
    assert.deepEqual([...again.snapshot().uids], [1, 2, 3]);
    assert.deepEqual(again.message(1)!.flags, ['\\Seen']);
    await again.setFlags([2], 'add', ['\\Answered']); // forces a save of what was pending
  } finally {
    await again.close();
  }
  await dropIdleMailboxes();
  const index = await loadIndex(mbox);
  assert.deepEqual(index.messages.records().map((m) => [m.uid, m.flags]), [[1, ['\\Seen']], [2, ['\\Answered']], [3, []]]);
});

test('new mail seen by an open mailbox goes to the journal, not into a rewritten index; a fresh load agrees', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const box = await openMailbox(mbox);
  try {
    const indexBefore = await fs.stat(indexPathFor(mbox));
    const arrived = next<MailboxChange>(box, 'changed');
    await deliver(mbox, [3, 4]);
    mailboxTouched(mbox);
    assert.deepEqual((await arrived).appended, [3, 4]);
    const uids = await box.append([{ content: contentOf('Subject: 5\r\n\r\nfive\r\n'), flags: ['\\Seen'], internalDate: DATE }]);
    assert.deepEqual(uids, [5]);
    const indexAfter = await fs.stat(indexPathFor(mbox));
    assert.deepEqual([indexAfter.ino, indexAfter.mtimeMs], [indexBefore.ino, indexBefore.mtimeMs], 'the index file was not rewritten');
    assert.match(await fs.readFile(flagJournalPathFor(mbox), 'utf8'), /\n\+3 3 .* [0-9a-f]{8}\n\+3 4 .* [0-9a-f]{8}\nmbox size=.*\n\+3 5 .* [0-9a-f]{8} \\Seen\nmbox size=/);
  } finally {
    await box.close();
  }
  await dropIdleMailboxes();
  const index = await loadIndex(mbox);
  assert.deepEqual(index.messages.records().map((m) => [m.uid, m.flags]), [[1, []], [2, []], [3, []], [4, []], [5, ['\\Seen']]]);
  assert.equal(index.mboxSize, (await fs.stat(mbox)).size);
});
