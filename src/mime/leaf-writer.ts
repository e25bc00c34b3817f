// Hands the body bytes of one part to a listener while the structure parser
// (structure.ts) streams through a message, exactly the bytes of
// [bodyStart, bodyEnd): the line end before a boundary line belongs to the
// boundary (RFC 2046 5.1.1), but that is only known when the next line is
// seen, so the last line end is held back until then. A CR at the end of a
// chunk is held back too, in case the LF that makes it a line end follows.

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
