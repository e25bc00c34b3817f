// What the structure parser (structure.ts) does with the bytes of a part:
// it keeps the header, up to a limit, and hands the body to a listener.
//
// The body handed over is exactly [bodyStart, bodyEnd): the line end before
// a boundary line belongs to the boundary (RFC 2046 5.1.1), but that is only
// known when the next line is seen, so the last line end is held back until
// then. A CR at the end of a chunk is held back too, in case the LF that
// makes it a line end follows.

import type { MimePart } from './part.ts';

/** What a listener of the structure parser hears, in message order. */
export interface BodyListener {
  /** A part that is not multipart nor an embedded message has its header read; return false to skip its body. */
  partHeader?(part: MimePart): boolean | void;
  /** Body bytes of that part. Valid only during the call: copy to keep. */
  bodyData?(part: MimePart, data: Buffer): void;
  /** The part ended; its sizes and bodyEnd are known. */
  partEnd?(part: MimePart): void;
}

const LINE_ENDS = [Buffer.alloc(0), Buffer.from('\n'), Buffer.from('\r\n')];
const CR_BYTE = Buffer.from('\r');
const CR = 0x0d;

export class LeafWriter {
  readonly #part: MimePart;
  readonly #listener: BodyListener;
  #written = 0;
  #pending = 0; // bytes of the last line end held back (1 or 2)
  #heldCR = false; // a CR at the end of a piece held back

  constructor(part: MimePart, listener: BodyListener) {
    this.#part = part;
    this.#listener = listener;
  }

  /** Bytes of one or more body lines, without the LF of the last one. */
  piece(buf: Buffer, start: number, end: number): void {
    if (start === end) return;
    this.#flush();
    if (buf[end - 1] === CR) {
      end--;
      this.#heldCR = true;
    }
    if (end > start) this.#emit(buf.subarray(start, end));
  }

  /** The line's LF came: its line end is held back. */
  lineEnd(): void {
    if (this.#heldCR) {
      this.#heldCR = false;
      this.#pending = 2;
    } else {
      this.#flush();
      this.#pending = 1;
    }
  }

  /** The part ended; write what was held back if it is inside the body. */
  end(): void {
    const size = this.#part.bodyEnd - this.#part.bodyStart;
    if (this.#pending > 0 && this.#written + this.#pending <= size) this.#emit(LINE_ENDS[this.#pending]);
    if (this.#heldCR && this.#written + 1 <= size) this.#emit(CR_BYTE);
    this.#pending = 0;
    this.#heldCR = false;
  }

  #flush(): void {
    if (this.#pending > 0) this.#emit(LINE_ENDS[this.#pending]);
    this.#pending = 0;
    if (this.#heldCR) this.#emit(CR_BYTE);
    this.#heldCR = false;
  }

  #emit(data: Buffer): void {
    this.#written += data.length;
    this.#listener.bodyData?.(this.#part, data);
  }
}

/**
 * The header being read, copied out of the chunks (which the caller may
 * reuse) into one growing buffer, up to a limit per part and a budget
 * shared by all parts of the message.
 */
export class HeaderBuffer {
  #bytes = Buffer.allocUnsafe(1024);
  #length = 0;
  #budget: number;
  readonly #perPart: number;

  constructor(perPart: number, budget: number) {
    this.#perPart = perPart;
    this.#budget = budget;
  }

  /** Keeps buf[start, end); false when some of it did not fit. */
  add(buf: Buffer, start: number, end: number): boolean {
    const take = Math.max(0, Math.min(end - start, this.#perPart - this.#length, this.#budget));
    if (this.#length + take > this.#bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.#bytes.length * 2, this.#length + take));
      this.#bytes.copy(bigger, 0, 0, this.#length);
      this.#bytes = bigger;
    }
    buf.copy(this.#bytes, this.#length, start, start + take);
    this.#length += take;
    this.#budget -= take;
    return take === end - start;
  }

  /** The header kept so far, as a buffer of its own; starts the next one. */
  take(): Buffer {
    const header = Buffer.from(this.#bytes.subarray(0, this.#length));
    this.#length = 0;
    return header;
  }
}
