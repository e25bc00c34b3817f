// Where the message cache's values are (message-cache.ts): for each kind
// of value, the offset and length of its record in the cache file, one
// entry per row of the mailbox's message table (message-table.ts), in typed
// arrays. Nothing else of the cache is in memory: 50,000 messages with four
// kinds cached cost 1.6 MB here, not 50,000 objects or strings.
//
// The columns follow the table's rows. Rows are added at the end (new
// mail: the columns grow) or the table is built anew (an expunge, a rescan:
// the entries are carried over by UID, in one merge of two ascending lists,
// and those of messages that left are counted as dead bytes, which a
// compaction drops).
//
// A length's top bit says "this record's CRC was checked already" (by a
// read, or because this process wrote it): a later read skips the CRC, which
// for a search over 50,000 short records is a sixth of its time.

/** Kinds of value the cache keeps: 0 .. MAX_KINDS - 1 (their meaning is the caller's). */
export const MAX_KINDS = 8;

const CHECKED = 0x80000000;
const LENGTH = 0x7fffffff;

export class CacheDirectory {
  /** The UIDs of the rows the columns follow (a view of the table's column). */
  #uids: Uint32Array = new Uint32Array(0);
  #offsets: (Uint32Array | null)[] = new Array(MAX_KINDS).fill(null);
  #lengths: (Uint32Array | null)[] = new Array(MAX_KINDS).fill(null);
  /** Bytes of records no entry points to (replaced, or of messages gone). */
  deadBytes = 0;

  /** Follows the table whose UIDs are `uids` now (see the header). */
  align(uids: Uint32Array): void {
    const old = this.#uids;
    if (old === uids) return;
    const grownInPlace = uids.buffer === old.buffer && uids.byteOffset === old.byteOffset && uids.length >= old.length;
    if (grownInPlace || old.length === 0) {
      for (let kind = 0; kind < MAX_KINDS; kind++) if (this.#offsets[kind]) this.#grow(kind, uids.length);
      this.#uids = uids;
      return;
    }
    for (let kind = 0; kind < MAX_KINDS; kind++) {
      const offsets = this.#offsets[kind];
      const lengths = this.#lengths[kind];
      if (!offsets || !lengths) continue;
      const newOffsets = new Uint32Array(Math.max(16, uids.length));
      const newLengths = new Uint32Array(newOffsets.length);
      let j = 0;
      for (let i = 0; i < old.length; i++) {
        if (offsets[i] === 0) continue;
        while (j < uids.length && uids[j] < old[i]) j++;
        if (j < uids.length && uids[j] === old[i]) {
          newOffsets[j] = offsets[i];
          newLengths[j] = lengths[i];
        } else {
          this.deadBytes += lengths[i] & LENGTH;
        }
      }
      this.#offsets[kind] = newOffsets;
      this.#lengths[kind] = newLengths;
    }
    this.#uids = uids;
  }

  /** Forgets every entry (their records become dead). */
  clear(): void {
    this.forEach((_kind, _k, _offset, length) => (this.deadBytes += length));
    this.#offsets.fill(null);
    this.#lengths.fill(null);
  }

  /** The record of row k's value of `kind`: its offset (0: none). */
  offsetAt(kind: number, k: number): number {
    const offsets = this.#offsets[kind];
    return offsets && k < offsets.length ? offsets[k] : 0;
  }

  lengthAt(kind: number, k: number): number {
    return this.#lengths[kind]![k] & LENGTH;
  }

  /** Was the CRC of row k's `kind` record checked already? */
  checkedAt(kind: number, k: number): boolean {
    return (this.#lengths[kind]![k] & CHECKED) !== 0;
  }

  markChecked(kind: number, k: number): void {
    if (this.offsetAt(kind, k) !== 0) this.#lengths[kind]![k] |= CHECKED;
  }

  /**
   * Points row k's `kind` at a record (`checked`: its CRC is known good);
   * a record it pointed to before is dead.
   */
  set(kind: number, k: number, offset: number, length: number, checked = false): void {
    this.#grow(kind, this.#uids.length);
    const offsets = this.#offsets[kind]!;
    const lengths = this.#lengths[kind]!;
    if (offsets[k] !== 0) this.deadBytes += lengths[k] & LENGTH;
    offsets[k] = offset;
    lengths[k] = (length & LENGTH) | (checked ? CHECKED : 0);
  }

  /** Forgets row k's `kind` (its record is dead). */
  drop(kind: number, k: number): void {
    const offsets = this.#offsets[kind];
    if (!offsets || offsets[k] === 0) return;
    this.deadBytes += this.#lengths[kind]![k] & LENGTH;
    offsets[k] = 0;
  }

  /** Every entry, for a compaction: calls fn(kind, row, offset, length). */
  forEach(fn: (kind: number, k: number, offset: number, length: number) => void): void {
    for (let kind = 0; kind < MAX_KINDS; kind++) {
      const offsets = this.#offsets[kind];
      if (!offsets) continue;
      for (let k = 0; k < this.#uids.length; k++) if (offsets[k] !== 0) fn(kind, k, offsets[k], this.#lengths[kind]![k] & LENGTH);
    }
  }

  /** Bytes the columns take. */
  get byteLength(): number {
    let bytes = 0;
    for (const column of [...this.#offsets, ...this.#lengths]) bytes += column?.byteLength ?? 0;
    return bytes;
  }

  #grow(kind: number, rows: number): void {
    const offsets = this.#offsets[kind];
    if (offsets && offsets.length >= rows) return;
    const capacity = Math.max(16, rows, offsets ? offsets.length * 2 : 0);
    const newOffsets = new Uint32Array(capacity);
    const newLengths = new Uint32Array(capacity);
    if (offsets) {
      newOffsets.set(offsets);
      newLengths.set(this.#lengths[kind]!);
    }
    this.#offsets[kind] = newOffsets;
    this.#lengths[kind] = newLengths;
  }
}
