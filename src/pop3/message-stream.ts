// The bytes of RETR and TOP (RFC 1939 7): the message as the store keeps it
// (LF line endings), turned into POP3's multi-line form by the DotWriter
// (CRLF, dot-stuffing, the final "."), in pieces large enough that a small
// message, its status line and its end marker leave in one write.

import { DotWriter } from '../wire/dot-writer.ts';
import { HeaderEndFinder } from '../mime/header.ts';

/** Pieces are gathered up to this size before they are sent. */
const PIECE_BYTES = 256 * 1024;

/** The message dot-stuffed and ended with ".", in pieces of about PIECE_BYTES. */
export async function* dotStuffed(source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const writer = new DotWriter();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of source) {
    const encoded = writer.push(chunk);
    pending.push(encoded);
    pendingBytes += encoded.length;
    if (pendingBytes >= PIECE_BYTES) {
      yield Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
    }
  }
  pending.push(writer.end());
  yield pending.length === 1 ? pending[0] : Buffer.concat(pending);
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
