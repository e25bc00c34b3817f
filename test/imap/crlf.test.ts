import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crlfBuffer, crlfLength, slice, toCrlf } from '../../src/imap/crlf.ts';
import { BufferPool, recycle } from '../../src/buffer-pool.ts';

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

test('through a pool: the same bytes at every split point, one output buffer reused, every input recycled', async () => {
  const text = Buffer.from('line one\nline two\r\n\n\nx\r\r\nlast');
  const expected = crlfBuffer(text);
  for (let a = 0; a <= text.length; a++) {
    for (let b = a; b <= text.length; b++) {
      const inputs = new BufferPool(text.length);
      const output = new BufferPool(8); // 4 bytes of input per buffer: chunks are split too
      async function* pooledPieces(): AsyncIterable<Buffer> {
        let from = 0;
        for (const cut of [a, b, text.length]) {
          const chunk = inputs.take();
          text.copy(chunk, 0, from, cut);
          yield chunk.subarray(0, cut - from);
          from = cut;
        }
      }
      const parts: Buffer[] = [];
      for await (const chunk of toCrlf(pooledPieces(), output)) {
        parts.push(Buffer.from(chunk)); // a copy, as the socket would make
        recycle(chunk);
      }
      assert.deepEqual(Buffer.concat(parts), expected, `cut at ${a},${b}`);
      assert.equal(output.allocated, 1, 'one output buffer, used again and again');
      assert.equal(inputs.allocated, 1, 'every input chunk recycled once copied');
    }
  }
});

test('slice recycles the chunks before the range, and passes the rest on', async () => {
  const pool = new BufferPool(4);
  async function* chunks(): AsyncIterable<Buffer> {
    for (const text of ['0123', '4567', '89']) {
      const chunk = pool.take();
      chunk.write(text, 'latin1');
      yield chunk.subarray(0, text.length);
    }
  }
  const got: string[] = [];
  for await (const chunk of slice(chunks(), 5, 4)) got.push(chunk.toString('latin1')); // kept, not recycled
  assert.deepEqual(got, ['567', '8']);
  assert.equal(pool.allocated, 2, 'the chunk before byte 5 was taken again for the third');
});
