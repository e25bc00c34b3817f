// The side index: built from an mbox, kept current cheaply (no rescan),
// extended when mail arrives, and rebuilt (keeping UIDs and flags) when
// another program rewrites the file; version 1 files upgraded. Also the
// scan at every chunk split. (Load times are measured by
// scripts/bench-imap-store.ts, not here.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { IndexScanner, scanMessages, WHOLE_CHECK_BYTES } from '../../src/store/mbox-index-scan.ts';
import { indexPathFor, loadIndex, saveIndex } from '../../src/store/mbox-index.ts';
import { flagJournalPathFor } from '../../src/store/flag-journal.ts';
import type { MailboxIndex } from '../../src/store/mbox-index.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { MboxScanner, readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import type { ScannedMessage } from '../../src/store/mbox-index-scan.ts';
import type { MboxEntry } from '../helpers/mbox-read.ts';
import { unquoteMboxrd } from '../../src/store/mboxrd.ts';
import { contentOf, plainIndex, scratchDir, setRowFlags } from './helpers.ts';

const dir = await scratchDir('index');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));
const NOW = Date.UTC(2026, 10, 22) + 123; // ms; UIDVALIDITY is its seconds
const clock = (ms = NOW) => ({ now: () => ms });

function text(i: number, body = `Body of message ${i}.\n`): string {
  return `From: sender${i}@example.org\nSubject: message ${i}\nMessage-ID: <m${i}@example.org>\n\n${body}`;
}

const BODIES = [
  'Hello.\nFrom the desk of the editor:\n>From an already quoted line\n',
  'Second.\n\nFrom here on, all is well.\n',
  'Third, with a blank last line.\n\n',
  'Fourth.\n>>From twice quoted\nFrom \n',
];

async function deliver(mbox: string, texts: string[]): Promise<void> {
  const appender = new MboxAppender();
  for (const t of texts) await appender.append(mbox, { envelopeFrom: 'alice@example.org', date: DATE, content: contentOf(t) });
}

async function scanAll(mbox: string): Promise<MboxEntry[]> {
  const entries: MboxEntry[] = [];
  for await (const entry of scanMbox(mbox)) entries.push(entry);
  return entries;
}

// The index's byte ranges are exactly what scanMbox finds.
async function assertMatchesFile(mbox: string, index: MailboxIndex): Promise<void> {
  const entries = await scanAll(mbox);
  assert.deepEqual(
    index.messages.records().map((m) => [m.offset, m.length, m.contentOffset]),
    entries.map((e) => [e.offset, e.length, e.contentOffset]),
  );
  assert.equal(index.mboxSize, (await fs.stat(mbox)).size);
}

// Rewrites the file as another program would (in place, no lock needed in a
// test): `edit` gets each message's stored bytes, From line to next From line.
async function rewrite(mbox: string, edit: (messages: Buffer[]) => Buffer[]): Promise<void> {
  const file = await fs.readFile(mbox);
  const entries = await scanAll(mbox);
  const raw = entries.map((e, k) => file.subarray(e.offset, entries[k + 1]?.offset ?? file.length));
  await fs.writeFile(mbox, Buffer.concat(edit(raw)));
}

// What mutt does on sync: a Status header at the end of the header.
function addStatus(raw: Buffer, status = 'RO'): Buffer {
  const end = raw.indexOf('\n\n');
  return Buffer.concat([raw.subarray(0, end + 1), Buffer.from(`Status: ${status}\n`), raw.subarray(end + 1)]);
}

test('builds the index: UIDs 1..n, byte ranges of the file, sizes as a client sees them', async () => {
  const mbox = freshMbox();
  await deliver(mbox, BODIES.map((b, i) => text(i, b)));
  const index = await loadIndex(mbox, clock());
  assert.equal(index.uidValidity, Math.floor(NOW / 1000));
  assert.equal(index.uidNext, 5);
  assert.deepEqual(index.messages.records().map((m) => m.uid), [1, 2, 3, 4]);
  assert.deepEqual(index.messages.records().map((m) => m.flags), [[], [], [], []]);
  // Internal dates from the From lines; one mod-sequence for the whole build.
  assert.deepEqual(index.messages.records().map((m) => [m.internalDate, m.modseq]), BODIES.map(() => [DATE.getTime() / 1000, 1]));
  assert.equal(index.highestModseq, 1);
  assert.equal(index.recentUid, 1, 'nothing given \\Recent yet');
  await assertMatchesFile(mbox, index);
  for (const m of index.messages.records()) {
    // RFC 1939 LIST / RFC 3501 RFC822.SIZE: unquoted, every LF sent as CRLF.
    const content = await readMessageBuffer(mbox, { ...m, envelopeFrom: '' });
    const lines = content.toString('latin1').split('\n').length - 1;
    assert.equal(m.size, content.length + lines, `size of UID ${m.uid}`);
    assert.match(m.fingerprint, /^[0-9a-f]{16}$/);
  }
  assert.equal(new Set(index.messages.records().map((m) => m.fingerprint)).size, 4);
  const indexFile = indexPathFor(mbox);
  assert.equal(indexFile, path.join(path.dirname(mbox), '.INBOX.index'));
  assert.equal((await fs.stat(indexFile)).mode & 0o777, 0o600);
  assert.match(await fs.readFile(indexFile, 'utf8'), /^jjordan-index 3 uidvalidity=\d+ uidnext=5 size=\d+ .* modseq=1 recent=1\n1 0 /);
});

test('a second load is the fast path: no scan of the mbox, the index file untouched', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2)]);
  const scans: number[] = [];
  const counting: typeof scanMessages = (handle, start, visit) => {
    scans.push(start);
    return scanMessages(handle, start, visit);
  };
  const first = await loadIndex(mbox, { ...clock(), scan: counting });
  assert.deepEqual(scans, [0], 'the first load scans the whole file');
  const before = await fs.stat(indexPathFor(mbox));
  const second = await loadIndex(mbox, { ...clock(NOW + 5000), scan: counting });
  const after = await fs.stat(indexPathFor(mbox));
  assert.deepEqual(scans, [0], 'no scan');
  assert.deepEqual(plainIndex(second), plainIndex(first));
  assert.equal(after.mtimeMs, before.mtimeMs);
  assert.equal(after.ino, before.ino); // not replaced by an atomic write either
  // New mail: only the new bytes are scanned.
  await deliver(mbox, [text(3)]);
  const third = await loadIndex(mbox, { ...clock(), scan: counting });
  assert.deepEqual(scans, [0, first.mboxSize]);
  assert.deepEqual(third.messages.records().map((m) => [m.uid, m.modseq]), [[1, 1], [2, 1], [3, 2]], 'the new message is one change');
  assert.equal(third.highestModseq, 2);
});

test('new deliveries get the next UIDs; old messages keep theirs and their flags', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2)]);
  const first = await loadIndex(mbox, clock());
  setRowFlags(first, 0, ['\\Seen', '$Label1']);
  setRowFlags(first, 1, ['\\seen', '\\Answered']); // any case, any order: stored canonical
  await saveIndex(mbox, first);
  await deliver(mbox, [text(3), text(4)]);
  const second = await loadIndex(mbox, clock(NOW + 60_000));
  assert.equal(second.uidValidity, first.uidValidity);
  assert.deepEqual(second.messages.records().slice(0, 2), first.messages.records());
  assert.deepEqual(second.messages.records().map((m) => [m.uid, m.flags]), [[1, ['\\Seen', '$Label1']], [2, ['\\Answered', '\\Seen']], [3, []], [4, []]]);
  assert.equal(second.uidNext, 5);
  await assertMatchesFile(mbox, second);
});

test('a rewrite that adds Status headers (as mutt does) keeps every UID and flag', async () => {
  const mbox = freshMbox();
  await deliver(mbox, BODIES.map((b, i) => text(i, b)));
  const first = await loadIndex(mbox, clock());
  setRowFlags(first, 2, ['\\Flagged']);
  await saveIndex(mbox, first);
  await rewrite(mbox, (raw) => [addStatus(raw[0]), ...raw.slice(1)]);
  const second = await loadIndex(mbox, clock(NOW + 60_000));
  assert.equal(second.uidValidity, first.uidValidity);
  assert.deepEqual(second.messages.records().map((m) => [m.uid, m.flags]), [[1, []], [2, []], [3, ['\\Flagged']], [4, []]]);
  assert.deepEqual(second.messages.records().map((m) => m.modseq), first.messages.records().map((m) => m.modseq), 'flags and their mod-sequences kept');
  assert.equal(second.messages.sizeAt(0), first.messages.sizeAt(0) + 'Status: RO\r\n'.length);
  assert.equal(second.uidNext, first.uidNext);
  await assertMatchesFile(mbox, second);
  // And on every message at once.
  await rewrite(mbox, (raw) => raw.map((r) => addStatus(r, 'O')));
  const third = await loadIndex(mbox, clock(NOW + 120_000));
  assert.deepEqual(third.messages.records().map((m) => m.uid), [1, 2, 3, 4]);
  await assertMatchesFile(mbox, third);
});

test('a same-size rewrite that moves messages is caught by the mtime', async () => {
  const mbox = freshMbox();
  // The last message is longer than the 256 bytes of the tail hash, so only the mtime can tell.
  await deliver(mbox, [text(1), text(2), text(3, 'long line\n'.repeat(40))]);
  await rewrite(mbox, (raw) => [addStatus(raw[0], 'O'), addStatus(raw[1], 'RO'), raw[2]]);
  const first = await loadIndex(mbox, clock());
  const tailBefore = (await fs.readFile(mbox)).subarray(-256);
  // Message 1 read, message 2 unread: one byte more, one less. Size and tail
  // stay; message 2's offset moves by one.
  await rewrite(mbox, (raw) => [
    Buffer.from(raw[0].toString().replace('Status: O\n', 'Status: RO\n')),
    Buffer.from(raw[1].toString().replace('Status: RO\n', 'Status: O\n')),
    raw[2],
  ]);
  const later = new Date(Date.now() + 10_000);
  await fs.utimes(mbox, later, later); // a coarse clock could give the same mtime
  assert.equal((await fs.stat(mbox)).size, first.mboxSize);
  assert.deepEqual((await fs.readFile(mbox)).subarray(-256), tailBefore);
  const second = await loadIndex(mbox, clock());
  assert.equal(second.messages.offsetAt(1), first.messages.offsetAt(1) + 1);
  assert.deepEqual(second.messages.records().map((m) => m.uid), [1, 2, 3]);
  await assertMatchesFile(mbox, second);
});

test('a message deleted by another program: the others keep their UIDs', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2), text(3), text(4)]);
  const first = await loadIndex(mbox, clock());
  await rewrite(mbox, (raw) => [raw[0], raw[1], raw[3]]);
  const second = await loadIndex(mbox, clock(NOW + 60_000));
  assert.equal(second.uidValidity, first.uidValidity);
  assert.deepEqual(second.messages.records().map((m) => m.uid), [1, 2, 4]);
  assert.equal(second.uidNext, 5); // UID 3 is never handed out again
  await assertMatchesFile(mbox, second);
  await deliver(mbox, [text(5)]);
  assert.deepEqual((await loadIndex(mbox, clock())).messages.records().map((m) => m.uid), [1, 2, 4, 5]);
});

test('UIDs stay ascending: a message moved to the front or a duplicate gets a new UID', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2), text(3)]);
  await loadIndex(mbox, clock());
  await rewrite(mbox, (raw) => [raw[2], raw[0], raw[1]]); // C A B
  const moved = await loadIndex(mbox, clock());
  assert.deepEqual(moved.messages.records().map((m) => m.uid), [3, 4, 5]); // C keeps 3; A, B would go backwards
  // The same message twice: the copies take the old entries in order, the
  // extra copy a new UID; after a new UID, later messages need new ones too.
  await rewrite(mbox, (raw) => [raw[0], raw[1], raw[2], raw[2]]); // C A B B
  assert.deepEqual((await loadIndex(mbox, clock())).messages.records().map((m) => m.uid), [3, 4, 5, 6]);
  await rewrite(mbox, (raw) => [raw[0], raw[1], raw[1], raw[2], raw[3]]); // C A A B B
  assert.deepEqual((await loadIndex(mbox, clock())).messages.records().map((m) => m.uid), [3, 4, 7, 8, 9]);
});

test('a corrupt index is rebuilt under a new UIDVALIDITY', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2)]);
  const first = await loadIndex(mbox, clock());
  const file = indexPathFor(mbox);
  const good = await fs.readFile(file, 'utf8');
  // A damaged line, with the clock not moved on: the new UIDVALIDITY must still differ.
  await fs.writeFile(file, good.replace(/\n1 \d+/, '\n1 x'));
  const second = await loadIndex(mbox, clock());
  assert.equal(second.uidValidity, first.uidValidity + 1);
  assert.deepEqual(second.messages.records().map((m) => m.uid), [1, 2]);
  assert.equal(await fs.readFile(file, 'utf8'), good.replace(`uidvalidity=${first.uidValidity}`, `uidvalidity=${second.uidValidity}`));
  // A cut file: its header still shows the old UIDVALIDITY, so the new one is above it.
  await fs.writeFile(file, (await fs.readFile(file, 'utf8')).slice(0, -5));
  const third = await loadIndex(mbox, clock());
  assert.equal(third.uidValidity, second.uidValidity + 1);
  // Plain garbage: UIDVALIDITY from the clock alone.
  await fs.writeFile(file, 'garbage');
  const fourth = await loadIndex(mbox, clock(NOW + 1000_000));
  assert.equal(fourth.uidValidity, Math.floor(NOW / 1000) + 1000);
  await assertMatchesFile(mbox, fourth);
});

test('a lost index rebuilt within the same second still gets a new UIDVALIDITY', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2), text(3)]);
  const first = await loadIndex(mbox, clock());
  await rewrite(mbox, (raw) => [raw[0], raw[2]]); // UID 2 is gone
  await fs.unlink(indexPathFor(mbox));
  const second = await loadIndex(mbox, clock()); // the same clock reading
  // UIDs restart at 1, so (UIDVALIDITY, UID) must not repeat: "2" is now message 3.
  assert.deepEqual(second.messages.records().map((m) => m.uid), [1, 2]);
  assert.notEqual(second.uidValidity, first.uidValidity);
});

test('a missing mbox is an empty mailbox; UIDs already handed out are not reused', async () => {
  const mbox = freshMbox();
  // No account directory at all, then a directory without the file.
  const none = await loadIndex(mbox, clock());
  assert.deepEqual([none.uidValidity, none.uidNext, none.mboxSize, none.messages.length], [Math.floor(NOW / 1000), 1, 0, 0]);
  await fs.mkdir(path.dirname(mbox));
  const empty = await loadIndex(mbox, clock());
  assert.deepEqual([empty.uidNext, empty.messages.length], [1, 0]);
  await assert.rejects(fs.stat(indexPathFor(mbox)), { code: 'ENOENT' }); // nothing written for it
  await deliver(mbox, [text(1), text(2)]);
  const full = await loadIndex(mbox, clock());
  await fs.unlink(mbox);
  const gone = await loadIndex(mbox, clock(NOW + 60_000));
  assert.deepEqual([gone.uidValidity, gone.uidNext, gone.mboxSize, gone.messages.length], [full.uidValidity, 3, 0, 0]);
  await deliver(mbox, [text(3)]);
  assert.deepEqual((await loadIndex(mbox, clock())).messages.records().map((m) => m.uid), [3]);
});

test('the scan agrees with MboxScanner at every chunk split, with CRLF and long quote runs; a CRC-32 of each message\'s bytes, also of one cut by a chunk end whose buffer was then read into again', () => {
  const m1 = 'From a@x Mon Nov  2 03:05:51 2026\nSubject: 1\nMessage-ID:\n <a@x>\n\n>From quoted\nFrom: not a separator\n';
  const m2 = 'From b@x Mon Nov  2 03:05:51 2026\r\nSubject: 2\r\n\r\nCRLF body\r\n\n';
  const m3 = 'From c@x Mon Nov  2 03:05:51 2026\n';
  const m4 = `From d@x Mon Nov  2 03:05:51 2026\nSubject: 4\n\n>>From x\n${'>'.repeat(3000)}From y\n>From`;
  const bytes = Buffer.from('junk\n' + m1 + '\n' + m2 + '\n' + m3 + '\n' + m4 + '\n\n');
  const reference = new MboxScanner();
  const entries = reference.push(bytes).concat(reference.end());
  const whole = new IndexScanner();
  const expected = whole.push(bytes).concat(whole.end());
  assert.deepEqual(expected.map((m) => [m.offset, m.length, m.contentOffset]), entries.map((e) => [e.offset, e.length, e.contentOffset]));
  // Sizes: the unquoted content, plus a CR for each LF that has none.
  const sizes = entries.map((e) => {
    const content = unquoteMboxrd(bytes.subarray(e.contentOffset, e.offset + e.length)).toString('latin1');
    return content.length + (content.match(/(?<!\r)\n/g) ?? []).length;
  });
  assert.deepEqual(expected.map((m) => m.size), sizes);
  assert.deepEqual(sizes.slice(2), [0, m4.length - 34 + 1 - 2 + 5]); // one case by hand: +LF, -2 quotes, +5 CRs
  const crcOf = (m: ScannedMessage) => crc32(bytes.subarray(m.offset, m.offset + m.length));
  assert.deepEqual(expected.map((m) => m.crc), expected.map(crcOf), 'one chunk: every message has its CRC');
  const withoutCrc = ({ crc: _, ...rest }: ScannedMessage) => rest;
  let splits = 0;
  for (let a = 0; a <= bytes.length; a += 7) {
    for (let b = a; b <= bytes.length; b += 97) {
      const scanner = new IndexScanner();
      // One read buffer for every chunk, as scanMessages reuses its own: a
      // chunk is overwritten as soon as the next one is pushed.
      const readBuffer = Buffer.alloc(bytes.length);
      const found = [[0, a], [a, b], [b, bytes.length]].flatMap(([from, to]) => {
        readBuffer.fill(0x58);
        bytes.copy(readBuffer, 0, from, to);
        return scanner.push(readBuffer.subarray(0, to - from));
      }).concat(scanner.end());
      assert.deepEqual(found.map(withoutCrc), expected.map(withoutCrc), `split at ${a},${b}`);
      assert.deepEqual(found.map((m) => m.crc), expected.map(crcOf), `split at ${a},${b}: every message's CRC`);
      splits++;
    }
  }
  assert.ok(splits > 100, `${splits} splits`);
});

test('scanMessages gives every message up to 128 KiB its CRC, also those its 1 MiB reads cut in two; a larger one none', async () => {
  const mbox = freshMbox();
  await fs.mkdir(path.dirname(mbox), { recursive: true });
  // Sizes that put message ends and From lines on both sides of the 1 MiB read ends.
  const sizes = [...Array.from({ length: 500 }, (_, i) => 3000 + ((i * 997) % 9000)), 100_000, 200_000, 90_000, ...Array.from({ length: 200 }, (_, i) => 5000 + i)];
  const messages = sizes.map((size, i) => `From s${i}@x Mon Nov  2 03:05:51 2026\nSubject: ${i}\n\n${'x'.repeat(60).concat('\n').repeat(Math.ceil(size / 61))}`);
  const bytes = Buffer.from(messages.join('\n'));
  assert.ok(bytes.length > 3 * 1024 * 1024);
  await fs.writeFile(mbox, bytes);
  const found: ScannedMessage[] = [];
  const handle = await fs.open(mbox, 'r');
  try {
    await scanMessages(handle, 0, (m) => found.push(m));
  } finally {
    await handle.close();
  }
  assert.equal(found.length, sizes.length);
  const expected = found.map((m) => (m.length > WHOLE_CHECK_BYTES ? -1 : crc32(bytes.subarray(m.offset, m.offset + m.length))));
  assert.deepEqual(found.map((m) => m.crc), expected);
  assert.equal(expected.filter((crc) => crc === -1).length, 1, 'only the message of 200,000 bytes has none');
});

test('a version 1 index is upgraded: UIDs, UIDVALIDITY and flags kept, dates read from the From lines', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2), text(3)]);
  const built = await loadIndex(mbox, clock());
  // The same index as version 1 wrote it (UIDs 5, 7, 9 after earlier expunges; flags verbatim).
  const v1Lines = built.messages.records().map((m, k) =>
    `${[5, 7, 9][k]} ${m.offset} ${m.length} ${m.contentOffset} ${m.size} ${m.fingerprint}${k === 1 ? ' \\Seen  \\Answered' : ''}`);
  const v1 = `jjordan-index 1 uidvalidity=1234 uidnext=12 size=${built.mboxSize} mtime=${built.mboxMtimeMs} tail=${built.tailHash} count=3\n${v1Lines.join('\n')}\n`;
  await fs.writeFile(indexPathFor(mbox), v1);
  const upgraded = await loadIndex(mbox, clock());
  assert.equal(upgraded.uidValidity, 1234);
  assert.equal(upgraded.uidNext, 12);
  assert.deepEqual(upgraded.messages.records().map((m) => [m.uid, m.flags, m.internalDate]), [
    [5, [], DATE.getTime() / 1000],
    [7, ['\\Answered', '\\Seen'], DATE.getTime() / 1000],
    [9, [], DATE.getTime() / 1000],
  ]);
  assert.match(await fs.readFile(indexPathFor(mbox), 'utf8'), /^jjordan-index 3 uidvalidity=1234 uidnext=12 /);
});

test('the index keeps each message\'s CRC (version 3), known or "-"; a version 2 index is read with none known, its UIDs and flags kept', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2), text(3)]);
  const built = await loadIndex(mbox, clock());
  const bytes = await fs.readFile(mbox);
  const crcs = built.messages.records().map((m) => crc32(bytes.subarray(m.offset, m.offset + m.length)));
  const crcsOf = (index: MailboxIndex) => Array.from({ length: index.messages.length }, (_, k) => index.messages.crcAt(k));
  assert.deepEqual(crcsOf(built), crcs, 'the scan\'s');
  const text3 = await fs.readFile(indexPathFor(mbox), 'latin1');
  const lines = text3.split('\n').slice(1, -1);
  assert.deepEqual(lines.map((line) => line.split(' ')[8]), crcs.map((crc) => crc.toString(16).padStart(8, '0')), 'written as 8 hex digits');
  assert.deepEqual(crcsOf(await loadIndex(mbox, clock())), crcs, 'loaded again');
  // One not known: "-".
  await fs.writeFile(indexPathFor(mbox), text3.replace(` ${lines[1].split(' ')[8]}`, ' -'));
  assert.deepEqual(crcsOf(await loadIndex(mbox, clock())), [crcs[0], -1, crcs[2]]);
  // Version 2: no CRC field; a flag on the second message.
  const v2 = text3.replace('jjordan-index 3 ', 'jjordan-index 2 ').split('\n').map((line, i) => {
    if (i === 0 || line === '') return line;
    const fields = line.split(' ');
    return [...fields.slice(0, 8), ...(i === 2 ? ['\\Seen'] : []), ...fields.slice(9)].join(' ');
  }).join('\n');
  await fs.writeFile(indexPathFor(mbox), v2);
  const read2 = await loadIndex(mbox, clock());
  assert.deepEqual(crcsOf(read2), [-1, -1, -1]);
  assert.deepEqual(read2.messages.records().map((m) => [m.uid, m.flags]), [[1, []], [2, ['\\Seen']], [3, []]]);
  // Damaged CRC fields make the file damaged (rebuilt), like any other field.
  for (const bad of ['0123456g', '0123456', '-1']) {
    await fs.writeFile(indexPathFor(mbox), text3.replace(` ${lines[0].split(' ')[8]}`, ` ${bad}`));
    const rebuilt = await loadIndex(mbox, clock());
    assert.deepEqual(crcsOf(rebuilt), crcs, `"${bad}": rebuilt by a scan`);
  }
});

test('mail indexed through the journal keeps its CRC: known again after a reload, as the scan saw it', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [text(1), text(2)]);
  await loadIndex(mbox, clock()); // built and written whole
  await deliver(mbox, [text(3), text(4)]);
  await loadIndex(mbox, clock(NOW + 60_000)); // extended: the two new messages go to the journal
  assert.match(await fs.readFile(flagJournalPathFor(mbox), 'latin1'), /^\+3 3 /m, 'the new mail is in the journal');
  const reloaded = await loadIndex(mbox, clock(NOW + 120_000)); // the index file and its journal, as after a restart
  const bytes = await fs.readFile(mbox);
  const crcs = reloaded.messages.records().map((m) => crc32(bytes.subarray(m.offset, m.offset + m.length)));
  assert.deepEqual(Array.from({ length: 4 }, (_, k) => reloaded.messages.crcAt(k)), crcs);
});

test('the From line gives the internal date; without a readable one, the file\'s time', async () => {
  const mbox = freshMbox();
  await fs.mkdir(path.dirname(mbox), { recursive: true });
  await fs.writeFile(mbox, [
    'From a@x Mon Nov  2 03:05:51 2026\nSubject: 1\n\none\n',
    'From b@x Tue Jan 12 10:00:00 2021 +0100\nSubject: 2\n\ntwo\n', // procmail-style, with an offset
    'From c@x (no date at all)\nSubject: 3\n\nthree\n',
  ].join('\n') + '\n');
  const mtime = new Date(Date.UTC(2025, 5, 1));
  await fs.utimes(mbox, mtime, mtime);
  const index = await loadIndex(mbox, clock());
  assert.deepEqual(index.messages.records().map((m) => m.internalDate), [
    Date.UTC(2026, 10, 2, 3, 5, 51) / 1000,
    Date.UTC(2021, 0, 12, 9, 0, 0) / 1000,
    mtime.getTime() / 1000,
  ]);
});
