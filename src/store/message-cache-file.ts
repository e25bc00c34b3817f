// The message cache's file format (message-cache.ts): ".<name>.cache" next
// to the mbox, a header line and then records, one value each, only ever
// appended (and rewritten whole by a compaction).
//
//   "jjordan-cache 1\n"                      the file header (16 bytes)
//   record:  crc        u32  CRC-32 of the rest of the record
//            magic      u32  0x4a4a4331 ("JJC1")
//            length     u32  payload bytes
//            uidvalidity, uid, fingerprint high, fingerprint low   u32 each
//            size       u32 low, u32 high   (the message's RFC822.SIZE)
//            kind       u8, then 3 zero bytes
//            payload    the value, opaque bytes
// All numbers little-endian.
//
// A record says which message its value belongs to (UIDVALIDITY and UID,
// RFC 3501 2.3.1.1) and what that message looked like (its fingerprint and
// size, as the index has them); a reader compares them with the message
// before it uses the value, so a value never goes to another message, nor
// to one another program rewrote under the same UID. The CRC catches a
// record torn by a crash or damaged on disk: such a record is not used. The
// file is a cache: it is written without fsync, and a missing, foreign or
// damaged one is rebuilt as the values are asked for again.
//
// Also here: where the file is (cachePathFor) and its removal when the
// index is built again (removeMessageCache).

import { unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { readInto, readIntoSync, writeAllSync } from './file-io.ts';

/** `<dir>/.<name>.cache`, next to the mbox and its index. */
export function cachePathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.cache`);
}

/**
 * Removes the cache of `mboxPath`: its index was built again from the mbox
 * (another program rewrote it, or the index was lost). The values are keyed
 * by UID, fingerprint and size, which a rewrite can keep while changing a
 * header field (mutt editing a message in place); a rescan is rare, and
 * the values come back as clients ask for them. Call it holding the lock.
 */
export function removeMessageCache(mboxPath: string): void {
  try {
    unlinkSync(cachePathFor(mboxPath));
  } catch {
    // none, or not ours to remove: its records check themselves anyway
  }
}

export const FILE_HEADER = Buffer.from('jjordan-cache 1\n', 'latin1');
export const RECORD_HEADER = 40;
const MAGIC = 0x4a4a4331;
// Where each field is in a record.
const [CRC, MAGIC_AT, LENGTH, UIDVALIDITY, UID, FINGERPRINT_HIGH, FINGERPRINT_LOW, SIZE_LOW, SIZE_HIGH, KIND] = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36];

/** What identifies a value: whose it is and what kind. */
export interface RecordKey {
  uidValidity: number;
  uid: number;
  fingerprintHigh: number;
  fingerprintLow: number;
  size: number;
  kind: number;
}

/** Bytes a record of this value takes. */
export function recordLength(value: string): number {
  return RECORD_HEADER + value.length;
}

/** Writes a record at `at` of `out` (room checked by the caller); `value` is a byte string (one character per byte). */
export function writeRecord(out: Buffer, at: number, key: RecordKey, value: string): number {
  out.writeUInt32LE(MAGIC, at + MAGIC_AT);
  out.writeUInt32LE(value.length, at + LENGTH);
  out.writeUInt32LE(key.uidValidity >>> 0, at + UIDVALIDITY);
  out.writeUInt32LE(key.uid >>> 0, at + UID);
  out.writeUInt32LE(key.fingerprintHigh >>> 0, at + FINGERPRINT_HIGH);
  out.writeUInt32LE(key.fingerprintLow >>> 0, at + FINGERPRINT_LOW);
  out.writeUInt32LE(key.size % 2 ** 32, at + SIZE_LOW);
  out.writeUInt32LE(Math.floor(key.size / 2 ** 32), at + SIZE_HIGH);
  out.writeUInt32LE(key.kind & 0xff, at + KIND);
  const end = at + RECORD_HEADER + out.write(value, at + RECORD_HEADER, 'latin1');
  out.writeUInt32LE(crc32(out.subarray(at + MAGIC_AT, end)), at + CRC);
  return end;
}

/**
 * The value of the record at `at` of `bytes` if it is whole, undamaged and
 * the one `key` names; else null. (`checkCrc` false: its CRC was checked
 * before, message-cache-directory.ts.)
 */
export function readRecord(bytes: Buffer, at: number, key: RecordKey, checkCrc = true): string | null {
  if (at + RECORD_HEADER > bytes.length || bytes.readUInt32LE(at + MAGIC_AT) !== MAGIC) return null;
  const end = at + RECORD_HEADER + bytes.readUInt32LE(at + LENGTH);
  if (end > bytes.length) return null;
  if (
    bytes.readUInt32LE(at + UIDVALIDITY) !== key.uidValidity >>> 0 ||
    bytes.readUInt32LE(at + UID) !== key.uid >>> 0 ||
    bytes.readUInt32LE(at + FINGERPRINT_HIGH) !== key.fingerprintHigh >>> 0 ||
    bytes.readUInt32LE(at + FINGERPRINT_LOW) !== key.fingerprintLow >>> 0 ||
    bytes.readUInt32LE(at + SIZE_LOW) + bytes.readUInt32LE(at + SIZE_HIGH) * 2 ** 32 !== key.size ||
    bytes[at + KIND] !== key.kind
  ) {
    return null;
  }
  if (checkCrc && crc32(bytes.subarray(at + MAGIC_AT, end)) !== bytes.readUInt32LE(at + CRC)) return null;
  return bytes.toString('latin1', at + RECORD_HEADER, end);
}

/** A record's header as a load sees it (its payload is checked when it is read). */
export interface RecordHeader extends RecordKey {
  /** Bytes of the whole record. */
  length: number;
}

/**
 * The header of the record at `at`: 'more' if `bytes` ends before its end
 * (read on), 'bad' if no record starts there (a torn or damaged file: the
 * rest is dropped).
 */
export function recordHeaderAt(bytes: Buffer, at: number, maxLength: number): RecordHeader | 'more' | 'bad' {
  if (at + RECORD_HEADER > bytes.length) return 'more';
  const length = bytes.readUInt32LE(at + LENGTH);
  if (bytes.readUInt32LE(at + MAGIC_AT) !== MAGIC || length > maxLength || bytes.readUIntLE(at + KIND + 1, 3) !== 0) return 'bad';
  if (at + RECORD_HEADER + length > bytes.length) return 'more';
  return {
    length: RECORD_HEADER + length,
    uidValidity: bytes.readUInt32LE(at + UIDVALIDITY),
    uid: bytes.readUInt32LE(at + UID),
    fingerprintHigh: bytes.readUInt32LE(at + FINGERPRINT_HIGH),
    fingerprintLow: bytes.readUInt32LE(at + FINGERPRINT_LOW),
    size: bytes.readUInt32LE(at + SIZE_LOW) + bytes.readUInt32LE(at + SIZE_HIGH) * 2 ** 32,
    kind: bytes[at + KIND],
  };
}

// ---- Reading and writing many records ----

/**
 * Reads the records of an open cache file in order, a megabyte at a time,
 * calling `onRecord` with each one's header and offset. Returns where the
 * good records end: 0 if it is no cache file, the start of a torn or
 * damaged record if there is one (the rest is dropped); null if
 * `stillOpen()` turned false meanwhile.
 */
export async function scanRecords(fd: number, maxValue: number, stillOpen: () => boolean, onRecord: (record: RecordHeader, offset: number) => void): Promise<number | null> {
  const head = Buffer.alloc(FILE_HEADER.length);
  if (readIntoSync(fd, head, head.length, 0) !== head.length || !head.equals(FILE_HEADER)) return 0;
  const buffer = Buffer.allocUnsafe(READ_BYTES);
  for (let position = FILE_HEADER.length; ; ) {
    const bytesRead = await readInto(fd, buffer, buffer.length, position);
    if (!stillOpen()) return null;
    const bytes = buffer.subarray(0, bytesRead);
    let at = 0;
    for (;;) {
      const record = recordHeaderAt(bytes, at, maxValue);
      if (record === 'bad') return position + at;
      if (record === 'more') break;
      onRecord(record, position + at);
      at += record.length;
    }
    // At the end of the file, a record cut short is a torn one. (A record
    // longer than a read cannot be: values are bounded.)
    if (bytesRead < buffer.length || at === 0) return position + at;
    position += at;
  }
}

const READ_BYTES = 1024 * 1024;
/** Records further apart than this are read separately rather than with the bytes between. */
const MAX_GAP = 64 * 1024;

/** Writes `data` at `position` of the open file `fd`; tests pass one that fails as a full disk does. */
export type CacheWriter = (fd: number, data: Buffer, position: number) => void;

/** The default writer: all of `data` at `position`. */
export const writeAt: CacheWriter = (fd, data, position) => writeAllSync(fd, data, position);

/**
 * Reads the records in file order, a megabyte at a time (records close
 * together share a read), and calls `visit` with each one's bytes.
 */
export function readRecords(fd: number, records: CacheRecordRef[], visit: (bytes: Buffer, at: number, record: CacheRecordRef) => void): void {
  const order = ascendingOrder(records.map((r) => r.offset));
  let buffer = Buffer.alloc(0);
  for (let n = 0; n < order.length; ) {
    const start = records[order[n]].offset;
    let end = start + records[order[n]].length;
    let last = n + 1;
    for (; last < order.length; last++) {
      const next = records[order[last]];
      if (next.offset - end > MAX_GAP || next.offset + next.length - start > READ_BYTES) break;
      end = Math.max(end, next.offset + next.length);
    }
    if (buffer.length < end - start) buffer = Buffer.allocUnsafe(Math.max(READ_BYTES, end - start));
    const bytes = buffer.subarray(0, readIntoSync(fd, buffer, end - start, start));
    for (; n < last; n++) visit(bytes, records[order[n]].offset - start, records[order[n]]);
  }
}

/** A record the directory points to, and (lookup) where its value goes or (compaction) where it went. */
export interface CacheRecordRef {
  offset: number;
  length: number;
  kind: number;
  k: number;
  slot: number;
}

/** Appends to a file through a buffer of READ_BYTES. */
export class BufferedWriter {
  readonly #fd: number;
  readonly #write: CacheWriter;
  readonly #buffer = Buffer.allocUnsafe(READ_BYTES);
  #used = 0;
  #flushed = 0;
  constructor(fd: number, write: CacheWriter) {
    this.#fd = fd;
    this.#write = write;
  }
  get position(): number {
    return this.#flushed + this.#used;
  }
  add(bytes: Buffer): void {
    if (this.#used + bytes.length > this.#buffer.length) this.end();
    if (bytes.length > this.#buffer.length) {
      this.#write(this.#fd, bytes, this.#flushed);
      this.#flushed += bytes.length;
      return;
    }
    this.#used += bytes.copy(this.#buffer, this.#used);
  }
  end(): void {
    if (this.#used === 0) return;
    this.#write(this.#fd, this.#buffer.subarray(0, this.#used), this.#flushed);
    this.#flushed += this.#used;
    this.#used = 0;
  }
}

/** The indices of `values`, ascending by value (already in order: no sort). */
function ascendingOrder(values: readonly number[]): number[] {
  const order = Array.from({ length: values.length }, (_, n) => n);
  for (let n = 1; n < values.length; n++) {
    if (values[n] < values[n - 1]) return order.sort((a, b) => values[a] - values[b]);
  }
  return order;
}
