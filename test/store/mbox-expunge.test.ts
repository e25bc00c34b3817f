// Removing messages: exactly the chosen ones go, every other byte stays,
// UIDs do not change, and a failure or crash at any step loses nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { expungeMessages, expungeTempPath } from '../../src/store/mbox-expunge.ts';
import { indexPathFor, loadIndex, saveIndex } from '../../src/store/mbox-index.ts';
import type { IndexedMessage, MailboxIndex } from '../../src/store/mbox-index.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import { contentOf, plainIndex, scratchDir, setRowFlags, withoutStamps } from './helpers.ts';

const dir = await scratchDir('expunge');
let counter = 0;
const freshMbox = () => path.join(dir, `user${counter++}`, 'INBOX');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

function text(i: number): string {
  // Body "From " lines (quoted on disk) and a blank last line in some messages.
  const body = i % 2 ? `Body ${i}.\nFrom the desk of ${i}\n>From quoted\n` : `Body ${i}.\n\n`;
  return `From: s${i}@example.org\nSubject: message ${i}\nMessage-ID: <m${i}@example.org>\n\n${body}`;
}

async function deliver(mbox: string, numbers: number[]): Promise<void> {
  const appender = new MboxAppender();
  for (const i of numbers) await appender.append(mbox, { envelopeFrom: `s${i}@example.org`, date: DATE, content: contentOf(text(i)) });
}

// Each message's content as a reader gets it, by UID.
async function contents(mbox: string, index: MailboxIndex): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const m of index.messages.records()) out.set(m.uid, (await readMessageBuffer(mbox, { ...m, envelopeFrom: '' })).toString());
  return out;
}

// The old file without the byte ranges of the removed messages (From line
// to the next From line, or to the end of the file).
function without(file: Buffer, messages: IndexedMessage[], removed: Set<number>): Buffer {
  const kept: Buffer[] = [file.subarray(0, messages[0]?.offset ?? file.length)];
  messages.forEach((m, k) => {
    if (!removed.has(m.uid)) kept.push(file.subarray(m.offset, messages[k + 1]?.offset ?? file.length));
  });
  return Buffer.concat(kept);
}

const offsetsOf = (index: MailboxIndex) => index.messages.records().map((m) => [m.uid, m.offset, m.length, m.contentOffset, m.size, m.fingerprint]);

test('removing the first, a middle and the last message leaves the others byte for byte', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3, 4, 5, 6]);
  const before = await loadIndex(mbox);
  setRowFlags(before, 1, ['\\Seen']);
  await saveIndex(mbox, before);
  const file = await fs.readFile(mbox);
  const bodies = await contents(mbox, before);

  const result = await expungeMessages(mbox, new Set([1, 3, 6, 99])); // 99: not there, ignored
  assert.deepEqual(result.removed, [1, 3, 6]);
  assert.deepEqual(result.index.messages.records().map((m) => [m.uid, m.flags]), [[2, ['\\Seen']], [4, []], [5, []]]);
  assert.deepEqual(await fs.readFile(mbox), without(file, before.messages.records(), new Set([1, 3, 6])));
  for (const [uid, body] of await contents(mbox, result.index)) assert.equal(body, bodies.get(uid), `UID ${uid}`);
  // The new file scans into exactly the saved index.
  const entries = [];
  for await (const e of scanMbox(mbox)) entries.push([e.offset, e.length, e.contentOffset]);
  assert.deepEqual(entries, result.index.messages.records().map((m) => [m.offset, m.length, m.contentOffset]));
  assert.deepEqual(plainIndex(await loadIndex(mbox)), plainIndex(result.index)); // saved, and current
  assert.equal(result.index.highestModseq, before.highestModseq + 1, 'an expunge is a change');
  assert.equal(result.index.uidNext, before.uidNext);
  assert.equal(result.index.uidValidity, before.uidValidity);
  assert.equal((await fs.stat(mbox)).mode & 0o777, 0o600);
  assert.deepEqual(withoutStamps(await fs.readdir(path.dirname(mbox))).sort(), ['.INBOX.append', '.INBOX.index', 'INBOX']);
});

test('mail delivered after the caller looked survives, byte for byte', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  const snapshot = await loadIndex(mbox); // what a POP3 session saw at login
  await deliver(mbox, [4, 5]); // arrives during the session, not indexed yet
  const file = await fs.readFile(mbox);
  const result = await expungeMessages(mbox, new Set(snapshot.messages.records().map((m) => m.uid)));
  assert.deepEqual(result.removed, [1, 2, 3]);
  assert.deepEqual(result.index.messages.records().map((m) => m.uid), [4, 5]);
  assert.deepEqual(await fs.readFile(mbox), file.subarray(snapshot.mboxSize)); // the new mail, untouched
  const bodies = await contents(mbox, result.index);
  assert.equal(bodies.get(4), text(4));
  assert.equal(bodies.get(5), text(5));
});

test('an expunge racing with deliveries loses and duplicates nothing', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3, 4]);
  const snapshot = await loadIndex(mbox);
  const appender = new MboxAppender();
  const arriving = [5, 6, 7, 8, 9, 10].map((i) =>
    appender.append(mbox, { envelopeFrom: `s${i}@example.org`, date: DATE, content: contentOf(text(i)) }),
  );
  const [result] = await Promise.all([expungeMessages(mbox, new Set([snapshot.messages.uidAt(0), snapshot.messages.uidAt(2)])), ...arriving]);
  assert.deepEqual(result.removed, [1, 3]);
  const after = await loadIndex(mbox);
  const subjects = [...(await contents(mbox, after)).values()].map((body) => /Subject: (.*)/.exec(body)![1]).sort();
  assert.deepEqual(subjects, ['message 10', 'message 2', 'message 4', 'message 5', 'message 6', 'message 7', 'message 8', 'message 9']);
  assert.ok(after.messages.records().every((m, k, all) => k === 0 || m.uid > all[k - 1].uid));
});

test('the saved index matches a fresh rebuild', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3, 4, 5]);
  await loadIndex(mbox);
  const { index } = await expungeMessages(mbox, new Set([2, 4]));
  // Force a full rescan that keeps UIDs by fingerprint: make the file look touched.
  const later = new Date(Date.now() + 10_000);
  await fs.utimes(mbox, later, later);
  const rescanned = await loadIndex(mbox);
  assert.deepEqual(offsetsOf(rescanned), offsetsOf(index));
  // And from nothing: the same messages, numbered afresh.
  await fs.unlink(indexPathFor(mbox));
  const rebuilt = await loadIndex(mbox);
  assert.deepEqual(offsetsOf(rebuilt).map((row) => row.slice(1)), offsetsOf(index).map((row) => row.slice(1)));
});

test('a crash between the rename and the index save loses no UID', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3, 4]);
  await loadIndex(mbox);
  const staleIndex = await fs.readFile(indexPathFor(mbox));
  const { index } = await expungeMessages(mbox, new Set([2]));
  await fs.writeFile(indexPathFor(mbox), staleIndex); // as if the save never happened
  const recovered = await loadIndex(mbox);
  assert.deepEqual(offsetsOf(recovered), offsetsOf(index));
  assert.equal(recovered.uidValidity, index.uidValidity);
});

test('a failure before the rename leaves the mailbox untouched and no temporary file', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3]);
  await loadIndex(mbox);
  const file = await fs.readFile(mbox);
  const indexFile = await fs.readFile(indexPathFor(mbox));
  let sawTemp = false;
  await assert.rejects(
    expungeMessages(mbox, new Set([2]), {
      beforeRename: async () => {
        sawTemp = (await fs.stat(expungeTempPath(mbox))).size < file.length; // written, message 2 left out
        throw new Error('disk on fire');
      },
    }),
    /disk on fire/,
  );
  assert.ok(sawTemp);
  assert.deepEqual(await fs.readFile(mbox), file);
  assert.deepEqual(await fs.readFile(indexPathFor(mbox)), indexFile);
  assert.deepEqual(withoutStamps(await fs.readdir(path.dirname(mbox))).sort(), ['.INBOX.append', '.INBOX.index', 'INBOX']);
  assert.deepEqual((await expungeMessages(mbox, new Set([2]))).removed, [2]); // and it works next time
});

test('a temporary file left by a crash is removed by the next expunge', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const stale = path.join(path.dirname(mbox), '.INBOX.expunge-99999');
  await fs.writeFile(stale, 'half a mailbox');
  await expungeMessages(mbox, new Set());
  await assert.rejects(fs.stat(stale), { code: 'ENOENT' });
});

test('nothing to remove: the file is not rewritten', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const before = await fs.stat(mbox);
  const result = await expungeMessages(mbox, new Set([7, 8]));
  assert.deepEqual(result.removed, []);
  assert.deepEqual(result.index.messages.records().map((m) => m.uid), [1, 2]);
  const after = await fs.stat(mbox);
  assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs]);
});

test('removing every message leaves an empty file; UIDs are not reused', async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2]);
  const result = await expungeMessages(mbox, new Set([1, 2]));
  assert.equal((await fs.stat(mbox)).size, 0);
  assert.deepEqual([result.index.messages.length, result.index.mboxSize, result.index.uidNext], [0, 0, 3]);
  await deliver(mbox, [3]);
  assert.deepEqual((await loadIndex(mbox)).messages.records().map((m) => m.uid), [3]);
});

const python = spawnSync('python3', ['-c', 'import mailbox'], { encoding: 'utf8' });

test('Python mailbox.mbox reads the rewritten file', { skip: python.status !== 0 && 'python3 not available' }, async () => {
  const mbox = freshMbox();
  await deliver(mbox, [1, 2, 3, 4, 5]);
  await loadIndex(mbox);
  await expungeMessages(mbox, new Set([1, 3, 5]));
  const script = 'import json, mailbox, sys\nprint(json.dumps([m["Subject"] for m in mailbox.mbox(sys.argv[1], create=False)]))';
  const run = spawnSync('python3', ['-c', script, mbox], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), ['message 2', 'message 4']);
});
