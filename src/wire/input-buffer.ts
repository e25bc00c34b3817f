// The bytes a client has sent that the session has not read yet, and how
// they are cut into lines. No socket, no timers: connection.ts feeds every
// chunk that arrives into `add` and asks for the next line (`takeLine`) or
// the next raw chunk (`takeChunk`, for SMTP DATA and IMAP literals).
//
// Invariants:
// - Bytes stay in the order they came; a client may send commands ahead
//   (pipelining, RFC 2920) and they wait here until asked for.
// - An over-long line is never held whole: once `maxLineBytes` have come
//   without a line end, what is held is dropped, and the rest of the line
//   is dropped as it arrives (`add`), up to its LF. The session then gets
//   one 'too-long' for it, and the next line is read normally.

const LF = 0x0a;
const CR = 0x0d;
const EMPTY = Buffer.alloc(0);
const NOT_ASCII = /[^\x00-\x7f]/;

/**
 * Where the first LF at or after `from` is in `bytes`, or -1. For a short
 * stretch (a command line) the typed array's own search, a V8 builtin, is
 * several times cheaper than Buffer's, which goes through Node's C++
 * binding; over a long one Buffer's (memchr) is some twenty times faster.
 */
const typedIndexOf = Uint8Array.prototype.indexOf;
const SHORT_SEARCH = 1024;
function indexOfLf(bytes: Buffer, from: number): number {
  return bytes.length - from <= SHORT_SEARCH ? typedIndexOf.call(bytes, LF, from) : bytes.indexOf(LF, from);
}

/**
 * The first `length` bytes as text. Commands may carry UTF-8 (RFC 6531's
 * SMTPUTF8, RFC 6855's UTF8=ACCEPT), but nearly every line is ASCII, which
 * latin1 decodes the same and at less than half the cost; only a line with
 * a byte above 0x7F is decoded again as UTF-8.
 */
function lineText(bytes: Buffer, length: number): string {
  const text = bytes.toString('latin1', 0, length);
  return NOT_ASCII.test(text) ? bytes.toString('utf8', 0, length) : text;
}

/** What `takeLine` found: a line (without its line end), an over-long line skipped, or nothing complete yet. */
export type TakenLine = { kind: 'line'; text: string } | { kind: 'too-long' } | null;

export class InputBuffer {
  /**
   * Unread bytes: `pending`, then `arrived` (chunks not yet joined to it).
   * Joining every arrival at once would copy the unread bytes again each time.
   */
  private pending: Buffer = EMPTY;
  /**
   * How many bytes at the start of `pending` are known to hold no LF: a line
   * that comes in many pieces is searched once, not again at every piece.
   */
  private searched = 0;
  private arrived: Buffer[] = [];
  private arrivedBytes = 0;
  /** True while we are inside an over-long line, dropping its bytes. */
  private discarding = false;
  /** Set when an over-long line was dropped; the LF that ends it yields 'too-long'. */
  private longLineEnded = false;

  /** Keep a chunk that has just arrived (or drop it, inside an over-long line). */
  add(chunk: Buffer): void {
    if (this.discarding) {
      const end = chunk.indexOf(LF);
      if (end < 0) return; // still inside the over-long line: drop it
      this.discarding = false;
      // Keep the LF that ends the long line: takeLine turns it into 'too-long'.
      chunk = chunk.subarray(end);
    }
    this.arrived.push(chunk);
    this.arrivedBytes += chunk.length;
  }

  /** Bytes held, unread. */
  get size(): number {
    return this.pending.length + this.arrivedBytes;
  }

  /** True when chunks came since the last look (a wait for input would wait for bytes already here). */
  get hasNewChunks(): boolean {
    return this.arrived.length > 0;
  }

  /**
   * The next line without its line end (CRLF, or a lone LF as Postfix
   * accepts for commands), 'too-long' for a line over `maxLineBytes`
   * (counting its line end), or null when no whole line is here yet.
   */
  takeLine(maxLineBytes: number): TakenLine {
    this.joinArrived();
    const bytes = this.pending;
    const end = bytes.length === this.searched ? -1 : indexOfLf(bytes, this.searched);
    if (end >= 0) {
      const lineBytes = end + 1;
      this.pending = lineBytes === bytes.length ? EMPTY : bytes.subarray(lineBytes);
      this.searched = 0;
      if (this.longLineEnded) {
        this.longLineEnded = false;
        return { kind: 'too-long' };
      }
      if (lineBytes > maxLineBytes) return { kind: 'too-long' };
      return { kind: 'line', text: lineText(bytes, end > 0 && bytes[end - 1] === CR ? end - 1 : end) };
    }
    this.searched = bytes.length;
    if (this.pending.length >= maxLineBytes) {
      // No line end within the limit: drop what we have and skip to the next LF.
      this.pending = EMPTY;
      this.searched = 0;
      this.discarding = true;
      this.longLineEnded = true;
    }
    return null;
  }

  /**
   * The next unread chunk as it came (never joined to others), or null when
   * there is none. What the reader does not use goes back with `putBack`.
   */
  takeChunk(): Buffer | null {
    if (this.pending.length === 0 && this.arrived.length > 0) {
      this.pending = this.arrived.shift()!;
      this.arrivedBytes -= this.pending.length;
    }
    if (this.pending.length === 0) return null;
    const chunk = this.pending;
    this.pending = EMPTY;
    this.searched = 0;
    return chunk;
  }

  /** Return the unused end of the chunk `takeChunk` gave: it is read first next time (the next pipelined command). */
  putBack(rest: Buffer): void {
    this.pending = rest;
    this.searched = 0;
  }

  /** Throw away everything unread (STARTTLS: what came in clear, CVE-2011-0411). */
  clear(): void {
    this.pending = EMPTY;
    this.searched = 0;
    this.arrived = [];
    this.arrivedBytes = 0;
    this.discarding = false;
    this.longLineEnded = false;
  }

  /** Join what has arrived onto `pending` (needed to look for a line end across chunks). */
  private joinArrived(): void {
    if (this.arrived.length === 0) return;
    this.pending = this.pending.length === 0 && this.arrived.length === 1 ? this.arrived[0] : Buffer.concat([this.pending, ...this.arrived]);
    this.arrived = [];
    this.arrivedBytes = 0;
  }
}
