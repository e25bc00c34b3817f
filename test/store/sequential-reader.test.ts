// Reading many messages in file order (store/sequential-reader.ts): the
// same bytes Mailbox.read() gives (unquoted, LF), whole or their header
// only, whatever the block size; every message read once; and a file
// another program changed gives MessageChangedError, never other bytes,
// whether the quick check (message-start.ts) or the exact one looks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { computeFingerprint, scanForIndex } from '../../src/store/mbox-index-scan.ts';
import type { ScannedMessage } from '../../src/store/mbox-index-scan.ts';
import { MessageChangedError, readMessage } from '../../src/store/message-reader.ts';
import { SequentialReader } from '../../src/store/sequential-reader.ts';
import type { ReadExtent, ReadLocation } from '../../src/store/sequential-reader.ts';
import { knownStart } from '../../src/store/message-start.ts';
import { splitFingerprint } from '../../src/store/message-table.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('sequential');
let counter = 0;

const from = (who: string) => `From ${who}@example.org Mon Nov  2 03:05:51 2026\n`;
const body = (words: string, lines = 40) => Array.from({ length: lines }, (_, i) => `${words} line ${i}, some words to fill it`).join('\n') + '\n';
// Each a different case: a quoted From line in the header and in the body,
// a short body, no header end, an empty header, CRLF lines, a folded
// Message-ID, and one over 128 KiB (streamed).
const MESSAGES = [
  `${from('a')}Subject: one\nMessage-ID: <1@x>\n\n>From quoted\n${body('one')}`,
  `${from('b')}Subject: two\n>From odd header line\nMessage-ID:\n <2@x>\n\n${body('two')}`,
  `${from('c')}Subject: short\n\nhi\n`,
  `${from('d')}Subject: no end of header\nX-Last: yes\n`,
  `${from('e')}\n${body('empty header')}`,
  `${from('f')}Subject: crlf\r\nMessage-ID: <6@x>\r\n\r\n${body('crlf').replace(/\n/g, '\r\n')}`,
  `${from('g')}Subject: big\nMessage-ID: <7@x>\n\n${body('big big big big big big big big', 6000)}`,
  `${from('h')}Subject: last\n\n${body('last')}`,
];
const MBOX = MESSAGES.join('\n');

async function mbox(content: string): Promise<{ file: string; messages: ReadLocation[] }> {
  const file = path.join(dir, `mbox${counter++}`);
  await fs.writeFile(file, content);
  const handle = await fs.open(file, 'r');
  try {
    return { file, messages: (await scanForIndex(handle, 0)).messages.map(located) };
  } finally {
    await handle.close();
  }
}

function located(m: ScannedMessage): ReadLocation {
  const [fingerprintHigh, fingerprintLow] = splitFingerprint(m.fingerprint);
  return { ...m, fingerprintHigh, fingerprintLow };
}

async function collect(source: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

/** Each message as the reader hands it out, copied. */
async function readAll(file: string, messages: ReadLocation[], extent: ReadExtent, blockBytes?: number): Promise<{ texts: string[]; bytesRead: number }> {
  const handle = await fs.open(file, 'r');
  try {
    const reader = new SequentialReader(handle, blockBytes);
    const texts: string[] = [];
    await reader.visit(messages, extent, async (n, content) => {
      assert.equal(n, texts.length);
      // (A large message comes as a stream, whatever the extent: its reader stops after the header.)
      const text = (content.bytes ? Buffer.from(content.bytes) : await collect(content.stream)).toString('latin1');
      texts.push(extent === 'header' ? headerOf(text) : text);
    });
    return { texts, bytesRead: reader.bytesRead };
  } finally {
    await handle.close();
  }
}

/** What Mailbox.read() gives: the reference. */
async function readOne(file: string, m: ReadLocation): Promise<string> {
  const handle = await fs.open(file, 'r');
  try {
    return (await collect(readMessage(handle, m))).toString('latin1');
  } finally {
    await handle.close();
  }
}

/** The header section, through its empty line, as FETCH reads it (fetch-data.ts readHeader). */
function headerOf(message: string): string {
  const match = /^(?:\r?\n)|\n\r?\n/.exec(message);
  return match ? message.slice(0, match.index + match[0].length) : message;
}

test('whole messages and headers are what Mailbox.read() gives, at any block size, checked by the CRC the scan kept or without one', async () => {
  const { file, messages: scanned } = await mbox(MBOX);
  assert.equal(scanned.length, MESSAGES.length);
  assert.ok(scanned.filter((m) => m.crc! >= 0).length >= MESSAGES.length - 1, 'CRCs kept (not for the large message)');
  const expected = await Promise.all(scanned.map((m) => readOne(file, m)));
  assert.ok(expected[0].includes('\nFrom quoted\n'), 'mboxrd quoting undone');
  for (const messages of [scanned, scanned.map((m) => ({ ...m, crc: -1 }))]) {
    for (const blockBytes of [undefined, 4096, 700]) {
      const crc = messages[0].crc! >= 0 ? 'CRC' : 'no CRC';
      assert.deepEqual((await readAll(file, messages, 'message', blockBytes)).texts, expected, `whole, block ${blockBytes}, ${crc}`);
      assert.deepEqual((await readAll(file, messages, 'header', blockBytes)).texts, expected.map(headerOf), `headers, block ${blockBytes}, ${crc}`);
    }
    assert.equal((await readAll(file, messages, 'header')).texts[1].split('\n')[1], 'From odd header line', 'a quoted header line unquoted');
  }
});

test('some of the messages, far apart: each read once, the gaps not read', async () => {
  const filler = `${from('x')}Subject: filler\n\n${body('filler', 2000)}`; // 40 KB each
  const { file, messages } = await mbox([MESSAGES[0], filler, filler, MESSAGES[2], filler, filler, MESSAGES[7]].join('\n'));
  const wanted = [messages[0], messages[3], messages[6]];
  const { texts, bytesRead } = await readAll(file, wanted, 'message');
  assert.deepEqual(texts, await Promise.all(wanted.map((m) => readOne(file, m))));
  const total = (await fs.stat(file)).size;
  assert.ok(bytesRead < total / 2, `read ${bytesRead} of ${total} bytes`);
  const all = await readAll(file, messages, 'message');
  assert.ok(all.bytesRead <= total + 6 * messages.length, `every message once: read ${all.bytesRead} of ${total} bytes`);
});

test('a file rewritten at the same size gives MessageChangedError, in both extents and at any block size', async () => {
  const { messages } = await mbox(MBOX);
  // The same length, other bytes. What the fingerprint covers (Message-ID,
  // the body's first 512 bytes) is checked; another header field is not:
  // the same message, edited, its header as it is now.
  const cases: [string, string, boolean][] = [
    ['<1@x>', '<9@x>', true],
    ['one line 3,', 'ONE LINE 3,', true],
    ['last line 2,', 'LAST LINE 2,', true],
    ['Subject: two', 'Subject: Two', false],
  ];
  for (const [find, replace, refused] of cases) {
    const changed = path.join(dir, `changed${counter++}`);
    await fs.writeFile(changed, MBOX.replace(find, replace));
    for (const extent of ['message', 'header'] as const) {
      for (const blockBytes of [undefined, 4096]) {
        const handle = await fs.open(changed, 'r');
        try {
          const all = new SequentialReader(handle, blockBytes).visit(messages, extent, () => {});
          if (refused) await assert.rejects(all, MessageChangedError, `${find} -> ${replace}, ${extent}`);
          else await all;
        } finally {
          await handle.close();
        }
      }
    }
  }
  // Shifted by one byte: nothing is where the index says.
  const shifted = path.join(dir, `shifted${counter++}`);
  await fs.writeFile(shifted, '\n' + MBOX.slice(0, -1));
  for (const extent of ['message', 'header'] as const) {
    const handle = await fs.open(shifted, 'r');
    try {
      await assert.rejects(new SequentialReader(handle).visit(messages, extent, () => {}), MessageChangedError);
    } finally {
      await handle.close();
    }
  }
});

test('the quick check is sure only of the message the index describes', async () => {
  const { file, messages } = await mbox(MBOX);
  const bytes = await fs.readFile(file);
  const sure = messages.map((m) => knownStart(bytes, 0, false, m));
  // Sure of the ordinary ones (the big one too: its start is ordinary); not
  // of the short body, the missing header end, the CRLF one, nor the last
  // (only the exact check knows that the end of the file follows it).
  assert.deepEqual(sure.map((s) => s !== null), [true, true, false, false, true, false, true, false]);
  assert.equal(sure[0]!.quoted, false);
  assert.equal(sure[1]!.quoted, true, 'a header line starting with ">"');
  assert.equal(bytes.toString('latin1', messages[0].contentOffset, sure[0]!.bodyStart), 'Subject: one\nMessage-ID: <1@x>\n\n');
  // Another fingerprint, the block holding a CR, another From line in the body's start: not sure.
  assert.equal(knownStart(bytes, 0, false, { ...messages[0], fingerprintLow: messages[0].fingerprintLow ^ 1 }), null);
  assert.equal(knownStart(bytes, 0, true, messages[0]), null);
  const fromInBody = Buffer.from(bytes.toString('latin1').replace('one line 3', 'From line3'), 'latin1');
  assert.equal(knownStart(fromInBody, 0, false, messages[0]), null);
});

test('the quick check finds the fingerprint the scan made, however the Message-ID is written', async () => {
  const long = `<${'x'.repeat(1500)}@x>`;
  const headers = [
    'message-id: <lower@x>\n',
    'MESSAGE-ID:\t<tab@x>\n',
    'Message-ID:\n\t<folded\n  @over.three>\n \n',
    'Message-ID:\nMessage-ID: <second, after an empty one@x>\n',
    'Message-ID: <first@x>\nMessage-ID: <not this one@x>\n',
    'Message-ID: < spaced \x0b out \x0c @x >\n',
    'Message-ID: <caf\xe9@x>\n', // 8-bit: the scan's own way, as strings
    'Message-ID: <nb\xa0sp@x>\n', // (U+00A0 is white space to a String \s)
    `Message-ID: ${long}\n`, // (kept up to 1,024 bytes of the line, as the scan keeps it)
    'Message-ID: <9@x>\n' + Array.from({ length: 10 }, (_, i) => ` part${i}\n`).join(''), // folded over more lines than looked at
    'X-No-Id: at all\n',
  ];
  const messages = headers.map((h, i) => `${from(i === 6 ? 'jos\xe9' : `m${i}`)}Subject: ${i}\n${h}\n${body(`m${i}`)}`);
  const { file, messages: located } = await mbox(messages.join('\n') + '\nFrom end@x Mon Nov  2 03:05:51 2026\n\n'); // (written as UTF-8)
  const bytes = await fs.readFile(file);
  const sure = located.slice(0, headers.length).map((m) => knownStart(bytes, 0, false, m));
  assert.deepEqual(sure.map((s) => s !== null), headers.map((_, i) => i !== 9), 'sure of all but the one folded over eleven lines');
  sure.forEach((s, i) => {
    if (s) assert.equal(s.headerText, Buffer.from(`Subject: ${i}\n${headers[i]}\n`).toString('latin1'), 'the header, a byte per character');
  });
});

test('the quick check looks for a From line in the first 512 bytes of the body, no further', async () => {
  // A line starting "From " at body offset 0, 100 and 511 would begin another message within what the
  // fingerprint covers: not sure, even with the fingerprint of these very bytes. At 513 (its LF at 512)
  // it lies beyond: sure. (The mailbox is scanned with "Fro_" there, then the bytes changed.)
  const header = `${from('q')}Subject: q\nMessage-ID: <q@x>\n\n`;
  for (const [at, sure] of [[0, false], [100, false], [511, false], [513, true]] as const) {
    const filler = 'b'.repeat(Math.max(0, at - 1)) + (at > 0 ? '\n' : '');
    const { file, messages } = await mbox(`${header}${filler}Fro_ here\n${body('q')}\n${from('next')}\nnext\n`);
    const bytes = Buffer.from((await fs.readFile(file, 'latin1')).replace('Fro_ here', 'From here'), 'latin1');
    const bodyStart = Buffer.byteLength(header);
    const fingerprint = computeFingerprint(from('q').trimEnd(), '<q@x>', bytes.subarray(bodyStart, bodyStart + 512));
    const [fingerprintHigh, fingerprintLow] = splitFingerprint(fingerprint);
    assert.equal(knownStart(bytes, 0, false, { ...messages[0], fingerprintHigh, fingerprintLow }) !== null, sure, `a From line at body offset ${at}`);
  }
});

test('readers hand their blocks on: readers at once, one after another, one stopped half-way, all read right', async () => {
  // Two mailboxes of about 3 MB each: several 1 MiB blocks per reader.
  const make = (tag: string) => Array.from({ length: 600 }, (_, i) => `${from(`${tag}${i}`)}Subject: ${tag} ${i}\nMessage-ID: <${tag}${i}@x>\n\n${body(`${tag} ${i}`, 120)}`).join('\n');
  const [a, b] = [await mbox(make('a')), await mbox(make('b'))];
  const expected = async (box: { file: string; messages: ReadLocation[] }) => Promise.all(box.messages.map((m) => readOne(box.file, m)));
  const [wantA, wantB] = [await expected(a), await expected(b)];
  // A reader whose visitor gives up in its first block while its read ahead of the second is still going (held
  // here until the next reader is half-way through its own first block): that buffer must not be handed on.
  const handle = await fs.open(a.file, 'r');
  let letRead!: () => void;
  const held = new Promise<void>((resolve) => (letRead = resolve));
  const slow = { read: async (buffer: Buffer, offset: number, length: number, position: number) => {
    if (position > 0) await held;
    return handle.read(buffer, offset, length, position);
  } };
  const stop = new Error('enough');
  try {
    await assert.rejects(
      new SequentialReader(slow as unknown as fs.FileHandle).visit(a.messages, 'message', (n) => {
        if (n === 10) throw stop;
      }),
      stop,
    );
    const next = await fs.open(a.file, 'r');
    try {
      const texts: string[] = [];
      await new SequentialReader(next).visit(a.messages, 'message', async (n, content) => {
        if (n === 1) {
          letRead();
          await new Promise((resolve) => setTimeout(resolve, 50)); // (the held read lands meanwhile)
        }
        texts.push(Buffer.from(content.bytes!).toString('latin1'));
      });
      assert.deepEqual(texts, wantA);
    } finally {
      await next.close();
    }
  } finally {
    letRead();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await handle.close();
  }
  for (let round = 0; round < 2; round++) {
    const [gotA, gotB] = await Promise.all([readAll(a.file, a.messages, 'message'), readAll(b.file, b.messages, 'message')]);
    assert.deepEqual(gotA.texts, wantA);
    assert.deepEqual(gotB.texts, wantB);
  }
});
