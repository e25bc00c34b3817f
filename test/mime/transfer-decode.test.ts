// Streaming base64 and quoted-printable (RFC 2045 6.7, 6.8): the same bytes
// whatever the chunk split, checked against a plain whole-input reference,
// and tolerant of the mistakes the RFC asks decoders to survive.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Base64Decoder, QuotedPrintableDecoder, transferDecoder } from '../../src/mime/transfer-decode.ts';
import type { ByteDecoder } from '../../src/mime/transfer-decode.ts';
import { random, randomChunks, splitAt } from './helpers.ts';

function run(decoder: ByteDecoder, chunks: Buffer[]): Buffer {
  return Buffer.concat([...chunks.map((c) => decoder.write(c)), decoder.end()]);
}

/** Decodes at every two-way split and three-way split, expecting `expected` each time. */
function everySplit(make: () => ByteDecoder, input: Buffer, expected: Buffer, threeWay = true): void {
  for (let a = 0; a <= input.length; a++) {
    assert.deepEqual(run(make(), splitAt(input, a)), expected, `split at ${a}`);
    if (!threeWay) continue;
    for (let b = a; b <= input.length; b++) assert.deepEqual(run(make(), splitAt(input, a, b)), expected, `split at ${a}, ${b}`);
  }
}

const BINARY = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37 + 11) & 0xff));

test('base64 at every split point, with line breaks every 76 characters', () => {
  const encoded = Buffer.from(BINARY.toString('base64').replace(/.{76}/g, '$&\r\n'));
  everySplit(() => new Base64Decoder(), encoded, BINARY, false);
  everySplit(() => new Base64Decoder(), Buffer.from('aGVs\nbG8g\nd29y\nbGQ=\n'), Buffer.from('hello world'));
  const next = random(7);
  for (let round = 0; round < 50; round++) assert.deepEqual(run(new Base64Decoder(), randomChunks(encoded, 20, next)), BINARY);
});

test('base64 mistakes: junk, missing padding, a cut end, concatenation, base64url', () => {
  const decode = (text: string) => run(new Base64Decoder(), [Buffer.from(text)]).toString('latin1');
  assert.equal(decode('aGVs bG8*!\tgd29y#bGQ'), 'hello world'); // characters outside the alphabet are ignored
  assert.equal(decode('aGk'), 'hi'); // no padding
  assert.equal(decode('aGVsbG8=aGk='), 'hellohi'); // two encodings glued together
  assert.equal(decode('aGVsbG8gd29ybGQ'), 'hello world');
  assert.equal(decode('a'), ''); // a lone character holds no whole byte
  assert.equal(decode('-_8='), '\xfb\xff'); // base64url alphabet
  assert.equal(decode(''), '');
});

const QP_CASES: [string, string][] = [
  ['Caf=E9 cr=E8me\n', 'Caf\xe9 cr\xe8me\n'],
  ['soft=\nbreak\n', 'softbreak\n'],
  ['soft=  \t\nbreak with white space after the equals sign\n', 'softbreak with white space after the equals sign\n'],
  ['trailing white space   \t\nnext\n', 'trailing white space\nnext\n'], // rule 3
  ['crlf=\r\nsoft\r\nhard\r\n', 'crlfsoft\r\nhard\r\n'],
  ['lower =e9 and =3d\n', 'lower \xe9 and =\n'],
  ['bad =ZZ and =4 and = alone\n', 'bad =ZZ and =4 and = alone\n'],
  ['ends with soft break=', 'ends with soft break'],
  ['ends with = and space=  ', 'ends with = and space'],
  ['ends cut =4', 'ends cut =4'],
  ['last line  ', 'last line'],
  ['=\n=\n=\n', ''],
  ['a\r\n\r\nb', 'a\r\n\r\nb'],
  ['tab\tinside\n', 'tab\tinside\n'],
];

test('quoted-printable at every two-way and three-way split', () => {
  for (const [input, expected] of QP_CASES) {
    everySplit(() => new QuotedPrintableDecoder(), Buffer.from(input, 'latin1'), Buffer.from(expected, 'latin1'));
  }
});

test('quoted-printable in random chunks of a long text', () => {
  const input = Buffer.from(QP_CASES.map(([i]) => i.replace(/=?\s*$/, '')).join('\n').repeat(20), 'latin1');
  const whole = run(new QuotedPrintableDecoder(), [input]);
  const next = random(11);
  for (let round = 0; round < 50; round++) assert.deepEqual(run(new QuotedPrintableDecoder(), randomChunks(input, 30, next)), whole);
});

test('a long run of white space is passed on, not held back', () => {
  const decoder = new QuotedPrintableDecoder();
  const out = decoder.write(Buffer.from('x' + ' '.repeat(5000)));
  assert.ok(out.length >= 5001 - 1024, `held back ${5001 - out.length} bytes`);
  assert.match(Buffer.concat([out, decoder.end()]).toString(), /^x {3976,}$/);
});

test('transferDecoder picks the decoder; identity encodings pass bytes through', () => {
  assert.equal(run(transferDecoder(' Base64 '), [Buffer.from('aGk=')]).toString(), 'hi');
  assert.equal(run(transferDecoder('QUOTED-PRINTABLE'), [Buffer.from('=41')]).toString(), 'A');
  for (const name of [null, '7bit', '8bit', 'binary', 'x-uuencode']) assert.equal(run(transferDecoder(name), [Buffer.from('=41')]).toString(), '=41');
});
