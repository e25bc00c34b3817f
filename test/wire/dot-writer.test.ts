// The sending side of dot-stuffing (src/wire/dot-writer.ts) against a
// one-shot reference written the obvious way (whole text, one regex for line
// ends, one rule per line), at every chunk split of a fuzzed corpus: the
// output must not depend on where the store's reads happen to cut the bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotWriter } from '../../src/wire/dot-writer.ts';

/**
 * The definition: LF, CR LF and a lone CR are each one line end; every line
 * goes out with CRLF, a leading dot doubled; an unterminated last line is
 * closed; "." CRLF ends it all.
 */
function reference(input: Buffer): Buffer {
  const text = input.toString('latin1').replace(/\r\n|\r|\n/g, '\n');
  const lines = text === '' ? [] : text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  const body = lines.map((line) => (line.startsWith('.') ? '.' + line : line) + '\r\n').join('');
  return Buffer.from(body + '.\r\n', 'latin1');
}

function encode(chunks: Buffer[]): { wire: Buffer; octets: number } {
  const writer = new DotWriter();
  const out = chunks.map((chunk) => writer.push(chunk));
  out.push(writer.end());
  return { wire: Buffer.concat(out), octets: writer.messageOctets };
}

/** SIZE= as RFC 1870 counts it: the wire bytes without stuffing dots and end marker. */
function sizeOf(wire: Buffer): number {
  const lines = wire.toString('latin1').slice(0, -'.\r\n'.length).split('\r\n');
  lines.pop();
  return lines.reduce((sum, line) => sum + (line.startsWith('.') ? line.length - 1 : line.length) + 2, 0);
}

// The cases a byte-by-byte writer can get wrong: CR and LF in every
// combination, dots right after each kind of line end, at the start and at
// the end, and no final line end.
const TRICKY = [
  '.starts with a dot\n',
  'x\r\ny\n',
  'bare cr\r.dot after it\r',
  '..two dots\n.\n',
  'cr cr lf\r\r\n.\r\n',
  'lf cr\n\r.\n',
  '\r\n\r\n\n\n\r\r',
  'last line without end.',
];

/** A small deterministic generator, so a failure can be replayed. */
function fuzzCorpus(count: number, seed: number): Buffer[] {
  let state = seed;
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff);
  const alphabet = ['\r', '\n', '.', 'a', ' ', '\r\n', '\x00', '\xff'];
  const corpus: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    const length = next() % 24;
    for (let j = 0; j < length; j++) text += alphabet[next() % alphabet.length];
    corpus.push(Buffer.from(text, 'latin1'));
  }
  return corpus;
}

test('"x\\r" then "\\ny\\n" is one line end, not two: the example from the issue', () => {
  assert.equal(encode([Buffer.from('x\r'), Buffer.from('\ny\n')]).wire.toString('latin1'), 'x\r\ny\r\n.\r\n');
});

test('a bare CR goes out as a line end and the dot after it is stuffed ("\\r.\\r" cannot end DATA downstream)', () => {
  const { wire } = encode([Buffer.from('a\r.\rb\n')]);
  assert.equal(wire.toString('latin1'), 'a\r\n..\r\nb\r\n.\r\n');
});

test('the tricky cases match the reference in one piece and at every two- and three-way split', () => {
  for (const text of [...TRICKY, TRICKY.join('')]) {
    const input = Buffer.from(text, 'latin1');
    const expected = reference(input);
    assert.deepEqual(encode([input]).wire, expected, JSON.stringify(text));
    for (let a = 0; a <= input.length; a++) {
      for (let b = a; b <= input.length; b++) {
        const parts = [input.subarray(0, a), input.subarray(a, b), input.subarray(b)];
        assert.deepEqual(encode(parts).wire, expected, `${JSON.stringify(text)} split at ${a},${b}`);
      }
    }
  }
});

test('a fuzzed corpus matches the reference at every split point, and SIZE counts what is sent', () => {
  for (const input of fuzzCorpus(400, 7)) {
    const expected = reference(input);
    const label = JSON.stringify(input.toString('latin1'));
    for (let a = 0; a <= input.length; a++) {
      const { wire, octets } = encode([input.subarray(0, a), input.subarray(a)]);
      assert.deepEqual(wire, expected, `${label} split at ${a}`);
      assert.equal(octets, sizeOf(expected), `${label} split at ${a}: messageOctets`);
    }
    // One byte at a time: every boundary at once.
    assert.deepEqual(encode([...input].map((byte) => Buffer.from([byte]))).wire, expected, `${label} byte by byte`);
  }
});

test('what the writer sends, the next hop reads back line for line: no line break without CRLF, no unstuffed dot after one', () => {
  for (const input of fuzzCorpus(200, 11)) {
    const wire = encode([input]).wire.toString('latin1');
    assert.ok(wire.endsWith('\r\n.\r\n') || wire === '.\r\n');
    const body = wire.slice(0, -'.\r\n'.length);
    assert.doesNotMatch(body, /\r(?!\n)|(?<!\r)\n/, 'every CR and LF is part of a CRLF');
    for (const line of body.split('\r\n').slice(0, -1)) assert.ok(!/^\.(?!\.)/.test(line), `unstuffed dot line ${JSON.stringify(line)}`);
  }
});
