// A quick look at the start of a message in a block read by
// sequential-reader.ts: where its header ends, and whether it is still the
// message the index says is there. "Yes" is sure; "not sure" (null) sends
// the message to the exact check (message-reader.ts checkMessageStart, the
// index scan's own code), which decides.
//
// Why not always the exact check: it looks at each line with a call into
// Buffer.indexOf, and such calls cost more than the search they do; with
// the headers of 50,000 messages to read, that alone is most of a second.
// Here one call finds the empty line that ends the header, and one turns
// the message's start (From line, header, the body's first 512 bytes) into
// a string (one byte per character, 'latin1'), whose lines are then walked
// with String methods, which cost no call into C++.
//
// What it compares is what the index's fingerprint covers (mbox-index-scan.ts
// computeFingerprint): the From line, the first Message-ID (unfolded, white
// space removed, each line cut at 1,024 bytes as the scan cuts it) and the
// first 512 stored bytes of the body (all of a shorter one); and, as the
// exact check does, that no other line starts with "From " before the end
// of those bytes and that a message boundary follows the message
// (message-reader.ts separatorLength).

import { hash } from 'node:crypto';
import { computeFingerprint } from './mbox-index-scan.ts';
import type { MessageLocation } from './message-reader.ts';

/** A message's place and look, its fingerprint also as the index keeps it: two 32-bit numbers. */
export interface ReadLocation extends MessageLocation {
  fingerprintHigh: number;
  fingerprintLow: number;
  /** CRC-32 of its stored bytes as the scan saw them (mbox-index-scan.ts); -1 or absent: not known. */
  crc?: number;
}

/** What the quick look found. */
export interface KnownStart {
  /** File offset where the body starts (after the header's empty line). */
  bodyStart: number;
  /** Does a header line start with ">" (mboxrd quoting to undo, mboxrd.ts)? */
  quoted: boolean;
  /**
   * The header section (from after the From line through the empty line)
   * as a string, one character per byte ('latin1'): what the header
   * parsers read (imap/header-values.ts). Null if quoted.
   */
  headerText: string | null;
}

const LF = 0x0a;
const GT = 0x3e;
const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const LINE_KEPT = 1024; // the scan keeps this much of a From line or Message-ID line
const BODY_PREFIX = 512;
const MESSAGE_ID = 'message-id:';
const EMPTY_LINE = Buffer.from('\n\n'); // (Buffer.indexOf converts a string needle on every call)
const FROM_ = [0x46, 0x72, 0x6f, 0x6d, 0x20]; // "From "
const BOUNDARY_FROM = 6; // (knownStart looks at the 6 bytes after a message: LF and "From ")

/**
 * Where `m`'s body starts, if `block` (file bytes from `blockStart`, with
 * the bytes that follow the message) surely holds `m`; null when not sure.
 * A block holding a CR anywhere (`hasCR`) is left to the exact check: a
 * line of only CR also ends a header (RFC 5322 2.1, as mime/header.ts reads
 * it), and such mail is rare in an mbox. A body shorter than 512 bytes is
 * judged only with `shortBody` (knownWhole, which checks the size too).
 */
export function knownStart(block: Buffer, blockStart: number, hasCR: boolean, m: ReadLocation, shortBody = false): KnownStart | null {
  const at = m.offset - blockStart;
  const end = at + m.length;
  const contentStart = m.contentOffset - m.offset;
  if (hasCR || !boundaryFollows(block, end)) return null;
  // Not mime/header.ts's HeaderEndFinder: it calls indexOf once per header line (the cost this file avoids, see
  // the top); one search for "\n\n" finds the same line here, where hasCR has ruled out a line of only CR.
  const emptyLine = block.indexOf(EMPTY_LINE, at + contentStart - 1); // (from the From line's LF: a header may be empty)
  const body = emptyLine + 2;
  if (emptyLine < 0 || body > end) return null;
  // The fingerprint covers the body's first 512 bytes, or all of a shorter body (mbox-index-scan.ts #finish).
  // A short body is left to callers that check the rest of the message too (knownWhole: its size above all,
  // which the fingerprint does not cover and which the exact check of such a message compares).
  let bodyEnd = body + BODY_PREFIX;
  if (bodyEnd > end) {
    if (!shortBody) return null;
    bodyEnd = end;
  }
  // The From line, the header and the body's first bytes (and 5 more: a From line starting in them). A short
  // body's text stops at the message's end: the next message's From line, right after, is not one inside it.
  const text = block.toString('latin1', at, bodyEnd === end ? end : Math.min(block.length, bodyEnd + 5));
  if (text.indexOf('\n') !== contentStart - 1 || !text.startsWith('From ')) return null;
  if (text.indexOf('\nFrom ', contentStart - 1) >= 0) return null; // another message would start there
  // The first Message-ID, as the scan keeps it: where its lines' kept parts lie in `text` (idBounds, pairs of
  // start and end), and how many characters they hold (as the scan's string: a field found while it is still
  // empty starts it afresh).
  let idCount = 0;
  let idChars = 0;
  let inId = false;
  let quoted = false;
  const headerEnd = body - at;
  for (let start = contentStart; start < headerEnd; ) {
    let lineEnd = text.indexOf('\n', start);
    if (lineEnd < 0) lineEnd = headerEnd;
    const first = text.charCodeAt(start);
    if (first === 0x3e) quoted = true;
    let from = -1; // (a line that adds to the Message-ID: from here)
    if (first === SPACE || first === TAB) {
      if (inId) from = start;
    } else {
      inId = idChars === 0 && (first | 0x20) === 0x6d && text.slice(start, start + MESSAGE_ID.length).toLowerCase() === MESSAGE_ID;
      if (inId) {
        from = start + MESSAGE_ID.length;
        idCount = 0;
      }
    }
    if (from >= 0) {
      if (idCount === MAX_ID_LINES) return null; // (folded over more lines than kept here: the exact check decides)
      const to = Math.min(lineEnd, start + LINE_KEPT);
      idBounds[2 * idCount] = from;
      idBounds[2 * idCount + 1] = to;
      idCount++;
      idChars += to - from;
    }
    start = lineEnd + 1;
  }
  const fromLineEnd = Math.min(contentStart - 1, LINE_KEPT);
  if (!fingerprintMatches(text, fromLineEnd, idCount, block, at, body, bodyEnd, m)) return null;
  // (Its own string, not a slice of `text`: every search and character read in a slice costs more, and the
  // header parsers do many.)
  return { bodyStart: blockStart + body, quoted, headerText: quoted ? null : block.toString('latin1', at + contentStart, body) };
}

/**
 * Is `bytes` (a message read whole from its From line, and the
 * `separator` bytes after it that message-reader.ts separatorLength
 * found) surely the message `m` the index describes, exactly as the index
 * scan would find it again: one message, its start checked as knownStart
 * checks it, no other From line in it, the same length and the same size?
 * True only when sure; false sends it to the scan itself (the exact check
 * of message-reader.ts), which decides. Not sure of: a CR anywhere, the
 * end of the file right after it. What is left is almost all mail (short
 * bodies, whose fingerprint covers all of the body, and mboxrd-quoted From
 * lines, counted as the scan counts them, included), checked with a few
 * String searches instead of a call into C++ per line.
 */
export function knownWhole(bytes: Buffer, m: ReadLocation, separator: number): boolean {
  const scanned = m.length + separator; // what the exact check would give the scan
  const contentStart = m.contentOffset - m.offset;
  if (scanned < 2 || contentStart < 1 || bytes.length < m.length + BOUNDARY_FROM) return false;
  const text = bytes.toString('latin1', 0, scanned);
  if (text.includes('\r')) return false;
  // A quoted From line (/^>+From /) loses a ">" when read, which the size counts (as the scan does). Other
  // lines starting with ">" are text.
  let quotedFroms = 0;
  for (let at = text.indexOf('\n>', contentStart - 1); at >= 0; at = text.indexOf('\n>', at + 1)) {
    let from = at + 1;
    while (text.charCodeAt(from) === GT) from++;
    if (text.startsWith('From ', from)) quotedFroms++;
  }
  if (text.indexOf('\nFrom ', contentStart - 1) >= 0) return false; // (another message would start there)
  if (knownStart(bytes, m.offset, false, m, true) === null) return false;
  // Where the scan ends it: before the blank line that separates it from the next, if there is one.
  const blankEnd = text.charCodeAt(scanned - 1) === LF && text.charCodeAt(scanned - 2) === LF;
  if (scanned - (blankEnd ? 1 : 0) !== m.length) return false;
  // Its size as sent: every LF (none has a CR here) gains one; the blank line's is not its own.
  let lineEnds = 0;
  for (let at = text.indexOf('\n', contentStart); at >= 0; at = text.indexOf('\n', at + 1)) lineEnds++;
  if (blankEnd) lineEnds--;
  return m.length - contentStart - quotedFroms + lineEnds === m.size;
}

// What may follow a message (message-reader.ts separatorLength): "\n" and
// the next From line, or the next From line at once. (The end of the file,
// which may also follow, is left to the exact check: only it knows.)
function boundaryFollows(block: Buffer, end: number): boolean {
  if (end + 6 > block.length) return false;
  const from = block[end] === LF ? end + 1 : end;
  for (let i = 0; i < FROM_.length; i++) if (block[from + i] !== FROM_[i]) return false;
  return true;
}

// mbox-index-scan.ts computeFingerprint, its input written byte by byte
// into one buffer kept for the purpose: sha1 of the From line, NUL, the
// Message-ID (unfolded, white space removed), NUL and the body's first 512
// bytes or all of a shorter body (here block[body, bodyEnd)), in hex: its
// first 16 digits are the fingerprint. The scan makes the From line a
// string from UTF-8 and the Message-ID from 'latin1' and writes both as
// UTF-8, so for ASCII they are their own bytes; anything else takes the
// scan's own way, as strings. (A hex string costs half what a Buffer of the
// digest does.)
const MAX_ID_LINES = 8;
const idBounds = new Int32Array(2 * MAX_ID_LINES);
const scratch = Buffer.allocUnsafe(2 * LINE_KEPT * (MAX_ID_LINES + 1) + BODY_PREFIX);
function fingerprintMatches(text: string, fromLineEnd: number, idCount: number, block: Buffer, at: number, body: number, bodyEnd: number, m: ReadLocation): boolean {
  let length = 0;
  let ascii = true;
  for (let i = 0; i < fromLineEnd; i++) {
    const c = text.charCodeAt(i);
    ascii &&= c < 0x80;
    scratch[length++] = c;
  }
  scratch[length++] = 0;
  for (let n = 0; n < idCount; n++) {
    for (let i = idBounds[2 * n]; i < idBounds[2 * n + 1]; i++) {
      const c = text.charCodeAt(i);
      ascii &&= c < 0x80;
      if (c !== SPACE && (c < TAB || c > CR)) scratch[length++] = c; // (String \s for ASCII: tab, LF, VT, FF, CR, space)
    }
  }
  let digest: string;
  if (ascii) {
    scratch[length++] = 0;
    length += block.copy(scratch, length, body, bodyEnd);
    digest = hash('sha1', scratch.subarray(0, length), 'hex');
  } else {
    const fromLine = block.toString('utf8', at, at + fromLineEnd);
    let messageId = '';
    for (let n = 0; n < idCount; n++) messageId += text.slice(idBounds[2 * n], idBounds[2 * n + 1]);
    digest = computeFingerprint(fromLine, messageId.replace(/\s/g, ''), block.subarray(body, bodyEnd));
  }
  return parseInt(digest.slice(0, 8), 16) === m.fingerprintHigh && parseInt(digest.slice(8, 16), 16) === m.fingerprintLow;
}
