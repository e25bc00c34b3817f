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
