// Messages as IMAP clients see them. The store keeps LF line endings (mbox
// text); on the wire every line ends in CRLF, and every size and offset IMAP
// names (RFC822.SIZE, partial fetches <start.length>) counts those CRLF
// octets. An LF already preceded by CR (a file written by another program)
// is left alone, as the index's size counts it (mbox-index-scan.ts).

import { recycle } from '../buffer-pool.ts';
import type { BufferPool } from '../buffer-pool.ts';

const CR = 0x0d;
const LF = 0x0a;

/**
 * LF -> CRLF over a stream, chunk boundaries anywhere. Without `pool`, each
 * chunk with an LF becomes a new buffer (one without goes out as it is).
 * With `pool` (a large literal on its way to the socket, buffer-pool.ts),
 * every chunk is copied into the pool's buffers, each to be recycled by
 * whoever finishes with it, and each input chunk is recycled once copied:
 * a whole message then streams through a few buffers used again and again.
 */
export async function* toCrlf(source: AsyncIterable<Buffer>, pool?: BufferPool): AsyncIterable<Buffer> {
  let lastByte = -1; // the byte before this chunk
  for await (const chunk of source) {
    if (pool) {
      // Half a buffer of input fills at most a whole one: a CR may go before every byte.
      const room = pool.size >>> 1;
      for (let at = 0; at < chunk.length; at += room) {
        const piece = chunk.subarray(at, at + room);
        const out = pool.take();
        const n = crlfInto(piece, out, lastByte);
        lastByte = piece[piece.length - 1];
        yield out.subarray(0, n);
      }
      recycle(chunk); // copied out: the reader may read into it again
      continue;
    }
    if (chunk.length === 0) continue;
    const lfs = bareLfs(chunk, lastByte);
    if (lfs === 0) {
      lastByte = chunk[chunk.length - 1];
      yield chunk;
      continue;
    }
    const out = Buffer.allocUnsafe(chunk.length + lfs);
    const n = crlfInto(chunk, out, lastByte);
    lastByte = chunk[chunk.length - 1];
    yield out.subarray(0, n);
  }
}

/** LFs in `chunk` without a CR before them (`lastByte`: the byte before the chunk, -1 at the start). */
function bareLfs(chunk: Buffer, lastByte: number): number {
  let lfs = 0;
  for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) if ((i > 0 ? chunk[i - 1] : lastByte) !== CR) lfs++;
  return lfs;
}

/** Copies `chunk` into `out` with a CR before each bare LF; returns the bytes written (room needed: up to twice the chunk). */
function crlfInto(chunk: Buffer, out: Buffer, lastByte: number): number {
  let n = 0;
  let from = 0;
  for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
    n += chunk.copy(out, n, from, i);
    if ((i > 0 ? chunk[i - 1] : lastByte) !== CR) out[n++] = CR;
    out[n++] = LF;
    from = i + 1;
  }
  return n + chunk.copy(out, n, from);
}

/**
 * The octets [start, start + length) of a stream (a partial fetch, RFC 3501
 * 6.4.5). A chunk wholly before `start` is recycled (buffer-pool.ts): no
 * one else will see it.
 */
export async function* slice(source: AsyncIterable<Buffer>, start: number, length: number): AsyncIterable<Buffer> {
  let position = 0;
  const end = start + length;
  for await (const chunk of source) {
    const chunkEnd = position + chunk.length;
    if (chunkEnd > start) yield chunk.subarray(Math.max(0, start - position), Math.min(chunk.length, end - position));
    else recycle(chunk);
    position = chunkEnd;
    if (position >= end) return;
  }
}

/** How many octets `bytes` (LF text) has on the wire. */
export function crlfLength(bytes: Buffer): number {
  let lfs = 0;
  for (let i = bytes.indexOf(LF); i >= 0; i = bytes.indexOf(LF, i + 1)) if (i === 0 || bytes[i - 1] !== CR) lfs++;
  return bytes.length + lfs;
}

/** A whole buffer of LF text as CRLF text. */
export function crlfBuffer(bytes: Buffer): Buffer {
  return Buffer.from(crlfText(bytes), 'latin1');
}

/** Every LF (a one-character pattern: V8 replaces it in one pass into one new string, quicker than replaceAll's pieces). */
const EVERY_LF = /\n/g;

/** The same as a byte string (one character per byte). */
export function crlfText(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  // Without a CR (almost all stored mail) every LF gains one; with one, only an LF without a CR before it.
  return bytes.indexOf(CR) < 0 ? text.replace(EVERY_LF, '\r\n') : text.replace(/(?<!\r)\n/g, '\r\n');
}
