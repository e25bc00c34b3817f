// A small queue in front of scrypt: at most `concurrency` password
// computations run at once, a bounded number wait their turn, and the rest
// are turned away at once.
//
// Why: scrypt with N = 2^14, r = 8 needs 16 MiB of memory for each running
// computation, and Node runs them on libuv's thread pool (4 threads), the same
// threads that do every file read, write and fsync. Without a queue a burst
// of logins runs 4 scrypts at once and stalls mail delivery behind them. One
// at a time (the default, see DEFAULT_CONCURRENCY) keeps memory to one
// 16 MiB block and leaves three threads for the disk. The waiting list is
// bounded too, so a flood of logins cannot grow memory; those over the limit
// get an answer that means "busy, try again later", never "wrong password".
//
// Giving the 16 MiB back is the C allocator's business, not the queue's.
// glibc serves a block that large with mmap and unmaps it when it is freed,
// but after the first such free it raises its threshold and keeps later
// ones in the arena of the thread that ran scrypt: one arena per thread of
// the pool, so up to 64 MiB stayed for good after a burst of logins. The
// start command (package.json) fixes the threshold at 4 MiB
// (MALLOC_MMAP_THRESHOLD_): every scrypt block is mapped and unmapped, and
// a burst of logins leaves the server as large as it found it (measured:
// +64 MiB before, about +1 MiB after; a worker thread of its own for scrypt
// kept about 30 MiB, its arena and what is left of its heap).
//
// Dovecot does the same with its auth worker processes (a fixed number, each
// checking one password at a time, with a bounded request queue).

/** Thrown by PasswordQueue.run when `maxWaiting` jobs are already waiting. */
export class PasswordQueueFullError extends Error {
  constructor() {
    super('too many password checks waiting');
    this.name = 'PasswordQueueFullError';
  }
}

export interface PasswordQueueOptions {
  /** Computations running at once. */
  concurrency?: number;
  /** Computations allowed to wait; one more is refused with PasswordQueueFullError. */
  maxWaiting?: number;
}

// One at a time: 16 MiB of scrypt memory at most, and on a Raspberry Pi
// (4 cores, 1-8 GB) the thread pool stays free for the mbox files. A login is
// checked with scrypt once and then remembered (accounts.ts), so a queue of
// one is slow only for a burst of first logins or of wrong passwords.
export const DEFAULT_CONCURRENCY = 1;
export const DEFAULT_MAX_WAITING = 64;

export class PasswordQueue {
  readonly concurrency: number;
  readonly maxWaiting: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(options: PasswordQueueOptions = {}) {
    this.concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
    this.maxWaiting = options.maxWaiting ?? DEFAULT_MAX_WAITING;
    if (!(this.concurrency >= 1)) throw new RangeError('concurrency must be at least 1');
  }

  /** Run `job` when a slot is free. Rejects with PasswordQueueFullError, without running it, when the queue is full. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active < this.concurrency) {
      this.active++;
    } else {
      if (this.waiting.length >= this.maxWaiting) throw new PasswordQueueFullError();
      // The job that finishes hands its slot straight to us (see below), so
      // `active` stays the same and nobody can slip in between.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** For logs and tests: how many run and how many wait right now. */
  get load(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.waiting.length };
  }
}
