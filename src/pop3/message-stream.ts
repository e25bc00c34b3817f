// The bytes of RETR and TOP (RFC 1939 7): the message as the store keeps it
// (LF line endings), turned into POP3's multi-line form by the DotWriter
// (CRLF, dot-stuffing, the final "."), in pieces large enough that a small
// message, its status line and its end marker leave in one write.

import { DotWriter } from '../wire/dot-writer.ts';

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
  const LF = 0x0a;
  let inHeader = true;
  let previous = LF; // a message that starts with a blank line has an empty header
  let left = bodyLines;
  for await (const chunk of source) {
    let cut = chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== LF) {
        previous = chunk[i];
        continue;
      }
      if (inHeader) {
        if (previous === LF) inHeader = false; // the blank line that ends the header
      } else {
        left--;
      }
      previous = LF;
      if (!inHeader && left <= 0) {
        cut = i + 1;
        break;
      }
    }
    yield chunk.subarray(0, cut);
    if (cut < chunk.length || (!inHeader && left <= 0)) return;
  }
}
