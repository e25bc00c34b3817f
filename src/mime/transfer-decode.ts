// Content-Transfer-Encoding undone, in a stream (RFC 2045 6): base64 (6.8)
// and quoted-printable (6.7). Chunks may end anywhere, even inside "=4"
// or a base64 quantum; only a few bytes are ever held back.
//
// Both are tolerant, as decoders must be (RFC 2045 6.8: characters outside
// the alphabet "must be ignored"): base64 skips line ends and junk, and
// treats "=" as the end of a quantum, so concatenated base64 still reads;
// a truncated quantum gives the whole bytes it holds. Quoted-printable
// keeps a bad "=" sequence as it is, drops the white space that transport
// may have added at line ends (6.7 rule 3) and joins soft line breaks
// ("=" at a line end, rule 5).

export interface ByteDecoder {
  write(chunk: Buffer): Buffer;
  end(): Buffer;
}

const EMPTY = Buffer.alloc(0);

// The value of each base64 character, -1 for the rest (RFC 2045 6.8 Table 1).
const BASE64_VALUES = new Int8Array(256).fill(-1);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => (BASE64_VALUES[c.charCodeAt(0)] = i));
// base64url (RFC 4648 5), which some mailers send by mistake.
BASE64_VALUES[0x2d] = 62;
BASE64_VALUES[0x5f] = 63;

export class Base64Decoder implements ByteDecoder {
  #bits = 0; // up to 3 characters' worth of pending bits
  #count = 0; // characters pending (0-3)

  write(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(Math.floor(((chunk.length + this.#count) * 3) / 4) + 3);
    let n = 0;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      const value = BASE64_VALUES[byte];
      if (value < 0) {
        if (byte === 0x3d) n = this.#flush(out, n); // "=": the quantum ends here
        continue;
      }
      this.#bits = (this.#bits << 6) | value;
      if (++this.#count === 4) {
        out[n++] = (this.#bits >> 16) & 0xff;
        out[n++] = (this.#bits >> 8) & 0xff;
        out[n++] = this.#bits & 0xff;
        this.#bits = 0;
        this.#count = 0;
      }
    }
    return out.subarray(0, n);
  }

  end(): Buffer {
    const out = Buffer.allocUnsafe(3);
    return out.subarray(0, this.#flush(out, 0));
  }

  // A short quantum: 2 characters hold one byte, 3 hold two; 1 holds none.
  #flush(out: Buffer, n: number): number {
    if (this.#count === 2) out[n++] = (this.#bits >> 4) & 0xff;
    else if (this.#count === 3) {
      out[n++] = (this.#bits >> 10) & 0xff;
      out[n++] = (this.#bits >> 2) & 0xff;
    }
    this.#bits = 0;
    this.#count = 0;
    return n;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const EQUALS = 0x3d;
const isBlank = (byte: number) => byte === 0x20 || byte === 0x09;
const hexValue = (byte: number) =>
  byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : byte >= 0x41 && byte <= 0x46 ? byte - 0x37 : byte >= 0x61 && byte <= 0x66 ? byte - 0x57 : -1;
// White space at a chunk end longer than this is not held back: it is text, not padding.
const MAX_HELD = 1024;

export class QuotedPrintableDecoder implements ByteDecoder {
  #held: Buffer = EMPTY; // the end of the input that the next chunk may change the meaning of

  write(chunk: Buffer): Buffer {
    const data = this.#held.length === 0 ? chunk : Buffer.concat([this.#held, chunk]);
    const lineStart = data.lastIndexOf(LF) + 1;
    // Hold back what ends the unfinished last line and may turn out to be
    // a line end, trailing white space, a soft break, or a cut "=X".
    let keep = data.length;
    if (keep > lineStart && data[keep - 1] === CR) keep--;
    while (keep > lineStart && isBlank(data[keep - 1])) keep--;
    if (keep > lineStart && data[keep - 1] === EQUALS) keep--;
    else if (keep === data.length && keep - 2 >= lineStart && data[keep - 2] === EQUALS) keep -= 2;
    keep = Math.max(keep, data.length - MAX_HELD); // a long run of white space is just text
    this.#held = Buffer.from(data.subarray(keep)); // a copy: the caller may reuse its chunk
    return decodeQuotedPrintable(data, keep, false);
  }

  end(): Buffer {
    const held = this.#held;
    this.#held = EMPTY;
    return decodeQuotedPrintable(held, held.length, true);
  }
}

/**
 * Decodes data[0, end). A line without its LF is the last one; `final`
 * says whether the input ends with it (so its trailing white space and
 * "=" can be judged) or it goes on in the next chunk.
 */
function decodeQuotedPrintable(data: Buffer, end: number, final: boolean): Buffer {
  const out = Buffer.allocUnsafe(end);
  let n = 0;
  let i = 0;
  while (i < end) {
    let lf = data.indexOf(LF, i);
    if (lf >= end) lf = -1;
    const hasEnd = lf >= 0;
    const lineEnd = hasEnd ? lf : end;
    let textEnd = lineEnd;
    const crlf = hasEnd && textEnd > i && data[textEnd - 1] === CR;
    if (crlf) textEnd--;
    let soft = false;
    if (hasEnd || final) {
      while (textEnd > i && isBlank(data[textEnd - 1])) textEnd--; // rule 3
      if (textEnd > i && data[textEnd - 1] === EQUALS) {
        soft = true; // rule 5: "=" at the end joins this line to the next
        textEnd--;
      }
    }
    for (let k = i; k < textEnd; k++) {
      const byte = data[k];
      if (byte === EQUALS && k + 2 < textEnd) {
        const high = hexValue(data[k + 1]);
        const low = hexValue(data[k + 2]);
        if (high >= 0 && low >= 0) {
          out[n++] = (high << 4) | low;
          k += 2;
          continue;
        }
      }
      out[n++] = byte; // a bad "=" sequence stays as it is
    }
    if (hasEnd && !soft) {
      if (crlf) out[n++] = CR; // the line end as it was written
      out[n++] = LF;
    }
    i = hasEnd ? lf + 1 : end;
  }
  return out.subarray(0, n);
}

/** The decoder for a Content-Transfer-Encoding; 7bit, 8bit, binary and unknown ones pass bytes through. */
export function transferDecoder(encoding: string | null): ByteDecoder {
  const name = (encoding ?? '7bit').trim().toLowerCase();
  if (name === 'base64') return new Base64Decoder();
  if (name === 'quoted-printable') return new QuotedPrintableDecoder();
  return { write: (chunk) => chunk, end: () => EMPTY };
}
