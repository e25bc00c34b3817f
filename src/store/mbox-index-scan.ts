// One pass over an mbox file that finds what the side index (mbox-index.ts)
// records for each message: where it is, how big a client will see it, and
// a fingerprint that survives rewrites of the file by other programs.
//
// Bounds: RFC 4155, every line starting "From " begins a message and the
// blank line before it is the separator (exactly as the tests' simple
// reference reader, MboxScanner in test/helpers/mbox-read.ts, finds them). Size: what POP3 LIST and IMAP RFC822.SIZE promise, the message
// as sent: mboxrd quoting undone (mboxrd.ts: one ">" less on each line
// matching /^>+From /) and LF line ends turned into CRLF (RFC 5322 2.3), so
//   size = content bytes - quoted From lines + LFs without a CR before them.
// Fingerprint: see computeFingerprint.
//
// The file is read once, in large chunks, and nothing is held per message
// but its From line, its Message-ID and the first 512 bytes of its body:
// the first load of a 27 MB mailbox takes about a tenth of a second.

import { hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { parseFromLineDate } from './from-line.ts';

/** A message as the scan finds it: what the index keeps but its UID, flags and mod-sequence. */
export interface ScannedMessage {
  offset: number;
  length: number;
  contentOffset: number;
  size: number;
  fingerprint: string;
  /** The From line's date in seconds (from-line.ts), or null if it has none we can read. */
  internalDate: number | null;
  /**
   * CRC-32 of the message's stored bytes, [offset, offset + length): what a
   * read of it whole is checked by (message-reader.ts); -1 for a message
   * larger than WHOLE_CHECK_BYTES.
   */
  crc: number;
}

/**
 * Identifies a message across rewrites of the file: sha1 of the From line
 * (without its LF), NUL, the Message-ID (unfolded, whitespace removed), NUL,
 * the first 512 bytes of the body as stored (after the header's empty line);
 * the first 16 hex digits. Not the other header fields, which mail readers
 * rewrite (mutt adds "Status:"): a message whose other fields changed keeps
 * its identity, and identical copies of one message share a fingerprint.
 */
export function computeFingerprint(fromLine: string, messageId: string, bodyStart: Buffer): string {
  const text = `${fromLine}\0${messageId}\0`;
  const body = bodyStart.subarray(0, BODY_PREFIX);
  const input = Buffer.allocUnsafe(Buffer.byteLength(text) + body.length); // one buffer, no concat: this runs per message
  body.copy(input, input.write(text));
  return hash('sha1', input, 'hex').slice(0, 16);
}

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const F = 0x46;
const FROM_ = Buffer.from('From ');
const MESSAGE_ID = Buffer.from('message-id:');
const BODY_PREFIX = 512;
const HEAD_MAX = 1024; // bytes kept of a line that a read splits (From line, Message-ID)
const READ_CHUNK = 1024 * 1024; // one read per megabyte: a 27 MB mbox is 27 reads

/**
 * A message of up to this many stored bytes is read in one piece and checked
 * whole (message-reader.ts); a larger one is checked by its start and
 * streamed, so the scan keeps no CRC for it.
 */
export const WHOLE_CHECK_BYTES = 128 * 1024;

// A message whose end is not known yet.
interface Open {
  offset: number;
  contentOffset: number;
  fromLine: string;
  internalDate: number | null;
  messageId: string;
  inMessageId: boolean; // is the header field being read Message-ID (for folded lines)?
  bodyOffset: number; // -1 while in the header
  bodyBytes: number; // of the body's first bytes (maybe some beyond its end) in the scanner's #body
  quoted: number; // lines matching /^>+From /: each loses one ">" when read
  bareLf: number; // LFs without a CR before them: each gains one on the wire
}

/**
 * Finds the same messages as MboxScanner (test/helpers/mbox-read.ts), and also works out
 * each one's size and fingerprint as the bytes go by, holding only a line's
 * first bytes and the body's first 512. Lines are looked at where they lie
 * in the chunk; only a line cut by the end of a chunk is copied.
 */
export class IndexScanner {
  #position: number; // absolute offset of the next byte pushed
  #lineStart: number; // absolute offset where the current line began
  #previousLineEmpty = false;
  #lastByte = LF; // the byte before #position
  readonly #head = Buffer.allocUnsafe(HEAD_MAX); // start of a line cut by a chunk end
  readonly #body = Buffer.allocUnsafe(BODY_PREFIX); // the open message's first body bytes
  #headLength = 0;
  #current: Open | null = null;
  // The chunk being scanned, and its absolute offset: a message gets its CRC
  // from it when it ends (#crcOf), and from #carry if it began before it.
  #chunk: Buffer | null = null;
  #chunkStart = 0;
  // A copy of the bytes [#carryStart, #chunkStart) that a message cut by a
  // chunk end needs for its CRC (the reader reuses its buffers, so the chunk
  // before is gone); at most WHOLE_CHECK_BYTES. -1: none kept.
  #carry: Buffer | null = null;
  #carryStart = -1;

  constructor(start = 0) {
    this.#position = start;
    this.#lineStart = start;
  }

  /**
   * Feeds the next chunk; returns the messages it completed. The last chunk
   * pushed must stay unchanged until end() (the last message's CRC); the
   * ones before may be read into again (#carry keeps what is needed).
   */
  push(chunk: Buffer): ScannedMessage[] {
    const done: ScannedMessage[] = [];
    const base = this.#position;
    this.#chunk = chunk;
    this.#chunkStart = base;
    this.#takeBody(chunk, base);
    for (let i = 0; i < chunk.length; ) {
      const nl = chunk.indexOf(LF, i);
      // The hot path, most lines of a big mailbox: a whole, non-empty line
      // of a body whose first 512 bytes are kept already. Only its first
      // byte (a From line? a quoted one?) and whether a CR ends it matter.
      const m = this.#current;
      if (nl > i && m !== null && m.bodyBytes >= BODY_PREFIX && this.#headLength === 0 && chunk[i] !== F && chunk[i] !== GT) {
        if (chunk[nl - 1] !== CR) m.bareLf++;
        this.#previousLineEmpty = false;
        this.#lineStart = base + nl + 1;
        i = nl + 1;
        continue;
      }
      const end = nl === -1 ? chunk.length : nl;
      if (nl === -1 || this.#lineStart < base + i) this.#keepHead(chunk, i, end);
      if (nl === -1) break;
      const crBefore = nl > 0 ? chunk[nl - 1] === CR : this.#lastByte === CR;
      if (this.#headLength > 0) this.#endLine(this.#head, 0, this.#headLength, base + nl, crBefore, done);
      else this.#endLine(chunk, i, nl, base + nl, crBefore, done);
      this.#headLength = 0;
      this.#takeBody(chunk, base); // the header may have just ended
      i = nl + 1;
    }
    this.#position = base + chunk.length;
    if (chunk.length > 0) this.#lastByte = chunk[chunk.length - 1];
    this.#keepCarry(chunk, base);
    return done;
  }

  /**
   * At a chunk's end, keep what the next chunk may need for a CRC: the open
   * message so far, or (none open, or one too large for a CRC) the line in
   * progress, which may be the From line of the next message.
   */
  #keepCarry(chunk: Buffer, base: number): void {
    const end = base + chunk.length;
    const m = this.#current;
    const from = m !== null && end - m.offset <= WHOLE_CHECK_BYTES ? m.offset : this.#lineStart;
    const kept = this.#carryStart >= 0 && this.#carryStart <= from; // what came before this chunk is in #carry
    if (end - from > WHOLE_CHECK_BYTES || (from < base && !kept)) {
      this.#carryStart = -1;
      return;
    }
    const before = from < base ? this.#carry!.subarray(from - this.#carryStart, base - this.#carryStart) : chunk.subarray(0, 0);
    if (this.#carry === null || this.#carry.length < end - from) {
      // Grown as needed (most mail is small), never beyond WHOLE_CHECK_BYTES.
      const larger = Buffer.allocUnsafe(Math.min(WHOLE_CHECK_BYTES, Math.max(end - from, 2 * (this.#carry?.length ?? 4096))));
      before.copy(larger);
      this.#carry = larger;
    } else {
      before.copy(this.#carry); // (to its start: copy() allows the overlap)
    }
    chunk.copy(this.#carry, before.length, Math.max(0, from - base));
    this.#carryStart = from;
  }

  /** CRC-32 of the stored bytes [start, end) of a message that has just ended; -1 if too large. */
  #crcOf(start: number, end: number): number {
    const chunk = this.#chunk;
    const chunkStart = this.#chunkStart;
    if (chunk === null || end - start > WHOLE_CHECK_BYTES) return -1;
    if (start >= chunkStart) return crc32(chunk.subarray(start - chunkStart, end - chunkStart));
    if (this.#carryStart < 0 || this.#carryStart > start) return -1; // (not reached: #keepCarry kept it)
    const before = crc32(this.#carry!.subarray(start - this.#carryStart, Math.min(end, chunkStart) - this.#carryStart));
    return end <= chunkStart ? before : crc32(chunk.subarray(0, end - chunkStart), before);
  }

  /** Ends the input; returns the last message, if any. */
  end(): ScannedMessage[] {
    const done: ScannedMessage[] = [];
    if (this.#lineStart < this.#position) {
      // A last line without LF: it can still start a message or be quoted.
      const [line, end] = [this.#head, this.#headLength];
      if (startsWith(line, 0, end, FROM_)) this.#startMessage(line, 0, end, this.#position, done);
      else if (this.#current && isQuotedFrom(line, 0, end)) this.#current.quoted++;
    }
    // The file's final blank line is the last message's separator.
    const blankEnd = this.#lineStart === this.#position && this.#previousLineEmpty;
    this.#finish(blankEnd ? this.#position - 1 : this.#position, blankEnd, done);
    return done;
  }

  // One complete line, buffer[start, end) plus the LF at absolute `lfOffset`.
  #endLine(buffer: Buffer, start: number, end: number, lfOffset: number, crBefore: boolean, done: ScannedMessage[]): void {
    const m = this.#current;
    if (startsWith(buffer, start, end, FROM_)) {
      this.#startMessage(buffer, start, end, lfOffset + 1, done);
    } else if (m) {
      if (!crBefore) m.bareLf++;
      if (isQuotedFrom(buffer, start, end)) m.quoted++;
      if (m.bodyOffset < 0) headerLine(m, buffer, start, end, lfOffset + 1);
    }
    this.#previousLineEmpty = lfOffset === this.#lineStart;
    this.#lineStart = lfOffset + 1;
  }

  #startMessage(buffer: Buffer, start: number, end: number, contentOffset: number, done: ScannedMessage[]): void {
    // The previous message ends here, minus the blank separator line if any.
    const separator = this.#previousLineEmpty;
    this.#finish(separator ? this.#lineStart - 1 : this.#lineStart, separator, done);
    // UTF-8, as written: the same text MboxScanner reads the sender from.
    const fromLine = buffer.toString('utf8', start, Math.min(end, start + HEAD_MAX));
    this.#current = {
      offset: this.#lineStart, contentOffset, fromLine, internalDate: parseFromLineDate(fromLine), messageId: '', inMessageId: false,
      bodyOffset: -1, bodyBytes: 0, quoted: 0, bareLf: 0,
    };
  }

  #finish(end: number, separator: boolean, done: ScannedMessage[]): void {
    const m = this.#current;
    if (!m) return;
    this.#current = null;
    // The separator line was counted as a line of this message; it is not one.
    const bareLf = m.bareLf - (separator ? 1 : 0);
    const bodyLength = m.bodyOffset < 0 ? 0 : Math.max(0, Math.min(BODY_PREFIX, end - m.bodyOffset));
    const body = this.#body.subarray(0, Math.min(bodyLength, m.bodyBytes));
    done.push({
      offset: m.offset,
      length: end - m.offset,
      contentOffset: m.contentOffset,
      size: end - m.contentOffset - m.quoted + bareLf,
      fingerprint: computeFingerprint(m.fromLine, m.messageId.replace(/\s/g, ''), body),
      internalDate: m.internalDate,
      crc: this.#crcOf(m.offset, end),
    });
  }

  /**
   * The message being read, before its end is known: where it starts and,
   * once its header and the first 512 bytes of its body have gone by, its
   * fingerprint (else null). The reader (message-reader.ts) checks a large
   * message with this before sending its first byte.
   */
  openMessage(): { offset: number; contentOffset: number; fingerprint: string | null } | null {
    const m = this.#current;
    if (!m) return null;
    const known = m.bodyOffset >= 0 && m.bodyBytes >= BODY_PREFIX;
    const fingerprint = known ? computeFingerprint(m.fromLine, m.messageId.replace(/\s/g, ''), this.#body) : null;
    return { offset: m.offset, contentOffset: m.contentOffset, fingerprint };
  }

  // Copies the part of a cut line that matters into #head. A run of ">" at
  // the line start only matters as "at least one", so it is kept as one: a
  // line of a million ">" cannot push its "From " out of the head.
  #keepHead(chunk: Buffer, start: number, end: number): void {
    const head = this.#head;
    if (this.#headLength === 0 ? chunk[start] === GT : this.#headLength === 1 && head[0] === GT) {
      while (start < end && chunk[start] === GT) start++;
      this.#headLength = 1;
      head[0] = GT;
    }
    this.#headLength += chunk.copy(head, this.#headLength, start, end);
  }

  // Collects the body's first bytes from the chunk at absolute offset `base`.
  #takeBody(chunk: Buffer, base: number): void {
    const m = this.#current;
    if (!m || m.bodyOffset < 0 || m.bodyBytes >= BODY_PREFIX) return;
    const from = m.bodyOffset + m.bodyBytes - base;
    if (from < 0 || from >= chunk.length) return;
    // Copied into the one buffer the open message uses (chunks are reused;
    // a copy per message would be 25 MB of garbage for 50,000 messages).
    m.bodyBytes += chunk.copy(this.#body, m.bodyBytes, from, Math.min(chunk.length, from + BODY_PREFIX - m.bodyBytes));
  }
}

// A header line (RFC 5322 2.2): remembers the first Message-ID, unfolding
// it (2.2.3), and notes where the body starts after the empty line.
// (mime/header.ts has findHeaderEnd and HeaderEndFinder for the same empty
// line; they are not used here because the scanner already holds each line,
// cut at the same places, to look for From lines and the Message-ID: the
// empty-line test is one comparison on a line in hand, where a second finder
// would walk the header's bytes a second time.)
function headerLine(m: Open, buffer: Buffer, start: number, end: number, next: number): void {
  const length = end - start;
  if (length === 0 || (length === 1 && buffer[start] === CR)) {
    m.bodyOffset = next;
  } else if (buffer[start] === 0x20 || buffer[start] === 0x09) {
    if (m.inMessageId) m.messageId += buffer.toString('latin1', start, Math.min(end, start + HEAD_MAX));
  } else {
    m.inMessageId = m.messageId === '' && startsWithIgnoringCase(buffer, start, end, MESSAGE_ID);
    if (m.inMessageId) m.messageId = buffer.toString('latin1', start + MESSAGE_ID.length, Math.min(end, start + HEAD_MAX));
  }
}

function startsWith(buffer: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let k = 0; k < prefix.length; k++) if (buffer[start + k] !== prefix[k]) return false; // 5 bytes: cheaper than a native compare
  return true;
}

function startsWithIgnoringCase(buffer: Buffer, start: number, end: number, lowerPrefix: Buffer): boolean {
  if (end - start < lowerPrefix.length) return false;
  for (let k = 0; k < lowerPrefix.length; k++) {
    if ((buffer[start + k] | 0x20) !== lowerPrefix[k]) return false; // | 0x20 lowercases letters; '-' and ':' already have it
  }
  return true;
}

// mboxrd (mboxrd.ts): a line matching /^>+From / is stored with one extra ">".
function isQuotedFrom(buffer: Buffer, start: number, end: number): boolean {
  if (buffer[start] !== GT) return false;
  let k = start;
  while (k < end && buffer[k] === GT) k++;
  return startsWith(buffer, k, end, FROM_);
}

/**
 * Scans the mbox from `start` (a line start) to its end, in large reads,
 * handing each message to `visit` as it is found (the next read runs while
 * a chunk is scanned). Returns where the scan ended (the file's size then).
 */
export async function scanMessages(handle: FileHandle, start: number, visit: (m: ScannedMessage) => void): Promise<number> {
  const scanner = new IndexScanner(start);
  const buffers = [Buffer.allocUnsafe(READ_CHUNK), Buffer.allocUnsafe(READ_CHUNK)];
  let position = start;
  let reading = handle.read(buffers[0], 0, READ_CHUNK, position);
  for (let turn = 0; ; turn ^= 1) {
    const { bytesRead } = await reading;
    if (bytesRead === 0) break;
    position += bytesRead;
    reading = handle.read(buffers[turn ^ 1], 0, READ_CHUNK, position);
    for (const m of scanner.push(buffers[turn].subarray(0, bytesRead))) visit(m);
  }
  for (const m of scanner.end()) visit(m);
  return position;
}

/** scanMessages into a list (what the tests look at). */
export async function scanForIndex(handle: FileHandle, start: number): Promise<{ messages: ScannedMessage[]; end: number }> {
  const messages: ScannedMessage[] = [];
  const end = await scanMessages(handle, start, (m) => messages.push(m));
  return { messages, end };
}
