// The bytes of a streamed RETR (a message over 128 KiB) and of TOP (RFC
// 1939 7): the message as the store keeps it (LF line endings), turned into
// POP3's multi-line form by the DotWriter (CRLF, dot-stuffing, the final
// "."). A chunk is encoded only once the next one is known, so the last one
// carries the end marker in the same buffer. (A RETR of a smaller message,
// almost all mail, skips the stream: commands.ts reads it at once as text
// and session.ts's format() puts its status line, text and "." in one
// string, written as it is, wire/reply-queue.ts.)
//
// A large message streams through a few buffers used again and again
// (buffer-pool.ts): each chunk is encoded into a buffer of `pool`, which the
// connection recycles once the socket has written it, and the stored chunk
// is recycled once encoded, so the store reads the next one into it.

import { DotWriter } from '../wire/dot-writer.ts';
import { HeaderEndFinder } from '../mime/header.ts';
import { BufferPool, recycle } from '../buffer-pool.ts';

/** Output buffers: each takes up to 128 KiB of stored text (every byte may double). */
const STUFFED_BUFFER_BYTES = 256 * 1024;

/** The message dot-stuffed and ended with ".", in pieces of at most half a `pool` buffer of `source`. */
export async function* dotStuffed(source: AsyncIterable<Buffer>, pool = new BufferPool(STUFFED_BUFFER_BYTES)): AsyncIterable<Buffer> {
  const writer = new DotWriter();
  const room = pool.size >>> 1;
  let held: Buffer | null = null;
  for await (const chunk of source) {
    if (held) {
      for (let at = 0; at < held.length; at += room) {
        const out = pool.take();
        yield out.subarray(0, writer.encodeInto(held.subarray(at, at + room), out));
      }
      recycle(held); // encoded: the store may read into it again
    }
    held = chunk;
  }
  yield writer.pushLast(held ?? Buffer.alloc(0));
}

/** TOP n k: the header, the blank line, and only `bodyLines` lines of the body. */
export async function* firstLines(source: AsyncIterable<Buffer>, bodyLines: number): AsyncIterable<Buffer> {
  const header = new HeaderEndFinder();
  let left = bodyLines;
  for await (const chunk of source) {
    let from = 0;
    if (header.headerLength < 0) {
      from = header.push(chunk); // where the body starts in this chunk, or -1
      if (from < 0) {
        yield chunk;
        continue;
      }
    }
    let cut = from;
    while (left > 0 && cut < chunk.length) {
      const lf = chunk.indexOf(0x0a, cut);
      cut = lf < 0 ? chunk.length : lf + 1;
      if (lf >= 0) left--;
    }
    yield chunk.subarray(0, cut);
    if (left === 0) return;
  }
}
