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
// This file is the scanner: it cuts the bytes into lines and says what each
// line is (header, blank, body, boundary). What those lines mean for the
// parts (a header ends, a part ends, the next begins) is part-tree.ts.
//
// Invariants: nothing throws on any input; work is linear in the input;
// memory is bounded by the limits, whatever the input.

import type { MimePart } from './part.ts';
import type { BodyListener, LeafWriter } from './part-bytes.ts';
import { DEFAULT_LIMITS, MAX_BOUNDARY, PartTree } from './part-tree.ts';
import type { Frame, StructureLimits } from './part-tree.ts';

export type { BodyListener, StructureLimits };
export { DEFAULT_LIMITS };

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
// Enough of a line to match "--" boundary "--".
const PROBE_BYTES = MAX_BOUNDARY + 4;

// What the start of a line says.
const NEED_MORE = 0, TEXT = 1, BLANK = 2, BOUNDARY = 3;

// Where a line is while it is cut across chunks.
type LineMode = 'start' | 'probe' | 'header' | 'body' | 'boundary';

export class MimeStructureParser {
  readonly #tree: PartTree;
  readonly #stack: Frame[]; // the tree's open parts, read here to match boundaries

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
    this.#tree = new PartTree({ ...DEFAULT_LIMITS, ...limits }, listener);
    this.#stack = this.#tree.stack;
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
    return this.#tree.closeAll(this.#position, this.#lf, this.#bare);
  }

  #advance(chunk: Buffer): void {
    if (chunk.length > 0) this.#lastByte = chunk[chunk.length - 1];
    this.#position += chunk.length;
  }

  #writer(): LeafWriter | null {
    return this.#tree.writer();
  }

  // --- classifying a line by its start ---

  /** What the line buf[start, end) is; `complete` when `end` is its LF. */
  #classify(buf: Buffer, start: number, end: number, complete: boolean): number {
    const top = this.#stack[this.#stack.length - 1];
    const length = end - start;
    if (top.state === 'header') {
      if (length === 0 || (length === 1 && buf[start] === CR)) return complete ? BLANK : NEED_MORE;
    }
    if (this.#tree.boundariesOff) return TEXT;
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
      this.#tree.headerDone(top, lineEnd, this.#lf, this.#bare);
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
    this.#tree.keepHeader(frame, buf, start, end);
  }

  /** A boundary line (the match #classify found) ending at `lineEnd`, where the counters are `lf` and `bare`. */
  #boundary(lineEnd: number, lf: number, bare: number): void {
    const line = { offset: this.#lineStart, lf: this.#lfAtLine, bare: this.#bareAtLine, previousEnd: this.#previousEnd };
    this.#tree.boundary(this.#matchFrame, this.#matchClose, line, lineEnd, lf, bare);
  }
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
