// The store keeps messages with LF line ends (RFC 4155 mbox, as mutt and
// procmail write it); IMAP APPEND hands them over with CRLF (RFC 3501
// 6.3.11). This turns every line end into LF as the bytes stream by: CRLF,
// and also a lone CR, the same rule SMTP's DATA reader applies
// (wire/data-reader.ts), so the mbox holds one kind of line end only.

const CR = 0x0d;
const LF = 0x0a;

/** Turns CRLF and lone CR into LF, across chunk boundaries. */
export class LineEndNormalizer {
  #pendingCr = false; // the last chunk ended with a CR whose LF may come next

  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    if (!this.#pendingCr && chunk.indexOf(CR) === -1) return chunk; // the usual case once the client sent LF
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let n = 0;
    let i = 0;
    if (this.#pendingCr) {
      out[n++] = LF;
      if (chunk[0] === LF) i = 1; // the CRLF was split between chunks
      this.#pendingCr = false;
    }
    for (; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== CR) {
        out[n++] = byte;
      } else if (i + 1 === chunk.length) {
        this.#pendingCr = true;
      } else {
        out[n++] = LF;
        if (chunk[i + 1] === LF) i++;
      }
    }
    return out.subarray(0, n);
  }

  /** The end of the input: a CR left waiting is a line end. */
  end(): Buffer {
    const rest = this.#pendingCr ? Buffer.from([LF]) : Buffer.alloc(0);
    this.#pendingCr = false;
    return rest;
  }
}

/** `source` with LF line ends only. */
export async function* withLfLineEnds(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const normalizer = new LineEndNormalizer();
  for await (const chunk of source) {
    const out = normalizer.push(chunk);
    if (out.length > 0) yield out;
  }
  const rest = normalizer.end();
  if (rest.length > 0) yield rest;
}
