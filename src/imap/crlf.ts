// Messages as IMAP clients see them. The store keeps LF line endings (mbox
// text); on the wire every line ends in CRLF, and every size and offset IMAP
// names (RFC822.SIZE, partial fetches <start.length>) counts those CRLF
// octets. An LF already preceded by CR (a file written by another program)
// is left alone, as the index's size counts it (mbox-index-scan.ts).

const CR = 0x0d;
const LF = 0x0a;

/** LF -> CRLF over a stream, chunk boundaries anywhere. */
export async function* toCrlf(source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  let lastByte = -1; // the byte before this chunk
  for await (const chunk of source) {
    if (chunk.length === 0) continue;
    const before = (i: number) => (i > 0 ? chunk[i - 1] : lastByte);
    let lfs = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) if (before(i) !== CR) lfs++;
    if (lfs === 0) {
      lastByte = chunk[chunk.length - 1];
      yield chunk;
      continue;
    }
    const out = Buffer.allocUnsafe(chunk.length + lfs);
    let n = 0;
    let from = 0;
    for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
      n += chunk.copy(out, n, from, i);
      if (before(i) !== CR) out[n++] = CR;
      out[n++] = LF;
      from = i + 1;
    }
    n += chunk.copy(out, n, from);
    lastByte = chunk[chunk.length - 1];
    yield out.subarray(0, n);
  }
}

/** The octets [start, start + length) of a stream (a partial fetch, RFC 3501 6.4.5). */
export async function* slice(source: AsyncIterable<Buffer>, start: number, length: number): AsyncIterable<Buffer> {
  let position = 0;
  const end = start + length;
  for await (const chunk of source) {
    const chunkEnd = position + chunk.length;
    if (chunkEnd > start) yield chunk.subarray(Math.max(0, start - position), Math.min(chunk.length, end - position));
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

/** The same as a byte string (one character per byte). */
export function crlfText(bytes: Buffer): string {
  const text = bytes.toString('latin1');
  // Without a CR (almost all stored mail) every LF gains one: a plain search, no regular expression to run.
  return bytes.indexOf(CR) < 0 ? text.replaceAll('\n', '\r\n') : text.replace(/(?<!\r)\n/g, '\r\n');
}
