// The side index's file format (described in mbox-index.ts): one header
// line, then one line per message. Text, so an admin can read it with less,
// and strict, so a damaged file is noticed and rebuilt rather than believed.
//
// Version 3 (written):
//   jjordan-index 3 uidvalidity=V uidnext=N size=S mtime=M tail=T count=C modseq=H recent=R
//   uid offset length contentOffset size fingerprint date modseq crc[ flags...]
// crc: the CRC-32 of the message's stored bytes as the scan saw them, 8 hex
// digits, or "-" where it is not known (message-reader.ts checks a message
// read whole by it).
// Version 2 (read; its messages' CRCs are not known):
//   jjordan-index 2 (the same header)
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

// (The version is group 1 of both, the fields the groups after it.)
const HEADER_V1 = /^jjordan-index (1) uidvalidity=(\d{1,15}) uidnext=(\d{1,15}) size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) count=(\d{1,9})$/;
const HEADER_V2_V3 = /^jjordan-index ([23]) uidvalidity=(\d{1,15}) uidnext=(\d{1,15}) size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) count=(\d{1,9}) modseq=(\d{1,15}) recent=(\d{1,15})$/;
const LF = 0x0a;
const SPACE = 0x20;
const DASH = 0x2d;
const MAX_NUMBER_DIGITS = 15; // below 2^53: exact as a JS number

/**
 * The index as the bytes of a version 3 file (the format in the header).
 * Written digit by digit into one buffer: turning 400,000 numbers into
 * strings and joining 50,000 lines costs ten times more.
 */
export function formatIndex(index: MailboxIndex): Buffer {
  const table = index.messages;
  const header =
    `jjordan-index 3 uidvalidity=${index.uidValidity} uidnext=${index.uidNext} size=${index.mboxSize}` +
    ` mtime=${index.mboxMtimeMs ?? 0} tail=${index.tailHash} count=${table.length}` +
    ` modseq=${index.highestModseq} recent=${index.recentUid}\n`;
  const out = new ByteWriter(header.length + table.length * 96);
  out.text(header);
  const hex = new Uint32Array(2);
  for (let k = 0; k < table.length; k++) {
    const flags = table.flags.text(table.flagIdAt(k));
    out.reserve(8 * 16 + 16 + 10 + 9 + flags.length);
    out.number(table.uidAt(k)).space().number(table.offsetAt(k)).space().number(table.lengthAt(k)).space();
    out.number(table.contentOffsetAt(k)).space().number(table.sizeAt(k)).space();
    table.fingerprintHalves(k, hex);
    out.hex8(hex[0]).hex8(hex[1]).space().number(Math.max(0, table.internalDateAt(k))).space().number(table.modseqAt(k)).space();
    const crc = table.crcAt(k);
    if (crc >= 0) out.hex8(crc);
    else out.byte(DASH);
    if (flags !== '') out.space().text(flags);
    out.byte(LF);
  }
  return out.done();
}

// Appends ASCII to a growing buffer.
class ByteWriter {
  #buffer: Buffer;
  #at = 0;
  constructor(capacity: number) {
    this.#buffer = Buffer.allocUnsafe(capacity);
  }
  reserve(bytes: number): void {
    if (this.#at + bytes <= this.#buffer.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#at + bytes));
    this.#buffer.copy(bigger, 0, 0, this.#at);
    this.#buffer = bigger;
  }
  text(value: string): this {
    this.reserve(value.length);
    this.#at += this.#buffer.write(value, this.#at, 'latin1');
    return this;
  }
  byte(value: number): this {
    this.#buffer[this.#at++] = value;
    return this;
  }
  space(): this {
    return this.byte(SPACE);
  }
  // A whole number >= 0 below 2^53, in decimal.
  number(value: number): this {
    if (value >= 2 ** 31) return this.text(String(value)); // rare (a file over 2 GB): the slow way
    let digits = 1;
    for (let rest = value; rest >= 10; rest = (rest / 10) | 0) digits++;
    for (let i = digits - 1, rest = value | 0; i >= 0; i--, rest = (rest / 10) | 0) this.#buffer[this.#at + i] = 48 + (rest % 10);
    this.#at += digits;
    return this;
  }
  hex8(value: number): this {
    for (let i = 7; i >= 0; i--, value >>>= 4) this.#buffer[this.#at + i] = HEX_DIGITS[value & 15];
    this.#at += 8;
    return this;
  }
  done(): Buffer {
    return this.#buffer.subarray(0, this.#at);
  }
}

const HEX_DIGITS = Buffer.from('0123456789abcdef');

/** A parsed index file and the format version it was in. */
export interface ParsedIndex {
  index: MailboxIndex;
  version: 1 | 2 | 3;
}

/**
 * Parses and checks an index file; null if it is not a complete, consistent
 * index. A version 1 file has no dates (-1: unknown) and gives every
 * message mod-sequence 1; a version 2 file has no CRCs (-1: unknown).
 */
export function parseIndex(bytes: Buffer | string): ParsedIndex | null {
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  // A plain byte view: element reads on it are what the loop below is made of.
  const data = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  const headerEnd = data.indexOf(LF);
  if (headerEnd === -1) return null;
  const headerText = buffer.toString('latin1', 0, headerEnd);
  const header = HEADER_V2_V3.exec(headerText) ?? HEADER_V1.exec(headerText);
  if (!header) return null;
  const version = Number(header[1]) as 1 | 2 | 3;
  const [uidValidity, uidNext, mboxSize] = [header[2], header[3], header[4]].map(Number);
  const mboxMtimeMs = Number(header[5]);
  const count = Number(header[7]);
  const highestModseq = version === 1 ? 1 : Number(header[8]);
  const recentUid = version === 1 ? 1 : Number(header[9]);
  if (uidValidity === 0 || !Number.isFinite(mboxMtimeMs) || recentUid > uidNext || recentUid === 0) return null; // RFC 3501 9: nz-number
  const table = new MessageTable(undefined, count);
  const numbers = version === 1 ? 5 : 7; // the decimal fields; the fingerprint comes after the 5th
  const field = new Float64Array(7);
  const fingerprint = new Uint32Array(2); // its high and low halves
  const n = data.length;
  let previousUid = 0;
  let previousEnd = 0;
  let at = headerEnd + 1;
  while (at < n) {
    // "uid offset length contentOffset size fingerprint[ date modseq][ crc][ flags]\n"
    let c = 0;
    let crc = -1;
    for (let f = 0; f < numbers; f++) {
      if (f === 5) {
        if ((at = readFingerprint(data, at, fingerprint)) < 0 || data[at++] !== SPACE) return null;
      }
      const start = at;
      let value = 0;
      while (at < n && (c = data[at]) >= 48 && c <= 57) {
        value = value * 10 + (c - 48);
        at++;
      }
      if (at === start || at - start > MAX_NUMBER_DIGITS || at === n) return null;
      field[f] = value;
      at++; // the space after it (or, after the last one, a space or the LF)
      if (f < numbers - 1 || version === 3 ? c !== SPACE : c !== SPACE && c !== LF) return null;
    }
    if (version === 3) {
      // The CRC: 8 hex digits, or "-".
      if (data[at] === DASH) at++;
      else if ((crc = readHex8(data, at)) < 0) return null;
      else at += 8;
      c = data[at++];
      if (c !== SPACE && c !== LF) return null;
    }
    if (numbers === 5) {
      // Version 1: the fingerprint is last, maybe followed by flags.
      if ((at = readFingerprint(data, at, fingerprint)) < 0) return null;
      c = data[at++];
      if (c !== SPACE && c !== LF) return null;
    }
    // at is past the space before the flags, or past the LF.
    let flagId = 0;
    if (c === SPACE) {
      let end = at;
      while (end < n && data[end] !== LF) end++;
      if (end === n) return null; // no LF: the file was cut
      flagId = table.flags.idOfText(buffer.toString('latin1', at, end));
      at = end + 1;
    }
    const uid = field[0];
    const offset = field[1];
    const length = field[2];
    const contentOffset = field[3];
    const date = numbers === 7 ? field[5] : -1;
    const modseq = numbers === 7 ? field[6] : 1;
    if (uid <= previousUid || uid >= uidNext || offset < previousEnd || modseq > highestModseq || modseq < 1) return null;
    if (contentOffset < offset || contentOffset > offset + length || offset + length > mboxSize) return null;
    table.pushRaw(uid, offset, length, contentOffset - offset, field[4], fingerprint[0], fingerprint[1], date, modseq, flagId, crc);
    previousUid = uid;
    previousEnd = offset + length;
  }
  if (table.length !== count) return null;
  return { index: { uidValidity, uidNext, mboxSize, tailHash: header[6], mboxMtimeMs, highestModseq, recentUid, messages: table }, version };
}

// 16 lowercase hex digits at data[at...] into out[0] (high half) and
// out[1]; returns the position after them, or -1.
function readFingerprint(data: Uint8Array, at: number, out: Uint32Array): number {
  const high = readHex8(data, at);
  const low = readHex8(data, at + 8);
  if (high < 0 || low < 0) return -1;
  out[0] = high;
  out[1] = low;
  return at + 16;
}

// 8 lowercase hex digits at data[at...] as a number; -1 if they are not.
function readHex8(data: Uint8Array, at: number): number {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const digit = hexValue(data[at + i]);
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

function hexValue(c: number): number {
  // (undefined past the end of the data: not a digit)
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}
