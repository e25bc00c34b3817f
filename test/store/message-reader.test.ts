// Reading a message by the index's byte range (store/message-reader.ts):
// the bytes, unquoted; and every way the file can stop matching the index
// (shorter, shifted by a same-size rewrite, another message there, a large
// message whose start changed) gives MessageChangedError before any byte;
// readSmallMessage, the same read of a small message in one piece.
// Also the line-end normaliser APPEND uses (store/line-ends.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { LineEndNormalizer } from '../../src/store/line-ends.ts';
import { scanForIndex } from '../../src/store/mbox-index-scan.ts';
import type { ScannedMessage } from '../../src/store/mbox-index-scan.ts';
import { checkWholeMessage, MessageChangedError, readMessage, readSmallMessage, readSmallText, separatorLength, WHOLE_CHECK_BYTES } from '../../src/store/message-reader.ts';
import { knownWhole } from '../../src/store/message-start.ts';
import { splitFingerprint } from '../../src/store/message-table.ts';
import { scratchDir } from './helpers.ts';
import { createHash } from 'node:crypto';
import { BufferPool, recycle } from '../../src/buffer-pool.ts';
import { READ_CHUNK_BYTES } from '../../src/store/file-io.ts';

const dir = await scratchDir('message-reader');
let counter = 0;

const from = (who: string) => `From ${who}@example.org Mon Nov  2 03:05:51 2026\n`;
const M1 = `${from('a')}Subject: one\nMessage-ID: <1@x>\n\n>From quoted\nbody one\n`;
const M2 = `${from('b')}Subject: two\nMessage-ID: <2@x>\n\nbody two\n\n`; // its last line is empty
const M3 = `${from('c')}Subject: three\n\nbody three, no final blank line\n`;

async function file(content: string | Buffer): Promise<{ name: string; messages: ScannedMessage[] }> {
  const name = path.join(dir, `mbox${counter++}`);
  await fs.writeFile(name, content);
  const handle = await fs.open(name, 'r');
  try {
    return { name, messages: (await scanForIndex(handle, 0)).messages };
  } finally {
    await handle.close();
  }
}

async function read(name: string, m: ScannedMessage): Promise<string> {
  const handle = await fs.open(name, 'r');
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of readMessage(handle, m)) chunks.push(chunk);
    return Buffer.concat(chunks).toString('latin1');
  } finally {
    await handle.close();
  }
}

async function refused(name: string, m: ScannedMessage): Promise<void> {
  const handle = await fs.open(name, 'r');
  try {
    const iterator = readMessage(handle, m)[Symbol.asyncIterator]();
    await assert.rejects(iterator.next(), MessageChangedError);
  } finally {
    await handle.close();
  }
}

test('reads each message unquoted, whatever follows it: a separator, no separator, the end', async () => {
  const { name, messages } = await file(`${M1}\n${M2}\n${M3}`);
  assert.equal(messages.length, 3);
  assert.equal(await read(name, messages[0]), 'Subject: one\nMessage-ID: <1@x>\n\nFrom quoted\nbody one\n');
  assert.equal(await read(name, messages[1]), 'Subject: two\nMessage-ID: <2@x>\n\nbody two\n\n');
  assert.equal(await read(name, messages[2]), 'Subject: three\n\nbody three, no final blank line\n');
  // Mail appended later after the last message does not make it "changed".
  await fs.appendFile(name, `\n${M1}`);
  assert.equal(await read(name, messages[2]), 'Subject: three\n\nbody three, no final blank line\n');
  // Written by another program without a blank line before the next From line.
  const tight = await file(`${M1}${M3}`);
  assert.equal(await read(tight.name, tight.messages[0]), 'Subject: one\nMessage-ID: <1@x>\n\nFrom quoted\nbody one\n');
});

test('a same-size rewrite that shifts messages is caught, for every message', async () => {
  const before = `${M1}\n${M2}\n${M3}`;
  const { name, messages } = await file(before);
  // One byte more in message 1, one less in message 3: same size, messages 2 and 3 move.
  const after = before.replace('Subject: one', 'Subject: one!').replace('no final', 'nofinal');
  assert.equal(after.length, before.length);
  await fs.writeFile(name, after);
  for (const m of messages) await refused(name, m);
});

test('shorter file, another message at the offset, and junk after the range are caught', async () => {
  const { name, messages } = await file(`${M1}\n${M2}\n`);
  await fs.truncate(name, messages[1].offset + 10);
  await refused(name, messages[1]);
  const swapped = await file(`${M1}\n${M2}\n`);
  await fs.writeFile(swapped.name, `${M1.replace('body one', 'body uno')}\n${M2}\n`); // same length, other bytes
  await refused(swapped.name, swapped.messages[0]);
  const junk = await file(`${M1}\n${M2}\n`);
  await fs.writeFile(junk.name, `${M1}Xjunk\n${M2}\n`);
  await refused(junk.name, junk.messages[0]);
});

test('a large message is checked by its start (From line, fingerprint) and then streamed', async () => {
  const body = 'line of a large message\n'.repeat(Math.ceil((2 * WHOLE_CHECK_BYTES) / 24));
  const big = `${from('big')}Subject: big\nMessage-ID: <big@x>\n\n${body}`;
  const { name, messages } = await file(`${M1}\n${big}\n${M3}`);
  assert.ok(messages[1].length > WHOLE_CHECK_BYTES);
  assert.equal(await read(name, messages[1]), big.slice(big.indexOf('\n') + 1));
  // Its first body bytes changed, same size: the fingerprint differs.
  await fs.writeFile(name, `${M1}\n${big.replace('line of a large', 'LINE of a large')}\n${M3}`);
  await refused(name, messages[1]);
  // Another From line inside what should be one message.
  await fs.writeFile(name, `${M1}\n${big.replace('line of a large message\n', `\n${from('x')}`)}\n${M3}`);
  await refused(name, messages[1]);
});

test('a large message is read through one pooled buffer when its consumer recycles chunks, and through fresh ones when it keeps them', async () => {
  // 10 MiB, with mboxrd-quoted From lines here and there (the unquoter copies around them).
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < 10 * 1024 * 1024; i++) {
    const line = i % 5000 === 0 ? `>From line ${i}` : `line ${i} of a long message ${'x'.repeat(60)}`;
    lines.push(line);
    length += line.length + 1;
  }
  const content = `Subject: big\nMessage-ID: <pool@x>\n\n${lines.join('\n')}\n`;
  const { name, messages } = await file(`${M1}\n${from('big')}${content}\n${M3}`);
  const expected = createHash('sha256').update(content.replace(/^>From /gm, 'From ')).digest('hex');
  const handle = await fs.open(name, 'r');
  try {
    // Recycling: each chunk is copied (hashed) and given back, as imap/crlf.ts does.
    const recycled = new BufferPool(READ_CHUNK_BYTES);
    const hash = createHash('sha256');
    let chunks = 0;
    for await (const chunk of readMessage(handle, messages[1], recycled)) {
      hash.update(chunk);
      recycle(chunk);
      chunks++;
    }
    assert.equal(hash.digest('hex'), expected);
    assert.ok(chunks > 30, `${chunks} chunks`);
    assert.equal(recycled.allocated, 1, 'one read buffer for the whole message');
    // Keeping: every chunk stays as it was read (no buffer is read into twice).
    const kept = new BufferPool(READ_CHUNK_BYTES);
    const all: Buffer[] = [];
    for await (const chunk of readMessage(handle, messages[1], kept)) all.push(chunk);
    assert.equal(createHash('sha256').update(Buffer.concat(all)).digest('hex'), expected);
    assert.ok(kept.allocated > 10, `${kept.allocated} buffers for ${chunks} chunks kept`); // (a chunk the unquoter copied gives its buffer back at once)
  } finally {
    await handle.close();
  }
});

/** readSmallMessage's bytes as latin1 text; readSmallText must give the same text, or throw the same. */
async function readSmall(name: string, m: ScannedMessage): Promise<string | null> {
  const handle = await fs.open(name, 'r');
  try {
    let bytes: Buffer | null;
    try {
      bytes = readSmallMessage(handle, m);
    } catch (error) {
      assert.throws(() => readSmallText(handle, m), MessageChangedError, 'readSmallText refuses it too');
      throw error;
    }
    const text = bytes?.toString('latin1') ?? null;
    assert.equal(readSmallText(handle, m), text, 'readSmallText: the same, as text');
    return text;
  } finally {
    await handle.close();
  }
}

test('readSmallMessage and readSmallText: the bytes readMessage streams, in one piece (as text: one character per byte); null for a large message; a changed file throws', async () => {
  const big = `${from('big')}Subject: big\nMessage-ID: <big@x>\n\n${'line of a large message\n'.repeat(Math.ceil((2 * WHOLE_CHECK_BYTES) / 24))}`;
  const crlf = `${from('d')}Subject: stored with CRLF\r\n\r\n>>From twice quoted\r\nend\r\n`;
  const eightBit = `${from('e')}Subject: 8-bit\n\ncaf\xe9 \xff\x00\n>From caf\xe9\n`;
  const medium = `${from('f')}Subject: larger than the text buffer's first size\n\n${'a line of 24 characters\n'.repeat(2000)}`;
  const { name, messages } = await file(Buffer.from(`${M1}\n${M2}\n${big}\n${crlf}\n${eightBit}\n${medium}\n${M3}`, 'latin1'));
  assert.equal(messages.length, 7);
  for (const [i, m] of messages.entries()) {
    if (i === 2) assert.equal(await readSmall(name, m), null, 'the large message is left to readMessage');
    if (i === 2) assert.equal(m.crc, -1, 'and the scan kept no CRC for it');
    else assert.equal(await readSmall(name, m), await read(name, m), `message ${i + 1}`);
  }
  assert.equal(await readSmall(name, messages[3]), 'Subject: stored with CRLF\r\n\r\n>From twice quoted\r\nend\r\n');
  assert.equal(await readSmall(name, messages[4]), 'Subject: 8-bit\n\ncaf\xe9 \xff\x00\nFrom caf\xe9\n', 'any byte comes back as it was');
  const tight = await file(`${M1}${M3}`);
  assert.equal(await readSmall(tight.name, tight.messages[1]), 'Subject: three\n\nbody three, no final blank line\n');

  const rejects = async (name: string, m: ScannedMessage) => {
    await assert.rejects(readSmall(name, m), MessageChangedError);
  };
  const before = `${M1}\n${M2}\n${M3}`;
  const shifted = await file(before);
  await fs.writeFile(shifted.name, before.replace('Subject: one', 'Subject: one!').replace('no final', 'nofinal')); // same size
  for (const m of shifted.messages) await rejects(shifted.name, m);
  const swapped = await file(`${M1}\n${M2}\n`);
  await fs.writeFile(swapped.name, `${M1.replace('body one', 'body uno')}\n${M2}\n`); // same length, other bytes
  await rejects(swapped.name, swapped.messages[0]);
  const junk = await file(`${M1}\n${M2}\n`);
  await fs.writeFile(junk.name, `${M1}Xjunk\n${M2}\n`);
  await rejects(junk.name, junk.messages[0]);
  const short = await file(`${M1}\n${M2}\n`);
  await fs.truncate(short.name, short.messages[1].offset + 10);
  await rejects(short.name, short.messages[1]);
});

test('a message read whole is checked by its CRC where the scan that indexed it kept one: the same bytes pass on the CRC alone; another CRC leaves it to the other checks, which still catch a change', async () => {
  const { name, messages } = await file(`${M1}\n${M2}\n${M3}`);
  const located = (m: ScannedMessage, change: { crc?: number; fingerprint?: string } = {}) => {
    const [fingerprintHigh, fingerprintLow] = splitFingerprint(change.fingerprint ?? m.fingerprint);
    return { ...m, fingerprintHigh, fingerprintLow, crc: change.crc ?? m.crc, fingerprint: change.fingerprint ?? m.fingerprint };
  };
  const small = async (m: ScannedMessage & { crc: number }) => {
    const handle = await fs.open(name, 'r');
    try {
      return readSmallMessage(handle, m)?.toString('latin1');
    } finally {
      await handle.close();
    }
  };
  for (const [i, m] of messages.entries()) {
    assert.ok(m.crc >= 0, `message ${i + 1} has a CRC`);
    const expected = await read(name, m);
    // The CRC alone decides: a fingerprint that no longer matches is not even looked at.
    assert.equal(await small(located(m, { fingerprint: '0123456789abcdef' })), expected, `message ${i + 1}, CRC right`);
    // A CRC that does not match (or none) leaves it to knownWhole and the scan: the same bytes pass.
    assert.equal(await small(located(m, { crc: (m.crc + 1) >>> 0 })), expected, `message ${i + 1}, CRC wrong`);
    assert.equal(await small(located(m, { crc: -1 })), expected, `message ${i + 1}, no CRC`);
    // And neither wrong CRC nor wrong fingerprint: the change is caught.
    await assert.rejects(small(located(m, { crc: (m.crc + 1) >>> 0, fingerprint: '0123456789abcdef' })), MessageChangedError);
  }
  // The file rewritten behind the index (same size): the old CRC does not match, the other checks catch it.
  await fs.writeFile(name, `${M1}\n${M2}\n${M3}`.replace('Subject: one', 'Subject: one!').replace('no final', 'nofinal'));
  for (const m of messages) await assert.rejects(small(located(m)), MessageChangedError);
});

test('line ends: CRLF and lone CR become LF, also when split between chunks', () => {
  const input = 'a\r\nb\rc\n\r\n\r';
  const expected = 'a\nb\nc\n\n\n';
  for (let cut = 0; cut <= input.length; cut++) {
    const normalizer = new LineEndNormalizer();
    const out = Buffer.concat([normalizer.push(Buffer.from(input.slice(0, cut))), normalizer.push(Buffer.from(input.slice(cut))), normalizer.end()]);
    assert.equal(out.toString(), expected, `cut at ${cut}`);
  }
});

/**
 * Changes the messages of `mbox` (each `originals.length`-th run unchanged)
 * 3,000 times, one to three bytes in place, into what makes mbox lines mean
 * something else, and asks knownWhole each time: it may be sure only where
 * the scan (checkWholeMessage) accepts the bytes, and must be sure of every
 * unchanged message but `unsure`. Returns how many it was sure of.
 */
async function knownWholeAgainstScan(mbox: string, count: number, unsure: number[] = []): Promise<number> {
  const { name, messages } = await file(mbox);
  const bytes = await fs.readFile(name);
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const scanAccepts = (block: Buffer, m: ScannedMessage) => {
    try {
      checkWholeMessage(block, m); // (a ScannedMessage has no fingerprint halves: always the scan)
      return true;
    } catch (err) {
      if (err instanceof MessageChangedError) return false;
      throw err;
    }
  };
  let sure = 0;
  for (let n = 0; n < 3000; n++) {
    const m = messages[n % count];
    const block = Buffer.from(bytes.subarray(m.offset, m.offset + m.length + 6));
    if (n >= count) {
      for (let changes = 1 + Math.floor(random() * 3); changes > 0; changes--) {
        // (A third of them near its end, where the blank line and the next From line are; a third turn a
        // "Grom " into a From line, quoted or not.)
        const choice = random();
        if (choice < 1 / 3) {
          const gs = [...block.toString('latin1').matchAll(/Grom /g)].map((match) => match.index);
          if (gs.length > 0) block[gs[Math.floor(random() * gs.length)]] = 0x46; // "F"
          continue;
        }
        const at = choice < 2 / 3 ? block.length - 1 - Math.floor(random() * 12) : Math.floor(random() * block.length);
        block[at] = '\n\nF>\r xy'.charCodeAt(Math.floor(random() * 8));
      }
    }
    const [fingerprintHigh, fingerprintLow] = splitFingerprint(m.fingerprint);
    const separator = separatorLength(block.subarray(m.length, m.length + 6));
    const quick = separator >= 0 && knownWhole(block, { ...m, fingerprintHigh, fingerprintLow }, separator);
    if (quick) sure++;
    assert.ok(!quick || scanAccepts(block, m), `change ${n}: sure of what the scan refuses: ${JSON.stringify(block.toString('latin1'))}`);
    if (n < count && !unsure.includes(n)) assert.ok(quick, `sure of the unchanged message ${n}: ${JSON.stringify(block.toString('latin1'))}`);
  }
  return sure;
}

test('the quick whole check (knownWhole) is sure only where the scan agrees: 3,000 same-length changes', async () => {
  // (Lines starting "Grom " and ">Grom ": one byte from a From line or a quoted one; ">" alone is text.)
  const starts = ['Grom ', '', '>Grom ', '', '> quoted text ', ''];
  const body = Array.from({ length: 30 }, (_, i) => `${starts[i % 6]}line ${i} of a body long enough for the fingerprint`).join('\n');
  const originals = [
    `${from('q')}Subject: quick\nMessage-ID:\n <q@x>\n\n${body}\n`, // then a blank line and the next message
    `${from('r')}Subject: no blank line after\nMessage-ID: <r@x>\n\n${body}\n`,
    `${from('s')}Subject: its last line is empty\n\n${body}\n\n`,
  ];
  const sure = await knownWholeAgainstScan(`${originals[0]}\n${originals[1]}${originals[2]}\n${from('next')}\nnext\n`, originals.length);
  assert.ok(sure > 200, `sure of ${sure} (changes past the fingerprint's bytes leave a message the same)`);
});

test('knownWhole of short bodies (the fingerprint covers all of the body) and of quoted From lines (the size counts them): sure only where the scan agrees, over 3,000 changes', async () => {
  // Bodies of 0 to 600 bytes, a header whose empty line is the message's last line, one with no empty line at
  // all, and mboxrd-quoted From lines (each loses a ">" when read) in bodies and a header.
  const bodyOf = (length: number) => Array.from({ length: Math.ceil(length / 10) }, (_, i) => `${i % 4 === 1 ? 'Grom ' : ''}b${i}ody.....`.slice(0, 9)).join('\n').slice(0, length);
  const originals = [0, 1, 9, 10, 100, 505, 511, 512, 513, 600].map((length, i) => `${from(`s${i}`)}Subject: short ${i}\nMessage-ID: <s${i}@x>\n\n${bodyOf(length)}${length > 0 ? '\n' : ''}`);
  // (At an even place, "header only" gets a blank line after it; without one, the scan takes its empty line for the separator.)
  originals.push(`${from('h')}Subject: header only\nMessage-ID: <h@x>\n\n`, `${from('n')}Subject: no empty line\nMessage-ID: <n@x>\n`);
  const noEmptyLine = originals.length - 1; // (the one the quick check cannot be sure of)
  originals.push(
    `${from('q1')}Subject: quoted\nMessage-ID: <q1@x>\n\n>From me, a line\n${bodyOf(600)}\n>>From deeper\n>not a From line\n`,
    `${from('q2')}Subject: quoted, short\nMessage-ID: <q2@x>\n\n>From the start\nGrom x\n`,
    `${from('q3')}>From: a quoted line in the header\nMessage-ID: <q3@x>\n\n${bodyOf(520)}\n>Grom \n`,
  );
  // Every other message without the blank separator line (the next From line right after it).
  const mbox = originals.map((text, i) => (i % 2 === 0 ? `${text}\n` : text)).join('') + `\n${from('last')}\nlast\n`;
  const sure = await knownWholeAgainstScan(mbox, originals.length, [noEmptyLine]);
  assert.ok(sure > 200, `sure of ${sure} (changes past the message leave it the same)`);
});
