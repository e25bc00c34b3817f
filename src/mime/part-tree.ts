// The tree of parts a message is made of, built while structure.ts scans it.
//
// The scanner finds the lines that matter (the blank line that ends a
// header, a boundary line) and tells this file; this file decides what they
// mean for the parts: a header ends and the part's type says what its body
// is (RFC 2045 5, RFC 2046 5.1 multipart, 5.2.1 message/rfc822); a boundary
// ends the parts open inside its multipart and starts the next one (RFC 2046
// 5.1.1, 5.1.2); at the end, every part still open ends with the message.
//
// Open parts are a stack of frames, outermost first. A part's sizes are
// differences of the scanner's counters (bytes, LFs, LFs without a CR) taken
// where the part starts and ends; IMAP gives sizes as if every line ended
// in CRLF, so a bare LF counts twice, hence the bare-LF counter.

import { describePart, emptyPart, isEmbeddedMessage, isMultipart, transferEncoding } from './part.ts';
import type { MimePart } from './part.ts';
import { paramValue } from './params.ts';
import { HeaderBuffer, LeafWriter } from './part-bytes.ts';
import type { BodyListener } from './part-bytes.ts';

export interface StructureLimits {
  /** Nesting of multiparts and embedded messages; deeper parts stay unparsed. */
  maxDepth: number;
  /** Parts in all; after that the rest of the message is the body of the last part (as Dovecot does). */
  maxParts: number;
  /** Header bytes kept per part; the rest is counted, not kept. */
  maxHeaderBytes: number;
  /** Header bytes kept for the whole message. */
  maxTotalHeaderBytes: number;
}

export const DEFAULT_LIMITS: StructureLimits = {
  maxDepth: 20,
  maxParts: 1000,
  maxHeaderBytes: 64 * 1024,
  maxTotalHeaderBytes: 1024 * 1024,
};

/** Boundaries longer than this are not looked for (RFC 2046 5.1.1 allows 70). */
export const MAX_BOUNDARY = 200;

// What a frame is reading: its header; a body passed to the listener
// (leaf); a body only counted (opaque); a multipart before, between or
// after its parts; an embedded message (its own frame sits above).
export type FrameState = 'header' | 'leaf' | 'opaque' | 'preamble' | 'epilogue' | 'container';

export interface Frame {
  part: MimePart;
  state: FrameState;
  depth: number;
  inDigest: boolean;
  /** "--" + boundary, for a multipart whose parts are being read. */
  delimiter: Buffer | null;
  lfAtHeader: number;
  bareAtHeader: number;
  lfAtBody: number;
  bareAtBody: number;
  /** For a leaf whose body the listener wants. */
  writer: LeafWriter | null;
}

/** Where the scanner's current line starts: its offset, the counters there, and the length of the line end before it (0, 1 or 2). */
export interface LineStart {
  offset: number;
  lf: number;
  bare: number;
  previousEnd: number;
}

export class PartTree {
  /** The open parts, outermost first; the scanner reads it to match boundaries. */
  readonly stack: Frame[] = [];
  readonly root: MimePart;
  readonly #limits: StructureLimits;
  readonly #listener: BodyListener | null;
  readonly #header: HeaderBuffer; // only the top frame is ever in its header
  #parts = 1;
  #boundariesOff = false;

  constructor(limits: StructureLimits, listener: BodyListener | null) {
    this.#limits = limits;
    this.#listener = listener;
    this.#header = new HeaderBuffer(limits.maxHeaderBytes, limits.maxTotalHeaderBytes);
    this.root = emptyPart(0);
    this.stack.push(newFrame(this.root, 0, false, 0, 0));
  }

  /** The innermost open part. */
  get top(): Frame {
    return this.stack[this.stack.length - 1];
  }

  /** True once the part limit was reached: boundaries are no longer looked for. */
  get boundariesOff(): boolean {
    return this.#boundariesOff;
  }

  /** Where the body of the innermost part goes, if the listener wants it. */
  writer(): LeafWriter | null {
    return this.stack[this.stack.length - 1]?.writer ?? null;
  }

  /** Header bytes of the top frame, kept up to the limits. */
  keepHeader(frame: Frame, buf: Buffer, start: number, end: number): void {
    if (!this.#header.add(buf, start, end)) frame.part.headerTruncated = true;
  }

  /**
   * The empty line ended the header of the top frame; the body starts at
   * `bodyStart`, where the counters are `lf` and `bare`.
   */
  headerDone(frame: Frame, bodyStart: number, lf: number, bare: number): void {
    this.#finishHeader(frame, bodyStart, lf, bare);
    const part = frame.part;
    const deepEnough = frame.depth >= this.#limits.maxDepth;
    if (isMultipart(part)) {
      const boundary = paramValue(part.params, 'boundary');
      const usable = boundary !== null && boundary.length > 0 && boundary.length <= MAX_BOUNDARY && !deepEnough;
      frame.state = usable ? 'preamble' : 'opaque';
      if (usable) frame.delimiter = Buffer.from(`--${boundary}`, 'latin1');
    } else if (isEmbeddedMessage(part) && !deepEnough && !this.#boundariesOff && isIdentity(part)) {
      frame.state = 'container';
      if (this.#countPart()) {
        const inner = emptyPart(bodyStart);
        part.message = inner;
        this.stack.push(newFrame(inner, frame.depth + 1, false, lf, bare));
      } else frame.state = 'opaque';
    } else {
      frame.state = 'leaf';
      if (this.#listener && this.#listener.partHeader?.(part) !== false) frame.writer = new LeafWriter(part, this.#listener);
    }
  }

  #finishHeader(frame: Frame, bodyStart: number, lf: number, bare: number): void {
    const part = frame.part;
    part.header = this.#header.take();
    part.bodyStart = bodyStart;
    part.headerOctets = bodyStart - part.headerStart + (bare - frame.bareAtHeader);
    frame.lfAtBody = lf;
    frame.bareAtBody = bare;
    describePart(part, frame.inDigest);
  }

  /**
   * A boundary line of the multipart `stack[owner]` (`close`: the closing
   * "--boundary--"), starting at `line` and ending at `lineEnd`, where the
   * counters are `lf` and `bare`.
   */
  boundary(owner: number, close: boolean, line: LineStart, lineEnd: number, lf: number, bare: number): void {
    // The parts inside the multipart end before this line and its line end.
    const endAt = line.offset - line.previousEnd;
    const lfEnd = line.lf - (line.previousEnd > 0 ? 1 : 0);
    const bareEnd = line.bare - (line.previousEnd === 1 ? 1 : 0);
    while (this.stack.length - 1 > owner) {
      const frame = this.stack[this.stack.length - 1];
      // A part that is still in its header, or whose body is empty, ends at the line itself.
      const from = frame.state === 'header' ? frame.part.headerStart : frame.part.bodyStart;
      if (endAt >= from && line.previousEnd > 0) this.#close(frame, endAt, lfEnd, bareEnd);
      else this.#close(frame, Math.max(from, line.offset), line.lf, line.bare);
    }
    const multipart = this.stack[owner];
    if (close) {
      multipart.state = 'epilogue';
      return;
    }
    multipart.state = 'preamble'; // between parts, until the new part's frame is pushed
    if (!this.#countPart()) return;
    const child = emptyPart(lineEnd);
    multipart.part.children.push(child);
    this.stack.push(newFrame(child, multipart.depth + 1, multipart.part.subtype.toLowerCase() === 'digest', lf, bare));
  }

  /** The message ended at `end`: every open part ends there. Returns the message's top part. */
  closeAll(end: number, lf: number, bare: number): MimePart {
    while (this.stack.length > 0) this.#close(this.stack[this.stack.length - 1], end, lf, bare);
    return this.root;
  }

  /**
   * Counts a new part, if the limit allows. The part that reaches the limit
   * is the last: boundaries are no longer looked for, so the rest of the
   * message is its body (Dovecot's rule too).
   */
  #countPart(): boolean {
    if (this.#parts >= this.#limits.maxParts) return false;
    if (++this.#parts >= this.#limits.maxParts) this.#boundariesOff = true;
    return true;
  }

  /** Ends the top frame at `end`, where the counters are `lf` and `bare`. */
  #close(frame: Frame, end: number, lf: number, bare: number): void {
    this.stack.pop();
    if (frame.state === 'header') this.#finishHeader(frame, end, lf, bare);
    const part = frame.part;
    part.bodyEnd = end;
    part.bodyOctets = end - part.bodyStart + (bare - frame.bareAtBody);
    part.bodyLines = lf - frame.lfAtBody;
    if (frame.writer) {
      frame.writer.end();
      this.#listener?.partEnd?.(part);
    }
  }
}

/** A frame for a part whose header starts where the counters are `lf` and `bare`. */
function newFrame(part: MimePart, depth: number, inDigest: boolean, lf: number, bare: number): Frame {
  return { part, state: 'header', depth, inDigest, delimiter: null, lfAtHeader: lf, bareAtHeader: bare, lfAtBody: 0, bareAtBody: 0, writer: null };
}

// Only an embedded message sent as it is can be parsed (RFC 2046 5.2.1
// allows no other encoding; a base64 one is left whole).
function isIdentity(part: MimePart): boolean {
  const encoding = transferEncoding(part);
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
}
