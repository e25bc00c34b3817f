// What the side index knows about every message of one mailbox, packed in
// columns: one typed array per field instead of one object per message.
//
// A mailbox of 50,000 messages held as objects costs about 150 bytes per
// message (an object, a boxed number here and there, a 16-character
// fingerprint string); in columns it is 68 bytes per message, in 11 arrays
// instead of 150,000 heap objects the garbage collector has to walk. Flags
// are the number of a set in the mailbox's FlagPool (flags.ts).
//
// Rows are in file order, so UIDs ascend (mbox-index.ts) and a UID is found
// by binary search. Rows are only ever added at the end (a delivery) or the
// whole table is built anew (an expunge, a rescan): a view of the UID
// column taken earlier (uidView) keeps showing what it showed, which is
// what lets 1,000 sessions share one snapshot (mailbox.ts).

import { FlagPool } from './flags.ts';

/** One message, as mailbox.ts hands it out. */
export interface MessageRecord {
  /** RFC 3501 2.3.1.1 unique identifier; ascends in file order. */
  uid: number;
  /** Byte offset of the "From " line. */
  offset: number;
  /** From line through the message's last LF, blank separator excluded. */
  length: number;
  /** First byte after the From line. */
  contentOffset: number;
  /** Octets a client sees: mboxrd quoting undone, CRLF line ends (POP3 LIST, IMAP RFC822.SIZE). */
  size: number;
  /** IMAP internal date (RFC 3501 2.3.3), seconds since the epoch. */
  internalDate: number;
  /** RFC 7162 mod-sequence of the message's last change. */
  modseq: number;
  /** Canonical and frozen (flags.ts): share it, never change it. */
  flags: readonly string[];
}

/** A record with its fingerprint (mbox-index-scan.ts): what tests and tools compare. */
export interface IndexedMessage extends MessageRecord {
  fingerprint: string;
}

/** A row to add: a record with its flags as a FlagPool set number. */
export interface NewRow {
  uid: number;
  offset: number;
  length: number;
  contentOffset: number;
  size: number;
  fingerprint: string;
  internalDate: number;
  modseq: number;
  flagId: number;
  /** CRC-32 of its stored bytes, as the scan found them (mbox-index-scan.ts); -1 or absent: not known. */
  crc?: number;
}

/**
 * The table as readers outside the store may use it: look a UID up, read
 * its columns. What FETCH 1:* (UID FLAGS) walks without making an object
 * per message (imap/fetch-batch.ts).
 */
export interface MessageRows {
  readonly length: number;
  readonly flags: { text(id: number): string };
  find(uid: number): number;
  sizeAt(k: number): number;
  internalDateAt(k: number): number;
  modseqAt(k: number): number;
  flagIdAt(k: number): number;
}

const INITIAL_CAPACITY = 16;

export class MessageTable implements MessageRows {
  /** The flag sets the rows' flag numbers refer to. */
  readonly flags: FlagPool;
  #count = 0;
  #uids: Uint32Array;
  #offsets: Float64Array;
  #lengths: Float64Array;
  #fromLines: Uint32Array; // contentOffset - offset
  #sizes: Float64Array;
  #fingerprintHigh: Uint32Array;
  #fingerprintLow: Uint32Array;
  #dates: Float64Array;
  #modseqs: Float64Array;
  #flagIds: Uint32Array;
  #crcs: Float64Array; // -1: not known (index files before version 3, the journal's older "+ " lines)
  #hint = 0; // the row find() found last: FETCH 1:* looks up UIDs in order

  constructor(flags = new FlagPool(), capacity = INITIAL_CAPACITY) {
    this.flags = flags;
    const n = Math.max(capacity, INITIAL_CAPACITY);
    this.#uids = new Uint32Array(n);
    this.#offsets = new Float64Array(n);
    this.#lengths = new Float64Array(n);
    this.#fromLines = new Uint32Array(n);
    this.#sizes = new Float64Array(n);
    this.#fingerprintHigh = new Uint32Array(n);
    this.#fingerprintLow = new Uint32Array(n);
    this.#dates = new Float64Array(n);
    this.#modseqs = new Float64Array(n);
    this.#flagIds = new Uint32Array(n);
    this.#crcs = new Float64Array(n);
  }

  get length(): number {
    return this.#count;
  }

  /** Bytes the columns take (their capacity), for the benchmark. */
  get byteLength(): number {
    return this.#uids.length * (4 + 8 + 8 + 4 + 8 + 4 + 4 + 8 + 8 + 4 + 8);
  }

  /**
   * The UIDs of rows 0..length-1, sharing the column's memory. Rows added
   * later never change it; an expunge builds a new table (see the header).
   */
  uidView(): Uint32Array {
    return this.#uids.subarray(0, this.#count);
  }

  /** Adds a row at the end; its UID must be above the last one. */
  push(row: NewRow): void {
    const [high, low] = splitFingerprint(row.fingerprint);
    this.pushRaw(row.uid, row.offset, row.length, row.contentOffset - row.offset, row.size, high, low, row.internalDate, row.modseq, row.flagId, row.crc ?? -1);
  }

  /** push() with the fingerprint already split and contentOffset as the From line's length: the index parser's form. */
  pushRaw(uid: number, offset: number, length: number, fromLine: number, size: number, high: number, low: number, date: number, modseq: number, flagId: number, crc = -1): void {
    const k = this.#count;
    if (k === this.#uids.length) this.#grow(k * 2);
    this.#uids[k] = uid;
    this.#offsets[k] = offset;
    this.#lengths[k] = length;
    this.#fromLines[k] = fromLine;
    this.#sizes[k] = size;
    this.#fingerprintHigh[k] = high;
    this.#fingerprintLow[k] = low;
    this.#dates[k] = date;
    this.#modseqs[k] = modseq;
    this.#flagIds[k] = flagId;
    this.#crcs[k] = crc;
    this.#count = k + 1;
  }

  /** Copies row `k` of `from` (whose flag pool must be this table's), moved up by `shift` bytes. */
  pushRowOf(from: MessageTable, k: number, shift = 0): void {
    this.pushRaw(
      from.#uids[k], from.#offsets[k] - shift, from.#lengths[k], from.#fromLines[k], from.#sizes[k],
      from.#fingerprintHigh[k], from.#fingerprintLow[k], from.#dates[k], from.#modseqs[k], from.#flagIds[k], from.#crcs[k],
    );
  }

  /** An independent copy (same flag pool). */
  clone(): MessageTable {
    const copy = new MessageTable(this.flags, this.#count);
    for (let k = 0; k < this.#count; k++) copy.pushRowOf(this, k);
    return copy;
  }

  /** The row holding `uid`, or -1. */
  find(uid: number): number {
    const uids = this.#uids;
    const hint = this.#hint;
    if (hint < this.#count && uids[hint] === uid) return hint;
    if (hint + 1 < this.#count && uids[hint + 1] === uid) return (this.#hint = hint + 1);
    let low = 0;
    let high = this.#count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const here = uids[middle];
      if (here === uid) return (this.#hint = middle);
      if (here < uid) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }

  uidAt(k: number): number {
    return this.#uids[k];
  }
  offsetAt(k: number): number {
    return this.#offsets[k];
  }
  lengthAt(k: number): number {
    return this.#lengths[k];
  }
  contentOffsetAt(k: number): number {
    return this.#offsets[k] + this.#fromLines[k];
  }
  sizeAt(k: number): number {
    return this.#sizes[k];
  }
  fingerprintAt(k: number): string {
    return joinFingerprint(this.#fingerprintHigh[k], this.#fingerprintLow[k]);
  }
  /** The fingerprint's two 32-bit halves into out[0] and out[1] (no string made). */
  fingerprintHalves(k: number, out: Uint32Array): void {
    out[0] = this.#fingerprintHigh[k];
    out[1] = this.#fingerprintLow[k];
  }
  internalDateAt(k: number): number {
    return this.#dates[k];
  }
  /** CRC-32 of the row's stored bytes as scanned, or -1 (not known). */
  crcAt(k: number): number {
    return this.#crcs[k];
  }
  modseqAt(k: number): number {
    return this.#modseqs[k];
  }
  flagIdAt(k: number): number {
    return this.#flagIds[k];
  }

  /** Gives row `k` the flag set `flagId` and the mod-sequence `modseq`. */
  setFlagsAt(k: number, flagId: number, modseq: number): void {
    this.#flagIds[k] = flagId;
    this.#modseqs[k] = modseq;
  }

  /** Sets row `k`'s internal date (a message appended with a date of its own). */
  setInternalDateAt(k: number, seconds: number): void {
    this.#dates[k] = seconds;
  }

  /** Row `k` as an object (what FETCH needs; cheap: no strings are made). */
  record(k: number): MessageRecord {
    return {
      uid: this.#uids[k],
      offset: this.#offsets[k],
      length: this.#lengths[k],
      contentOffset: this.#offsets[k] + this.#fromLines[k],
      size: this.#sizes[k],
      internalDate: this.#dates[k],
      modseq: this.#modseqs[k],
      flags: this.flags.list(this.#flagIds[k]),
    };
  }

  /** Every row as an object with its fingerprint: for tests and tools, not for the hot paths. */
  records(): IndexedMessage[] {
    return Array.from({ length: this.#count }, (_, k) => ({ ...this.record(k), fingerprint: this.fingerprintAt(k) }));
  }

  #grow(capacity: number): void {
    // New arrays: views handed out by uidView keep the old ones.
    const grow = <T extends Uint32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const bigger = make(capacity);
      bigger.set(old.subarray(0, this.#count));
      return bigger;
    };
    this.#uids = grow(this.#uids, (n) => new Uint32Array(n));
    this.#offsets = grow(this.#offsets, (n) => new Float64Array(n));
    this.#lengths = grow(this.#lengths, (n) => new Float64Array(n));
    this.#fromLines = grow(this.#fromLines, (n) => new Uint32Array(n));
    this.#sizes = grow(this.#sizes, (n) => new Float64Array(n));
    this.#fingerprintHigh = grow(this.#fingerprintHigh, (n) => new Uint32Array(n));
    this.#fingerprintLow = grow(this.#fingerprintLow, (n) => new Uint32Array(n));
    this.#dates = grow(this.#dates, (n) => new Float64Array(n));
    this.#modseqs = grow(this.#modseqs, (n) => new Float64Array(n));
    this.#flagIds = grow(this.#flagIds, (n) => new Uint32Array(n));
    this.#crcs = grow(this.#crcs, (n) => new Float64Array(n));
  }
}

/** A 16-hex-digit fingerprint as two 32-bit numbers. */
export function splitFingerprint(hex: string): [number, number] {
  return [parseInt(hex.slice(0, 8), 16) >>> 0, parseInt(hex.slice(8, 16), 16) >>> 0];
}

function joinFingerprint(high: number, low: number): string {
  return high.toString(16).padStart(8, '0') + low.toString(16).padStart(8, '0');
}
