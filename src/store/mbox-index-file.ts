// The side index's file format (described in mbox-index.ts): one header
// line, then one line per message. Text, so an admin can read it with less,
// and strict, so a damaged file is noticed and rebuilt rather than believed.
//
// Version 2 (written):
//   jjordan-index 2 uidvalidity=V uidnext=N size=S mtime=M tail=T count=C modseq=H recent=R
//   uid offset length contentOffset size fingerprint date modseq[ flags...]
// Version 1 (read, then upgraded by a rescan; mbox-index.ts):
//   jjordan-index 1 uidvalidity=V uidnext=N size=S mtime=M tail=T count=C
//   uid offset length contentOffset size fingerprint[ flags...]
//
// Parsing is done by hand on the file's bytes, straight into the columns of
// a MessageTable: it runs for every message of a mailbox each time one is
// opened, and splitting 50,000 lines into strings and fields would take
// several times longer than the whole load.

import type { MailboxIndex } from './mbox-index.ts';
import { MessageTable } from './message-table.ts';

const HEADER_V1 = /^jjordan-index 1 uidvalidity=(\d{1,15}) uidnext=(\d{1,15}) size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) count=(\d{1,9})$/;
const HEADER_V2 = /^jjordan-index 2 uidvalidity=(\d{1,15}) uidnext=(\d{1,15}) size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) count=(\d{1,9}) modseq=(\d{1,15}) recent=(\d{1,15})$/;
const LF = 0x0a;
const SPACE = 0x20;
const MAX_NUMBER_DIGITS = 15; // below 2^53: exact as a JS number

/** The index as text, version 2 (the format in the header). */
export function formatIndex(index: MailboxIndex): string {
  const table = index.messages;
  const parts: string[] = [
    `jjordan-index 2 uidvalidity=${index.uidValidity} uidnext=${index.uidNext} size=${index.mboxSize}` +
      ` mtime=${index.mboxMtimeMs ?? 0} tail=${index.tailHash} count=${table.length}` +
      ` modseq=${index.highestModseq} recent=${index.recentUid}\n`,
  ];
  for (let k = 0; k < table.length; k++) {
    const flags = table.flags.text(table.flagIdAt(k));
    parts.push(
      `${table.uidAt(k)} ${table.offsetAt(k)} ${table.lengthAt(k)} ${table.contentOffsetAt(k)} ${table.sizeAt(k)} ` +
        `${table.fingerprintAt(k)} ${table.internalDateAt(k)} ${table.modseqAt(k)}${flags === '' ? '' : ' ' + flags}\n`,
    );
  }
  return parts.join('');
}

/** A parsed index file and the format version it was in. */
export interface ParsedIndex {
  index: MailboxIndex;
  version: 1 | 2;
}

/**
 * Parses and checks an index file; null if it is not a complete, consistent
 * index. A version 1 file has no dates (-1: unknown) and gives every
 * message mod-sequence 1.
 */
export function parseIndex(bytes: Buffer | string): ParsedIndex | null {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const headerEnd = data.indexOf(LF);
  if (headerEnd === -1) return null;
  const headerText = data.toString('latin1', 0, headerEnd);
  const v2 = HEADER_V2.exec(headerText);
  const header = v2 ?? HEADER_V1.exec(headerText);
  if (!header) return null;
  const version = v2 ? 2 : 1;
  const [uidValidity, uidNext, mboxSize] = [header[1], header[2], header[3]].map(Number);
  const mboxMtimeMs = Number(header[4]);
  const count = Number(header[6]);
  const highestModseq = v2 ? Number(v2[7]) : 1;
  const recentUid = v2 ? Number(v2[8]) : 1;
  if (uidValidity === 0 || !Number.isFinite(mboxMtimeMs) || recentUid > uidNext || recentUid === 0) return null; // RFC 3501 9: nz-number
  const table = new MessageTable(undefined, count);
  const fields = new Float64Array(8);
  const numberFields = version === 2 ? 2 : 0; // date and modseq follow the fingerprint
  let previousUid = 0;
  let previousEnd = 0;
  for (let at = headerEnd + 1; at < data.length; ) {
    const end = data.indexOf(LF, at);
    if (end === -1) return null; // no LF: the file was cut
    // uid offset length contentOffset size
    at = readNumbers(data, at, end, fields, 0, 5);
    if (at < 0 || end - at < 16) return null;
    let high = 0;
    let low = 0;
    for (let i = 0; i < 16; i++) {
      const digit = hexValue(data[at + i]);
      if (digit < 0) return null;
      if (i < 8) high = high * 16 + digit;
      else low = low * 16 + digit;
    }
    at += 16;
    if (numberFields > 0) {
      if (at === end || data[at] !== SPACE) return null;
      at = readNumbers(data, at + 1, end, fields, 5, numberFields);
      if (at < 0) return null;
      at--; // readNumbers stepped over the space after the last number, or past the end
      if (at > end) at = end;
    }
    if (at < end && data[at] !== SPACE) return null;
    const [uid, offset, length, contentOffset, size] = fields;
    const date = numberFields > 0 ? fields[5] : -1;
    const modseq = numberFields > 0 ? fields[6] : 1;
    if (uid <= previousUid || uid >= uidNext || offset < previousEnd || modseq > highestModseq || modseq < 1) return null;
    if (contentOffset < offset || contentOffset > offset + length || offset + length > mboxSize) return null;
    const flagId = at < end ? table.flags.idOfText(data.toString('latin1', at + 1, end)) : 0;
    table.pushRaw(uid, offset, length, contentOffset - offset, size, high, low, date, modseq, flagId);
    previousUid = uid;
    previousEnd = offset + length;
    at = end + 1;
  }
  if (table.length !== count) return null;
  return { index: { uidValidity, uidNext, mboxSize, tailHash: header[5], mboxMtimeMs, highestModseq, recentUid, messages: table }, version };
}

// Reads `n` space-separated decimal numbers from data[at, end) into
// fields[first...]. Each but the last must be followed by a space; the last
// by a space or the end. Returns the position after that space (or end + 1),
// or -1 if the text is not that.
function readNumbers(data: Buffer, at: number, end: number, fields: Float64Array, first: number, n: number): number {
  for (let field = first; field < first + n; field++) {
    const start = at;
    let value = 0;
    for (; at < end && data[at] !== SPACE; at++) {
      const digit = data[at] - 48;
      if (digit < 0 || digit > 9) return -1;
      value = value * 10 + digit;
    }
    if (at === start || at - start > MAX_NUMBER_DIGITS) return -1;
    fields[field] = value;
    if (at === end && field < first + n - 1) return -1;
    at++; // the space (or one past the end)
  }
  return at;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}
