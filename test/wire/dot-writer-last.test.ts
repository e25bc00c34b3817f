// DotWriter.pushLast: the last chunk and the end marker in one buffer, byte
// for byte what push() then end() give, whatever state the chunks before
// left (a line start, a line in progress, a CR waiting for its LF).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DotWriter } from '../../src/wire/dot-writer.ts';

const cases: [string, string[]][] = [
  ['empty message', ['']],
  ['one line', ['hello\n']],
  ['no final line end', ['hello']],
  ['leading dots', ['.one\n..two\n', '.three']],
  ['a CR at the end of the chunk before', ['line\r', '\n.next\n']],
  ['a bare CR last', ['a\rb\r']],
  ['chunks cut mid-line', ['Subject: x\n\nbo', 'dy\n', '.']],
];

for (const [name, chunks] of cases) {
  test(`pushLast = push + end: ${name}`, () => {
    const a = new DotWriter();
    const expected = Buffer.concat([...chunks.map((c) => a.push(Buffer.from(c))), a.end()]);
    const b = new DotWriter();
    const pieces = chunks.slice(0, -1).map((c) => b.push(Buffer.from(c)));
    const actual = Buffer.concat([...pieces, b.pushLast(Buffer.from(chunks.at(-1)!))]);
    assert.equal(actual.toString('latin1'), expected.toString('latin1'));
    assert.equal(b.messageOctets, a.messageOctets);
  });
}

test('pushLast with a head: the status line first, then the message as push + end give it', () => {
  const head = '+OK 12 octets\r\n';
  const expected = new DotWriter();
  const body = Buffer.concat([expected.push(Buffer.from('.one\ntwo')), expected.end()]);
  const writer = new DotWriter();
  const out = writer.pushLast(Buffer.from('.one\ntwo'), head);
  assert.equal(out.toString('latin1'), head + body.toString('latin1'));
  assert.equal(writer.messageOctets, expected.messageOctets, 'the head is not counted in the message');
});

test('pushLast of a whole message (the one-string path when it has no CR): the same bytes and octet count as push + end, over 3,000 random messages', () => {
  // Few letters, many line ends and dots: every way a line can start and end comes up often.
  const alphabet = [0x0a, 0x0a, 0x0a, 0x2e, 0x2e, 0x41, 0x20, 0xe9, 0xff, 0x00, 0x0d];
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let n = 0; n < 3000; n++) {
    const withCr = n % 3 === 0; // a third with CRs (the per-line path), the rest without (the one-string path)
    const length = 1 + Math.floor(random() * 80);
    const message = Buffer.alloc(length);
    for (let i = 0; i < length; i++) {
      let byte = alphabet[Math.floor(random() * alphabet.length)];
      if (byte === 0x0d && !withCr) byte = 0x0a;
      message[i] = byte;
    }
    const reference = new DotWriter();
    const expected = Buffer.concat([reference.push(message), reference.end()]);
    const writer = new DotWriter();
    const actual = writer.pushLast(message, '+OK\r\n');
    assert.equal(actual.toString('latin1'), '+OK\r\n' + expected.toString('latin1'), `message ${JSON.stringify(message.toString('latin1'))}`);
    assert.equal(writer.messageOctets, reference.messageOctets);
  }
});

test('pushLastText (a whole message held as text, one character per byte) gives what pushLast gives for its bytes, as text when it has no CR, over 3,000 random messages with and without CRs', () => {
  const alphabet = [0x0a, 0x0a, 0x0a, 0x2e, 0x2e, 0x41, 0x20, 0xe9, 0xff, 0x00, 0x0d];
  let seed = 11;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let n = 0; n < 3000; n++) {
    const length = Math.floor(random() * 80); // (an empty message too)
    const message = Buffer.alloc(length);
    for (let i = 0; i < length; i++) message[i] = alphabet[Math.floor(random() * alphabet.length)];
    const reference = new DotWriter();
    const expected = reference.pushLast(message, '+OK\r\n');
    const writer = new DotWriter();
    const wire = writer.pushLastText(message.toString('latin1'), '+OK\r\n');
    const actual = Buffer.isBuffer(wire) ? wire.toString('latin1') : wire.latin1;
    assert.equal(actual, expected.toString('latin1'), `message ${JSON.stringify(message.toString('latin1'))}`);
    // Without a CR it stays text, so no buffer is made for it; a CR goes the byte way (the rule for bare CRs).
    assert.equal(Buffer.isBuffer(wire), message.includes(0x0d) || length === 0);
    assert.equal(writer.messageOctets, reference.messageOctets);
  }
});
