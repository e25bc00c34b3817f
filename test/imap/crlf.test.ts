import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crlfBuffer, crlfLength, slice, toCrlf } from '../../src/imap/crlf.ts';

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

async function* pieces(bytes: Buffer, cuts: number[]): AsyncIterable<Buffer> {
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    yield bytes.subarray(from, cut);
    from = cut;
  }
}

test('LF becomes CRLF at every split point; an existing CRLF is kept; sizes agree', async () => {
  const samples = ['a\nb\n', '\n\n', 'x\r\ny\nz', 'ends with cr\r', '\r\n\n\r\r\n', ''];
  for (const text of samples) {
    const bytes = Buffer.from(text);
    const expected = crlfBuffer(bytes);
    assert.equal(expected.length, crlfLength(bytes), text);
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        assert.deepEqual(await collect(toCrlf(pieces(bytes, [a, b]))), expected, `${JSON.stringify(text)} cut at ${a},${b}`);
      }
    }
  }
});

test('slice takes a partial range across chunks', async () => {
  const bytes = Buffer.from('0123456789');
  for (let cut = 0; cut <= 10; cut++) {
    assert.equal((await collect(slice(pieces(bytes, [cut]), 3, 4))).toString(), '3456');
    assert.equal((await collect(slice(pieces(bytes, [cut]), 8, 100))).toString(), '89');
    assert.equal((await collect(slice(pieces(bytes, [cut]), 20, 5))).toString(), '');
  }
});
