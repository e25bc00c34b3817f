// RETR's bytes (pop3/message-stream.ts) through pooled buffers
// (src/buffer-pool.ts): the same bytes as the DotWriter makes of the whole
// message, whatever the chunks, with one output buffer used again and again
// when the consumer recycles it, and every stored chunk recycled once encoded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dotStuffed } from '../../src/pop3/message-stream.ts';
import { DotWriter } from '../../src/wire/dot-writer.ts';
import { BufferPool, recycle } from '../../src/buffer-pool.ts';

test('dotStuffed through a pool: the DotWriter\'s bytes at any cut, one output buffer, stored chunks recycled', async () => {
  const text = Buffer.from('.leading dot\nline\r\n..two dots\rbare cr\r\n.\nend\r');
  const whole = new DotWriter();
  const expected = Buffer.concat([whole.push(text), whole.end()]);
  for (let a = 0; a <= text.length; a++) {
    for (let b = a; b <= text.length; b++) {
      const stored = new BufferPool(text.length);
      const output = new BufferPool(8); // 4 stored bytes per buffer: chunks are split too
      async function* chunks(): AsyncIterable<Buffer> {
        let from = 0;
        for (const cut of [a, b, text.length]) {
          const chunk = stored.take();
          text.copy(chunk, 0, from, cut);
          yield chunk.subarray(0, cut - from);
          from = cut;
        }
      }
      const parts: Buffer[] = [];
      for await (const piece of dotStuffed(chunks(), output)) {
        parts.push(Buffer.from(piece)); // a copy, as the socket would make
        recycle(piece);
      }
      assert.deepEqual(Buffer.concat(parts), expected, `cut at ${a},${b}`);
      // (The last chunk goes out with the end marker, in a buffer of its own.)
      assert.equal(output.allocated, b > 0 ? 1 : 0, 'one output buffer, used again and again');
      assert.ok(stored.allocated <= 2, 'one chunk held back, the one before it recycled');
    }
  }
});
