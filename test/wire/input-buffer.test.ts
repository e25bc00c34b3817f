// The unread-bytes buffer on its own, without a socket: lines cut across
// chunks, the over-long line skipped as it arrives, raw chunks handed over
// as they came, and the STARTTLS discard.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputBuffer } from '../../src/wire/input-buffer.ts';

const b = (text: string) => Buffer.from(text, 'latin1');

test('lines end at CRLF or a lone LF, and may be cut across chunks', () => {
  const input = new InputBuffer();
  input.add(b('NOOP\r\nHE'));
  input.add(b('LO x\nQU'));
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'NOOP' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'HELO x' });
  assert.equal(input.takeLine(100), null); // "QU" is not a line yet
  assert.equal(input.size, 2);
  input.add(b('IT\r\n'));
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'QUIT' });
  assert.equal(input.size, 0);
});

test('a line is UTF-8 (SMTPUTF8, UTF8=ACCEPT): ASCII and non-ASCII lines decode alike, a broken sequence becomes U+FFFD', () => {
  const input = new InputBuffer();
  input.add(Buffer.from('MAIL FROM:<jürgen@example.org>\r\nNOOP\r\n', 'utf8'));
  input.add(Buffer.from([0x58, 0x20, 0xc3, 0x0d, 0x0a])); // "X " and the first byte of a two-byte sequence, cut short
  input.add(Buffer.from('\u00e9t\u00e9 caf\u00e9\n', 'latin1')); // latin1, not UTF-8: each é is one lone 0xE9 byte
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'MAIL FROM:<jürgen@example.org>' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'NOOP' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'X \ufffd' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: '\ufffdt\ufffd caf\ufffd' });
  assert.equal(input.takeLine(100), null);
  assert.equal(input.size, 0);
});

test('the limit counts the line end: a line of exactly the limit passes, one byte more does not', () => {
  const input = new InputBuffer();
  input.add(b('12345678\r\n123456789\r\nok\r\n'));
  assert.deepEqual(input.takeLine(10), { kind: 'line', text: '12345678' });
  assert.deepEqual(input.takeLine(10), { kind: 'too-long' });
  assert.deepEqual(input.takeLine(10), { kind: 'line', text: 'ok' });
});

test('an over-long line is dropped as it arrives, answered once, and the next line is read normally', () => {
  const input = new InputBuffer();
  input.add(b('x'.repeat(10)));
  assert.equal(input.takeLine(10), null); // the limit is reached: what is held is dropped
  assert.equal(input.size, 0);
  input.add(b('y'.repeat(1000))); // the rest of the long line is never held
  assert.equal(input.size, 0);
  input.add(b('yy\r\nNEXT\r\n'));
  assert.deepEqual(input.takeLine(10), { kind: 'too-long' });
  assert.deepEqual(input.takeLine(10), { kind: 'line', text: 'NEXT' });
  assert.equal(input.takeLine(10), null);
});

test('raw chunks come as they arrived; the unused end goes back and is read first', () => {
  const input = new InputBuffer();
  const first = b('abc');
  input.add(first);
  input.add(b('def\r\nNOOP\r\n'));
  assert.equal(input.hasNewChunks, true);
  assert.equal(input.takeChunk(), first); // the same buffer: not copied, not joined
  const second = input.takeChunk()!;
  assert.equal(second.toString(), 'def\r\nNOOP\r\n');
  assert.equal(input.takeChunk(), null);
  input.putBack(second.subarray(5)); // a DATA reader used "def\r\n"
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'NOOP' });
});

test('clear() forgets everything unread, including an over-long line being skipped (STARTTLS)', () => {
  const input = new InputBuffer();
  input.add(b('z'.repeat(20)));
  assert.equal(input.takeLine(10), null); // now skipping a long line
  input.add(b('STARTTLS smuggled\r\nRSET\r\n'));
  input.clear();
  assert.equal(input.size, 0);
  input.add(b('EHLO after\r\n')); // the first line after the handshake: not taken for the long line's end
  assert.deepEqual(input.takeLine(10_000), { kind: 'line', text: 'EHLO after' });
});

test('a line that comes in many pieces is found whole, short or long, however the pieces fall; a part searched before a raw read or a clear() is searched again', () => {
  const input = new InputBuffer();
  for (const byte of b('HELO example.org\r\n')) {
    input.add(Buffer.from([byte]));
    if (byte !== 0x0a) assert.equal(input.takeLine(100), null);
  }
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'HELO example.org' });
  // Longer than a short search: the end found in the last piece, not before.
  for (let i = 0; i < 30; i++) {
    input.add(b('y'.repeat(100)));
    assert.equal(input.takeLine(4096), null);
  }
  input.add(b('z\r\nNOOP\r\n'));
  assert.deepEqual(input.takeLine(4096), { kind: 'line', text: `${'y'.repeat(3000)}z` });
  assert.deepEqual(input.takeLine(4096), { kind: 'line', text: 'NOOP' });
  // A partial line searched, then handed out raw (SMTP DATA), then new bytes: searched from their start.
  input.add(b('MAIL FR'));
  assert.equal(input.takeLine(100), null);
  assert.equal(input.takeChunk()!.toString(), 'MAIL FR');
  input.add(b('a\nb\n'));
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'a' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'b' });
  // The same after clear() (STARTTLS): the first line end is not skipped.
  input.add(b('EHLO sm'));
  assert.equal(input.takeLine(100), null);
  input.clear();
  input.add(b('A\r\nNOOP\r\n'));
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'A' });
  assert.deepEqual(input.takeLine(100), { kind: 'line', text: 'NOOP' });
});
