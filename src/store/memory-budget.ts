// A process-wide cap on the memory held for messages in flight.
//
// Each message being received keeps its first bytes in memory and moves to
// a temporary file past a per-message threshold (spooled-body.ts). That
// bounds one session, not the server: a hundred sessions each a little
// under the threshold would hold a hundred thresholds. So every in-memory
// buffer is also reserved from one shared budget; when the budget says no,
// the body goes to its temporary file instead. Memory then stays under
// (budget + a few read buffers) whatever the number of sessions.
//
// Invariant: every successful tryReserve is matched by exactly one release
// of the same amount (SpooledBody does it when it spills to a file and when
// it is discarded).

export class MemoryBudget {
  readonly totalBytes: number;
  #usedBytes = 0;

  constructor(totalBytes: number) {
    if (!Number.isSafeInteger(totalBytes) || totalBytes < 0) throw new RangeError(`memory budget must be a whole number of bytes: ${totalBytes}`);
    this.totalBytes = totalBytes;
  }

  /** Bytes currently reserved. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** Reserves `bytes` if they fit in what is left; returns whether it did. */
  tryReserve(bytes: number): boolean {
    if (this.#usedBytes + bytes > this.totalBytes) return false;
    this.#usedBytes += bytes;
    return true;
  }

  /** Gives back bytes reserved earlier. */
  release(bytes: number): void {
    if (bytes > this.#usedBytes) throw new Error(`released ${bytes} bytes but only ${this.#usedBytes} are reserved`);
    this.#usedBytes -= bytes;
  }
}
