// The structure of a message, found in one streaming pass: which parts it
// has, where each header and body lies, and their sizes as IMAP counts them.
//
// RFC 2046 5.1.1: a multipart body is cut by lines that start with "--" and
// the boundary; "--boundary--" closes it. What comes before the first
// boundary line is the preamble, after the closing one the epilogue, both
// ignored. The line end before a boundary line belongs to the boundary.
// A boundary line of an outer multipart also ends the inner ones (RFC 2046
// 5.1.2), so every open boundary is looked for, innermost first; as Dovecot
// does, a line matches when it starts with "--boundary" (trailing white
// space, RFC 2046 5.1.1, or anything else may follow), the longest match
// winning. A missing closing boundary is no error: the parts end with the
// message. message/rfc822 parts hold a message with a structure of its own
// (RFC 2046 5.2.1), parsed as such.
//
// How it works: bytes are pushed in chunks and looked at line by line, with
// indexOf. Bodies are never copied, only counted: every line end moves two
// counters (LFs, and LFs without a CR), and a part's sizes are the
// differences of the counters at its ends. Header lines are copied, up to
// a limit per part and per message. A line cut by the end of a chunk keeps
// at most PROBE_BYTES of its start, enough to tell a boundary from text.
//
// Invariants: nothing throws on any input; work is linear in the input;
// memory is bounded by the limits, whatever the input.

import { describePart, emptyPart, isEmbeddedMessage, isMultipart, transferEncoding } from './part.ts';
import type { MimePart } from './part.ts';
import { paramValue } from './params.ts';
import { HeaderBuffer, LeafWriter } from './part-bytes.ts';
import type { BodyListener } from './part-bytes.ts';

export type { BodyListener };

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

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
// Boundaries longer than this are not looked for (RFC 2046 5.1.1 allows 70).
const MAX_BOUNDARY = 200;
// Enough of a line to match "--" boundary "--".
const PROBE_BYTES = MAX_BOUNDARY + 4;

// What a frame is reading: its header; a body passed to the listener
// (leaf); a body only counted (opaque); a multipart before, between or
// after its parts; an embedded message (its own frame sits above).
type FrameState = 'header' | 'leaf' | 'opaque' | 'preamble' | 'epilogue' | 'container';

interface Frame {
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

// What the start of a line says.
const NEED_MORE = 0, TEXT = 1, BLANK = 2, BOUNDARY = 3;

// Where a line is while it is cut across chunks.
type LineMode = 'start' | 'probe' | 'header' | 'body' | 'boundary';

export class MimeStructureParser {
  readonly #limits: StructureLimits;
  readonly #listener: BodyListener | null;
  readonly #stack: Frame[] = [];
  readonly #root: MimePart;
  #parts = 1;
  readonly #header: HeaderBuffer; // only the top frame is ever in its header
  #boundariesOff = false; // the part limit was reached

  #position = 0; // absolute offset of the next byte pushed
  #lf = 0; // LFs so far
  #bare = 0; // LFs without a CR before them so far
  #lastByte = LF;

  // The current line.
  #lineStart = 0;
  #lfAtLine = 0;
  #bareAtLine = 0;
  #previousEnd = 0; // length of the line end before this line (0, 1 or 2)
  #mode: LineMode = 'start';
  readonly #probe = Buffer.allocUnsafe(PROBE_BYTES);
  #probeLength = 0;
  #matchFrame = -1; // set by #classify for BOUNDARY
  #matchClose = false;

  constructor(limits: Partial<StructureLimits> = {}, listener: BodyListener | null = null) {
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#listener = listener;
    this.#header = new HeaderBuffer(this.#limits.maxHeaderBytes, this.#limits.maxTotalHeaderBytes);
    this.#root = emptyPart(0);
    this.#stack.push(this.#newFrame(this.#root, 0, false));
  }

  /** Feeds the next chunk. The chunk is not kept: the caller may reuse it. */
  push(chunk: Buffer): void {
    let i = 0;
    if (this.#mode !== 'start') {
      i = this.#continueLine(chunk);
      if (i < 0) return this.#advance(chunk);
    }
    // Whole body lines of a leaf go to its writer in runs, not one by one.
    let writer: LeafWriter | null = null;
    let runStart = -1;
    let runEnd = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf(LF, i);
      if (nl < 0) break;
      const kind = this.#classify(chunk, i, nl, true);
      const top = this.#stack[this.#stack.length - 1];
      if (kind === TEXT && top.writer !== null) {
        if (runStart < 0) [writer, runStart] = [top.writer, i];
        runEnd = nl;
        this.#endLine(nl, chunk, false);
      } else {
        if (runStart >= 0) this.#flushRun(writer!, chunk, runStart, runEnd);
        runStart = -1;
        this.#completeLine(kind, chunk, i, nl);
      }
      i = nl + 1;
    }
    if (runStart >= 0) this.#flushRun(writer!, chunk, runStart, runEnd);
    if (i < chunk.length) this.#startCutLine(chunk, i);
    this.#advance(chunk);
  }

  /** Ends the input; returns the message's top part. */
  end(): MimePart {
    if (this.#mode !== 'start') this.#finishLastLine();
    while (this.#stack.length > 0) this.#close(this.#stack[this.#stack.length - 1], this.#position, this.#lf, this.#bare);
    return this.#root;
  }

  #advance(chunk: Buffer): void {
    if (chunk.length > 0) this.#lastByte = chunk[chunk.length - 1];
    this.#position += chunk.length;
  }

  #newFrame(part: MimePart, depth: number, inDigest: boolean): Frame {
    return {
      part, state: 'header', depth, inDigest, delimiter: null,
      lfAtHeader: this.#lfAtLine, bareAtHeader: this.#bareAtLine, lfAtBody: 0, bareAtBody: 0, writer: null,
    };
  }

  #writer(): LeafWriter | null {
    return this.#stack[this.#stack.length - 1]?.writer ?? null;
  }

  // --- classifying a line by its start ---

  /** What the line buf[start, end) is; `complete` when `end` is its LF. */
  #classify(buf: Buffer, start: number, end: number, complete: boolean): number {
    const top = this.#stack[this.#stack.length - 1];
    const length = end - start;
    if (top.state === 'header') {
      if (length === 0 || (length === 1 && buf[start] === CR)) return complete ? BLANK : NEED_MORE;
    }
    if (this.#boundariesOff) return TEXT;
    if (length >= 2 ? buf[start] !== DASH || buf[start + 1] !== DASH : length === 1 ? buf[start] !== DASH : complete) return TEXT;
    if (!complete && length < PROBE_BYTES) return NEED_MORE;
    // Innermost first; the longest match wins (a nested boundary may extend an outer one).
    let best = -1;
    for (let k = this.#stack.length - 1; k >= 0; k--) {
      const d = this.#stack[k].delimiter;
      if (d === null || this.#stack[k].state === 'epilogue' || d.length > length || buf[start + 2] !== d[2]) continue;
      if (buf.compare(d, 0, d.length, start, start + d.length) !== 0) continue;
      if (best < 0 || d.length > this.#stack[best].delimiter!.length) best = k;
    }
    if (best < 0) return TEXT;
    const after = start + this.#stack[best].delimiter!.length;
    this.#matchFrame = best;
    this.#matchClose = end - after >= 2 && buf[after] === DASH && buf[after + 1] === DASH;
    return BOUNDARY;
  }

  // --- lines cut by the end of a chunk ---

  #startCutLine(chunk: Buffer, i: number): void {
    this.#mode = 'probe';
    this.#probeLength = 0;
    this.#probeMore(chunk, i, chunk.length);
  }

  /** Adds bytes to the probe and decides, if it can, what the cut line is. */
  #probeMore(chunk: Buffer, start: number, end: number): void {
    const take = Math.min(end - start, PROBE_BYTES - this.#probeLength);
    chunk.copy(this.#probe, this.#probeLength, start, start + take);
    this.#probeLength += take;
    const kind = this.#classify(this.#probe, 0, this.#probeLength, false);
    if (kind === NEED_MORE) return;
    if (kind === BOUNDARY) {
      this.#mode = 'boundary'; // the rest of the line does not matter
      return;
    }
    // Text: what was probed starts a header or body line; the rest follows it.
    const top = this.#stack[this.#stack.length - 1];
    this.#mode = top.state === 'header' ? 'header' : 'body';
    this.#lineText(this.#probe, 0, this.#probeLength);
    if (take < end - start) this.#lineText(chunk, start + take, end);
  }

  /** Bytes of a header or body line, not its LF. */
  #lineText(buf: Buffer, start: number, end: number): void {
    const top = this.#stack[this.#stack.length - 1];
    if (top.state === 'header') this.#keepHeader(top, buf, start, end);
    else if (top.state === 'leaf') this.#writer()?.piece(buf, start, end);
  }

  /** Continues a cut line; returns where the next line starts, or -1 if the chunk ended first. */
  #continueLine(chunk: Buffer): number {
    const nl = chunk.indexOf(LF);
    const end = nl < 0 ? chunk.length : nl;
    if (this.#mode === 'probe') this.#probeMore(chunk, 0, end);
    else if (this.#mode === 'header' || this.#mode === 'body') this.#lineText(chunk, 0, end);
    if (nl < 0) return -1;
    this.#lineDone(chunk, nl);
    return nl + 1;
  }

  /** The LF of a cut line arrived at chunk[nl]. */
  #lineDone(chunk: Buffer, nl: number): void {
    const mode = this.#mode;
    this.#mode = 'start';
    if (mode === 'probe' || mode === 'boundary') {
      // A boundary was matched when the probe filled up; a short line is looked at now.
      const kind = mode === 'boundary' ? BOUNDARY : this.#classify(this.#probe, 0, this.#probeLength, true);
      this.#completeLine(kind, this.#probe, 0, this.#probeLength, chunk, nl);
      return;
    }
    if (mode === 'header') this.#keepHeader(this.#stack[this.#stack.length - 1], chunk, nl, nl + 1);
    this.#endLine(nl, chunk, mode === 'body');
  }

  /** Input ended inside a line (no final LF). */
  #finishLastLine(): void {
    const mode = this.#mode;
    this.#mode = 'start';
    if (mode === 'probe') {
      // Too short to have been decided: a last line such as "--b" or "-".
      const kind = this.#classify(this.#probe, 0, this.#probeLength, true);
      if (kind === BOUNDARY) {
        this.#boundary(this.#position, this.#lf, this.#bare);
      } else if (kind === TEXT) this.#lineText(this.#probe, 0, this.#probeLength);
    } else if (mode === 'boundary') {
      this.#boundary(this.#position, this.#lf, this.#bare);
    }
  }

  // --- whole lines ---

  /**
   * A line whose start is buf[start, end) and whose LF is lfChunk[nl]
   * (the same buffer for an uncut line).
   */
  #completeLine(kind: number, buf: Buffer, start: number, end: number, lfChunk = buf, nl = end): void {
    const top = this.#stack[this.#stack.length - 1];
    const lineEnd = this.#position + nl + 1; // absolute offset after the LF (lfChunk is the current chunk)
    if (kind === BOUNDARY) {
      const crlf = nl > 0 ? lfChunk[nl - 1] === CR : this.#lastByte === CR;
      this.#boundary(lineEnd, this.#lfAtLine + 1, this.#bareAtLine + (crlf ? 0 : 1));
      this.#endLine(nl, lfChunk, false);
      return;
    }
    if (kind === BLANK) {
      this.#endLine(nl, lfChunk, false);
      this.#headerDone(top, lineEnd);
      return;
    }
    if (top.state === 'header') {
      this.#keepHeader(top, buf, start, end);
      this.#keepHeader(top, lfChunk, nl, nl + 1); // and its LF
    } else if (top.state === 'leaf') this.#writer()?.piece(buf, start, end);
    this.#endLine(nl, lfChunk, top.state === 'leaf');
  }

  /** Counts the LF at chunk[nl] and starts the next line. */
  #endLine(nl: number, chunk: Buffer, leafLine: boolean): void {
    const crlf = nl > 0 ? chunk[nl - 1] === CR : this.#lastByte === CR;
    this.#lf++;
    if (!crlf) this.#bare++;
    if (leafLine) this.#writer()?.lineEnd();
    this.#lineStart = this.#position + nl + 1;
    this.#lfAtLine = this.#lf;
    this.#bareAtLine = this.#bare;
    this.#previousEnd = crlf ? 2 : 1;
  }

  #flushRun(writer: LeafWriter, chunk: Buffer, start: number, end: number): void {
    writer.piece(chunk, start, end);
    writer.lineEnd();
  }

  #keepHeader(frame: Frame, buf: Buffer, start: number, end: number): void {
    if (!this.#header.add(buf, start, end)) frame.part.headerTruncated = true;
  }

  // --- the events: a header ends, a boundary, a part ends ---

  /** The empty line ended the header of the top frame; the body starts at `bodyStart`. */
  #headerDone(frame: Frame, bodyStart: number): void {
    this.#finishHeader(frame, bodyStart, this.#lf, this.#bare);
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
        this.#stack.push(this.#newFrame(inner, frame.depth + 1, false));
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
   * A boundary line (the match #classify found) ending at `lineEnd`; `lf`
   * and `bare` are the counters there.
   */
  #boundary(lineEnd: number, lf: number, bare: number): void {
    const owner = this.#matchFrame;
    const close = this.#matchClose;
    // The parts inside the multipart end before this line and its line end.
    const endAt = this.#lineStart - this.#previousEnd;
    const lfEnd = this.#lfAtLine - (this.#previousEnd > 0 ? 1 : 0);
    const bareEnd = this.#bareAtLine - (this.#previousEnd === 1 ? 1 : 0);
    while (this.#stack.length - 1 > owner) {
      const frame = this.#stack[this.#stack.length - 1];
      // A part that is still in its header, or whose body is empty, ends at the line itself.
      const from = frame.state === 'header' ? frame.part.headerStart : frame.part.bodyStart;
      if (endAt >= from && this.#previousEnd > 0) this.#close(frame, endAt, lfEnd, bareEnd);
      else this.#close(frame, Math.max(from, this.#lineStart), this.#lfAtLine, this.#bareAtLine);
    }
    const multipart = this.#stack[owner];
    if (close) {
      multipart.state = 'epilogue';
      return;
    }
    multipart.state = 'preamble'; // between parts, until the new part's frame is pushed
    if (!this.#countPart()) return;
    const child = emptyPart(lineEnd);
    multipart.part.children.push(child);
    const frame = this.#newFrame(child, multipart.depth + 1, multipart.part.subtype.toLowerCase() === 'digest');
    frame.lfAtHeader = lf;
    frame.bareAtHeader = bare;
    this.#stack.push(frame);
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
    this.#stack.pop();
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

// Only an embedded message sent as it is can be parsed (RFC 2046 5.2.1
// allows no other encoding; a base64 one is left whole).
function isIdentity(part: MimePart): boolean {
  const encoding = transferEncoding(part);
  return encoding === '7bit' || encoding === '8bit' || encoding === 'binary';
}

/** Reads a whole message from its chunks and returns its structure. */
export async function parseStructure(
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  limits: Partial<StructureLimits> = {},
  listener: BodyListener | null = null,
): Promise<MimePart> {
  const parser = new MimeStructureParser(limits, listener);
  for await (const chunk of chunks) parser.push(chunk);
  return parser.end();
}
