// The message cache's records waiting to be written (message-cache.ts):
// put() encodes each value into one growing buffer at once (the key is the
// message as it was when the value was worked out), and the write job takes
// them all in one piece. Bounded: past MAX_PENDING_BYTES a value is simply
// not kept this time (a cache may forget; it is worked out again when asked).

import { recordLength, writeRecord } from './message-cache-file.ts';
import type { RecordKey } from './message-cache-file.ts';

/** Bytes of records waiting, at most. */
export const MAX_PENDING_BYTES = 8 * 1024 * 1024;
/** The buffer starts this small and doubles as records come. */
const FIRST_BUFFER_BYTES = 64 * 1024;

export class PendingRecords {
  #bytes = Buffer.alloc(0);
  #length = 0;

  /** Bytes of records waiting. */
  get length(): number {
    return this.#length;
  }

  /** Encodes the record of `value`; false when it would go past the bound (it is not kept). */
  add(key: RecordKey, value: string): boolean {
    const length = this.#length + recordLength(value);
    if (length > MAX_PENDING_BYTES) return false;
    if (length > this.#bytes.length) {
      const bigger = Buffer.allocUnsafe(Math.min(MAX_PENDING_BYTES, Math.max(FIRST_BUFFER_BYTES, 2 * length)));
      this.#bytes.copy(bigger, 0, 0, this.#length);
      this.#bytes = bigger;
    }
    this.#length = writeRecord(this.#bytes, this.#length, key, value);
    return true;
  }

  /** The records waiting, in the order they were put; the queue is empty afterwards. */
  take(): Buffer {
    const records = this.#bytes.subarray(0, this.#length);
    this.clear();
    return records;
  }

  clear(): void {
    this.#bytes = Buffer.alloc(0);
    this.#length = 0;
  }
}
