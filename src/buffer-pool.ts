// A few buffers used over and over while a large message streams out, so
// that sending 25 MiB allocates a handful of buffers instead of hundreds.
//
// Why it matters: a Buffer's memory lives outside V8's heap, and V8 frees
// a dead Buffer only at a garbage collection, which it starts for outside
// memory only once some tens of MiB of it have piled up. A message read in
// fresh 256 KiB chunks, each turned into a fresh CRLF copy, leaves that much
// garbage behind: the server's RSS grew by 35-60 MiB per large FETCH while
// Dovecot's grew by about 1 MiB. Reusing the same few buffers keeps it flat.
//
// How a buffer travels (the IMAP literal of a large message):
//   store/message-reader.ts  reads a chunk of the mbox into a read buffer;
//   imap/crlf.ts             copies it, LF -> CRLF, into an output buffer
//                            and recycles the read buffer (copied: free);
//   wire/reply-queue.ts      writes the output buffer to the socket and
//                            recycles it in the write's callback, once the
//                            socket no longer holds it.
//
// The rule that keeps it safe: whoever finishes with a pooled buffer last
// calls recycle(), and only then; a producer never touches a buffer after
// handing it on. A consumer that does not know about pools just never
// recycles: the pool then makes a new buffer at each take(), which is what
// happened before pools existed, and nothing is ever overwritten under it.
// So a pool never blocks, and a chunk someone keeps stays theirs.
//
// A pool that outlives one stream (the blocks of message bodies in flight,
// store/spooled-body.ts) lets its free buffers go after a quiet spell
// (`idleMs`), so a burst of large mail does not hold its peak for months.
//
// This file sits at the top of src/ because three floors use it (store,
// imap, wire); it depends on nothing but Node.

interface Lent {
  pool: BufferPool;
  buffer: Buffer;
  /** Taken and not yet recycled: a second recycle() of the same memory is ignored. */
  out: boolean;
}

// Every pooled buffer's memory, to its pool. Keyed by the ArrayBuffer so
// that a view of a pooled buffer (a subarray) finds it too; weak, so a pool
// dropped with its stream is collected like any object.
const pooled = new WeakMap<ArrayBufferLike, Lent>();

export class BufferPool {
  /** Bytes in each buffer. */
  readonly size: number;
  /** Free buffers kept at most; more recycled than this are left to the GC. */
  readonly keep: number;
  /** Free buffers are let go once none has been taken for this long (0: kept for ever). */
  readonly idleMs: number;
  /** How many buffers this pool has made: a measure of reuse for tests and benchmarks. */
  allocated = 0;
  private readonly free: Buffer[] = [];
  private lastTake = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(size: number, keep = 4, idleMs = 0) {
    this.size = size;
    this.keep = keep;
    this.idleMs = idleMs;
  }

  /** A buffer of `size` bytes (old contents): a recycled one, or a new one when none is free. */
  take(): Buffer {
    if (this.idleMs > 0) this.lastTake = Date.now();
    let buffer = this.free.pop();
    if (!buffer) {
      // allocUnsafeSlow: memory of its own, never a slice of Node's shared
      // 8 KiB pool, so that its ArrayBuffer names this buffer alone.
      buffer = Buffer.allocUnsafeSlow(this.size);
      this.allocated++;
      pooled.set(buffer.buffer, { pool: this, buffer, out: true });
    } else {
      pooled.get(buffer.buffer)!.out = true;
    }
    return buffer;
  }

  /** Free buffers waiting to be taken again. */
  get freeCount(): number {
    return this.free.length;
  }

  /** A buffer of this pool is free again (see recycle() below). */
  putBack(buffer: Buffer): void {
    const lent = pooled.get(buffer.buffer);
    if (lent?.pool !== this || !lent.out) return;
    lent.out = false;
    if (this.free.length < this.keep) this.free.push(lent.buffer); // the whole buffer, even if given a view
    if (this.idleMs > 0 && !this.idleTimer) this.idleTimer = setTimeout(() => this.releaseIfIdle(), this.idleMs).unref();
  }

  // One timer per quiet spell, not one per take: it looks again when a take came meanwhile.
  private releaseIfIdle(): void {
    const quietFor = Date.now() - this.lastTake;
    if (quietFor < this.idleMs) {
      this.idleTimer = setTimeout(() => this.releaseIfIdle(), this.idleMs - quietFor).unref();
      return;
    }
    this.idleTimer = null;
    this.free.length = 0; // let them go (the GC frees them); later takes make new ones
  }
}

/** True if `chunk` is (a view of) a pooled buffer. */
export function isPooled(chunk: Buffer): boolean {
  return pooled.has(chunk.buffer);
}

/**
 * The caller has finished with `chunk` and holds no other view of its
 * memory: if it came from a pool, the pool may hand it out again. Anything
 * else is left alone, so callers need not know where a chunk came from.
 */
export function recycle(chunk: Buffer): void {
  const lent = pooled.get(chunk.buffer);
  if (lent?.out) lent.pool.putBack(lent.buffer);
}
