// Reading mbox files: boundaries at every chunk split, files larger than the
// read buffer, files written by other programs, and streaming one message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MboxScanner, readMessage, readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import type { MboxEntry } from '../helpers/mbox-read.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('read');
let counter = 0;
async function mboxWith(content: string | Buffer): Promise<string> {
  const file = path.join(dir, `mbox${counter++}`);
  await fs.writeFile(file, content);
  return file;
}

async function scanAll(file: string, start?: number): Promise<MboxEntry[]> {
  const entries: MboxEntry[] = [];
  for await (const entry of scanMbox(file, { start })) entries.push(entry);
  return entries;
}

const m1 = 'From a@x Mon Nov  2 03:05:51 2026\nSubject: 1\n\n>From quoted\nFrom: not a separator\n';
const m2 = 'From MAILER-DAEMON Mon Nov  2 03:05:51 2026\nSubject: 2\n\nbody ends with a blank line\n\n';
const m3 = 'From c@x Mon Nov  2 03:05:51 2026\n'; // a message with no content
const m4 = 'From d@x Mon Nov  2 03:05:51 2026\nSubject: 4\n\n>>From x\nFro';
const FILE = 'junk before the first message\n' + m1 + '\n' + m2 + '\n' + m3 + '\n' + m4 + '\n\n';

// Where each message is in FILE, worked out by hand from the pieces.
const EXPECTED: MboxEntry[] = (() => {
  const entries: MboxEntry[] = [];
  let offset = 'junk before the first message\n'.length;
  for (const [m, sender] of [[m1, 'a@x'], [m2, 'MAILER-DAEMON'], [m3, 'c@x'], [m4 + '\n', 'd@x']]) {
    const fromLineLength = m.indexOf('\n') + 1;
    entries.push({ offset, length: m.length, contentOffset: offset + fromLineLength, envelopeFrom: sender });
    offset += m.length + 1;
  }
  return entries;
})();

test('scanning finds each message, its sender and its bounds', async () => {
  const file = await mboxWith(FILE);
  assert.deepEqual(await scanAll(file), EXPECTED);
  const bodies = [];
  for (const entry of EXPECTED) bodies.push((await readMessageBuffer(file, entry)).toString());
  assert.deepEqual(bodies, [
    'Subject: 1\n\nFrom quoted\nFrom: not a separator\n',
    'Subject: 2\n\nbody ends with a blank line\n\n',
    '',
    'Subject: 4\n\n>From x\nFro\n',
  ]);
});

test('the scanner gives the same entries at every two-way and three-way chunk split', () => {
  const bytes = Buffer.from(FILE);
  const scan = (parts: Buffer[]) => {
    const scanner = new MboxScanner();
    const entries = parts.flatMap((p) => scanner.push(p));
    return entries.concat(scanner.end());
  };
  for (let a = 0; a <= bytes.length; a++) {
    assert.deepEqual(scan([bytes.subarray(0, a), bytes.subarray(a)]), EXPECTED, `split at ${a}`);
  }
  for (let a = 0; a <= bytes.length; a += 5) {
    for (let b = a; b <= bytes.length; b += 2) {
      const parts = [bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)];
      assert.deepEqual(scan(parts), EXPECTED, `split at ${a},${b}`);
    }
  }
});

test('a missing file is an empty mailbox', async () => {
  assert.deepEqual(await scanAll(path.join(dir, 'no-such-mbox')), []);
});

test('an empty file, and a file without any From line, have no messages', async () => {
  assert.deepEqual(await scanAll(await mboxWith('')), []);
  assert.deepEqual(await scanAll(await mboxWith('just text\nFrom\n>From x\n')), []);
});

test('scanning from `start` lists only the later messages, with absolute offsets', async () => {
  const file = await mboxWith(FILE);
  assert.deepEqual(await scanAll(file, EXPECTED[1].offset), EXPECTED.slice(1));
  // Starting at the separator line just before a message works too.
  assert.deepEqual(await scanAll(file, EXPECTED[2].offset - 1), EXPECTED.slice(2));
});

test('messages larger than the read buffer, with separators across its edges', async () => {
  // Sizes chosen so that separators fall near multiples of the 256 KiB read
  // size: the "From " of a message straddles a buffer edge.
  const chunk = 256 * 1024;
  const parts: string[] = [];
  const expected: { offset: number; body: string }[] = [];
  let size = 0;
  for (let i = 0; i < 4; i++) {
    const fromLine = `From m${i}@x Mon Nov  2 03:05:51 2026\n`;
    const target = (i + 1) * chunk - 2 - size; // next From lands 2 bytes before an edge
    const head = `Subject: ${i}\n\nFrom quoted ${i}\n`;
    const storedHead = `Subject: ${i}\n\n>From quoted ${i}\n`; // mboxrd-quoted on disk
    const fill = 'w'.repeat(target - fromLine.length - storedHead.length - 2) + '\n';
    const body = head + fill;
    const stored = fromLine + storedHead + fill + '\n';
    expected.push({ offset: size, body });
    parts.push(stored);
    size += Buffer.byteLength(stored);
  }
  const file = await mboxWith(parts.join(''));
  const entries = await scanAll(file);
  assert.deepEqual(entries.map((e) => e.offset), expected.map((e) => e.offset));
  assert.ok(entries.some((e) => e.offset % chunk > chunk - 5), 'no separator straddles an edge');
  for (let i = 0; i < 4; i++) {
    assert.equal((await readMessageBuffer(file, entries[i])).toString(), expected[i].body);
  }
});

test('readMessage streams in pieces, not the whole message at once', async () => {
  const body = 'Subject: big\n\n' + ('line of text\n'.repeat(100_000));
  const file = await mboxWith(`From a@x Mon Nov  2 03:05:51 2026\n${body}\n`);
  const [entry] = await scanAll(file);
  let pieces = 0;
  let total = 0;
  for await (const piece of readMessage(file, entry)) {
    pieces++;
    total += piece.length;
  }
  assert.equal(total, Buffer.byteLength(body));
  assert.ok(pieces > 1, 'read in one piece');
});

test('a huge From line keeps only its sender', async () => {
  const file = await mboxWith(`From big@x ${'x'.repeat(300_000)}\nSubject: s\n\n`);
  const [entry] = await scanAll(file);
  assert.equal(entry.envelopeFrom, 'big@x');
  assert.equal(entry.contentOffset, 'From big@x '.length + 300_001);
  assert.equal((await readMessageBuffer(file, entry)).toString(), 'Subject: s\n');
});
