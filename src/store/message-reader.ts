// Reading one message back out of an mbox, by the byte range the side
// index gives, and checking first that the range still holds that message.
//
// The index can be stale: another program (mutt, procmail) may have
// rewritten the file since it was read, even keeping its size, so that the
// range now holds the end of one message and the start of the next. Before
// the first byte goes out (POP3 can still answer -ERR then, IMAP NO), the
// range is checked:
//  - a message of up to 128 KiB (almost all mail) is read in one piece and
//    checked exactly as the index scan would find it (mbox-index-scan.ts):
//    it must start with a From line, end where the index says, and have
//    the same size and fingerprint (most mail is seen to be so with a few
//    String searches, message-start.ts knownWhole; the rest is scanned).
//    Quicker still where the index scan kept a CRC-32 of the message's
//    bytes (mbox-index-scan.ts; the index file keeps it): the same CRC over
//    the same length means the same bytes (but for a chance of 1 in 4
//    billion per changed message), so nothing else needs looking at;
//  - a larger one: its first 128 KiB must start with its From line, hold no
//    other From line, and show the same fingerprint (its Message-ID and
//    first body bytes); then it streams.
// In both cases the bytes just after the range must be what follows a
// message: the end of the file, or a blank line and the next From line.
// Anything else throws MessageChangedError, and nothing is sent. The one
// read path for POP3 (pop3/maildrop.ts) and IMAP (mailbox.ts): readMessage
// streams; readSmallMessage hands a small message over in one piece, and
// readSmallText as text.
//
// A large message is read in chunks taken from a small pool
// (buffer-pool.ts): a consumer that copies each chunk and recycles it (the
// IMAP literal writer) gets the same buffer back for the next read, so that
// 25 MiB go through one buffer; one that keeps its chunks simply gets a new
// buffer each time.

import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { READ_CHUNK_BYTES, readAtSync, readInto, readIntoSync } from './file-io.ts';
import { BufferPool, recycle } from '../buffer-pool.ts';
import { IndexScanner, WHOLE_CHECK_BYTES } from './mbox-index-scan.ts';
import { MboxrdUnquoter, unquoteMboxrdText } from './mboxrd.ts';
import { knownWhole } from './message-start.ts';
import type { ReadLocation } from './message-start.ts';

/** Where a message is, and what it must look like (a MessageRecord is one). */
export interface MessageLocation {
  offset: number;
  length: number;
  contentOffset: number;
  size: number;
  fingerprint: string;
}

/** The mbox no longer holds the message where the index says (another program changed it). */
export class MessageChangedError extends Error {
  override name = 'MessageChangedError';
}

export { WHOLE_CHECK_BYTES }; // (mbox-index-scan.ts: read in one piece and checked whole; larger messages by their start)
const LF = 0x0a;
const FROM_ = Buffer.from('From ');
/** What is looked at after a message: "\nFrom ". */
export const BOUNDARY_BYTES = 6;

/**
 * The message's content (after its From line), mboxrd quoting undone, LF
 * line ends as stored. Throws MessageChangedError before yielding anything
 * if the file no longer matches `m` (see the header). The chunks after the
 * first come from `pool` (see the header).
 */
export async function* readMessage(file: FileHandle, m: MessageLocation, pool = new BufferPool(READ_CHUNK_BYTES, 2)): AsyncGenerator<Buffer> {
  const whole = m.length <= WHOLE_CHECK_BYTES;
  const firstLength = whole ? m.length : WHOLE_CHECK_BYTES;
  const first = readAtSync(file.fd, m.offset, firstLength + (whole ? BOUNDARY_BYTES : 0));
  if (first.length < firstLength) throw changed(m, 'the file is shorter');
  if (whole) checkWholeMessage(first, m);
  else checkMessageStart(first, readAtSync(file.fd, m.offset + m.length, BOUNDARY_BYTES), m);
  // Checked: now the content, unquoted.
  const unquoter = new MboxrdUnquoter();
  yield unquoter.push(first.subarray(m.contentOffset - m.offset, firstLength));
  const end = m.offset + m.length;
  for (let position = m.offset + firstLength; position < end; ) {
    const buffer = pool.take();
    const length = Math.min(buffer.length, end - position);
    if ((await readInto(file, buffer, length, position)) < length) throw changed(m, 'the file is shorter');
    position += length;
    const content = unquoter.push(buffer.subarray(0, length));
    if (content.buffer !== buffer.buffer) recycle(buffer); // the unquoter made a copy: the buffer is free again
    yield content;
  }
  const rest = unquoter.end(); // a ">From" cut short by the end of the message
  if (rest.length > 0) yield rest;
}

/**
 * A message of up to WHOLE_CHECK_BYTES, as readMessage yields it (content
 * unquoted, LF line ends) but in one buffer and without a wait: one
 * synchronous read from the page cache, checked whole (checkWholeMessage).
 * null for a larger message, which readMessage streams. What FETCH of many
 * small bodies uses (imap/fetch-batch.ts): a pause per message would cost
 * more than reading it.
 */
export function readSmallMessage(file: FileHandle, m: MessageLocation): Buffer | null {
  if (m.length > WHOLE_CHECK_BYTES) return null;
  const bytes = readAtSync(file.fd, m.offset, m.length + BOUNDARY_BYTES);
  checkWholeMessage(bytes, m);
  const body = bytes.subarray(m.contentOffset - m.offset, m.length);
  if (body.indexOf(FROM_) < 0) return body; // no "From " line at all, so none quoted (most mail)
  const unquoter = new MboxrdUnquoter();
  const content = unquoter.push(body);
  const rest = unquoter.end(); // a ">From" cut short by the end of the message
  return rest.length > 0 ? Buffer.concat([content, rest]) : content;
}

/** The buffer readSmallText reads into, kept for the next read; it grows up to one small message. */
let textBuffer = Buffer.allocUnsafe(16 * 1024);

/**
 * readSmallMessage's content as a string of one character per byte
 * ('latin1': any bytes go in and come back out unchanged), for a caller that
 * works on text: POP3's RETR (wire/dot-writer.ts pushLastText). The string
 * is a copy, so the bytes are read into one buffer used again for every
 * message: no new buffer, and no garbage, per message.
 */
export function readSmallText(file: FileHandle, m: MessageLocation): string | null {
  if (m.length > WHOLE_CHECK_BYTES) return null;
  const want = m.length + BOUNDARY_BYTES;
  if (textBuffer.length < want) textBuffer = Buffer.allocUnsafe(Math.min(Math.max(want, 2 * textBuffer.length), WHOLE_CHECK_BYTES + BOUNDARY_BYTES));
  const bytes = textBuffer.subarray(0, readIntoSync(file.fd, textBuffer, want, m.offset));
  checkWholeMessage(bytes, m);
  return unquoteMboxrdText(bytes.toString('latin1', m.contentOffset - m.offset, m.length)); // (most mail: one search, no ">From ")
}

/**
 * The check of a message read in one piece: `bytes` holds it from its From
 * line on, and after it the BOUNDARY_BYTES that follow it in the file (fewer
 * only where the file ends). Scanned exactly as the index scan did: one
 * message, where the index says, of the same size and fingerprint; else
 * MessageChangedError. (Also used by sequential-reader.ts.)
 */
export function checkWholeMessage(bytes: Buffer, m: MessageLocation): void {
  if (bytes.length < m.length) throw changed(m, 'the file is shorter');
  const separator = separatorLength(bytes, m.length);
  if (separator < 0) throw changed(m, 'something other than a message boundary follows it');
  if (matchesScan(bytes, m)) return; // (the very bytes the scan saw)
  if (isReadLocation(m) && knownWhole(bytes, m, separator)) return; // (sure without the scan: most mail)
  const scanner = new IndexScanner(m.offset);
  const found = scanner.push(bytes.subarray(0, m.length + separator)).concat(scanner.end());
  const same = found.length === 1 && found[0].offset === m.offset && found[0].length === m.length && found[0].contentOffset === m.contentOffset;
  if (!same || found[0].size !== m.size || found[0].fingerprint !== m.fingerprint) throw changed(m, 'other bytes at its place');
}

/**
 * Are `bytes` (a message from its From line on) the very bytes the index
 * scan saw there? Sure by the CRC-32 it kept (mbox-index-scan.ts): the same
 * CRC over the same length means the same bytes, but for a chance of 1 in 4
 * billion per changed message. False where it kept none, or it differs:
 * the other checks decide then. (The caller checks what follows the message.)
 */
export function matchesScan(bytes: Buffer, m: MessageLocation): boolean {
  return isReadLocation(m) && m.crc !== undefined && m.crc >= 0 && bytes.length >= m.length && crc32(bytes.subarray(0, m.length)) === m.crc;
}

function isReadLocation(m: MessageLocation): m is ReadLocation {
  return 'fingerprintHigh' in m;
}

/**
 * The check of a message by its start: `first` holds its first bytes (From
 * line, header, and at least the first 512 bytes of its body for the
 * fingerprint to be compared; a shorter piece is checked without it), `after`
 * the BOUNDARY_BYTES that follow it in the file. The start must be its From
 * line and no other, with the same fingerprint, and a message boundary must
 * follow; else MessageChangedError. (Also used by sequential-reader.ts.)
 */
export function checkMessageStart(first: Buffer, after: Buffer, m: MessageLocation): void {
  if (separatorLength(after) < 0) throw changed(m, 'something other than a message boundary follows it');
  const scanner = new IndexScanner(m.offset);
  const completed = scanner.push(first);
  const open = scanner.openMessage();
  const same = completed.length === 0 && open !== null && open.offset === m.offset && open.contentOffset === m.contentOffset;
  if (!same || (open.fingerprint !== null && open.fingerprint !== m.fingerprint)) throw changed(m, 'other bytes at its place');
}

/**
 * What may follow a message (mbox-index-scan.ts): the end of the file; the
 * blank separator line and then the end of the file or the next From line;
 * or, after a message whose last line is not empty, the next From line
 * right away. Returns how many of those bytes the scanner needs to see to
 * end the message where the index did (the separator's LF), or -1.
 * `bytes` from `at` on are what follows the message in the file: up to
 * BOUNDARY_BYTES, fewer only where the file ends.
 */
export function separatorLength(bytes: Buffer, at = 0): number {
  if (at >= bytes.length) return 0;
  if (bytes[at] === LF) return at + 1 === bytes.length || isFromAt(bytes, at + 1) ? 1 : -1;
  return isFromAt(bytes, at) ? 0 : -1;
}

/** "From " at `at` (looked at byte by byte: a subarray for each look would cost more than the look). */
function isFromAt(bytes: Buffer, at: number): boolean {
  if (bytes.length - at < FROM_.length) return false;
  for (let i = 0; i < FROM_.length; i++) if (bytes[at + i] !== FROM_[i]) return false;
  return true;
}

function changed(m: MessageLocation, why: string): MessageChangedError {
  return new MessageChangedError(`the mailbox changed: message at byte ${m.offset} is not there any more (${why})`);
}
