// The waiting side of the benchmark's two clients (smtp-client.ts,
// pop3-client.ts): the socket's data handler parses replies and pushes them
// here; the caller takes them in order, waiting at most until a deadline, so
// a silent server fails the benchmark instead of hanging it.

export interface ReplyQueueOptions {
  /** Replies held without being read; more means the server floods us. */
  limit: number;
  /** The client's own error class, for the errors raised here. */
  error: (message: string) => Error;
  /** What the client calls a reply, for those errors: ['reply', 'replies']. */
  noun: [one: string, many: string];
}

export class ReplyQueue<T> {
  readonly #opts: ReplyQueueOptions;
  readonly #replies: T[] = [];
  #failure: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(opts: ReplyQueueOptions) {
    this.#opts = opts;
  }

  /** The first error seen (the connection failed, or the server broke the protocol). */
  get failure(): Error | null {
    return this.#failure;
  }

  push(reply: T): void {
    this.#replies.push(reply);
    if (this.#replies.length > this.#opts.limit) return this.fail(this.#opts.error(`too many unread ${this.#opts.noun[1]}`));
    this.#notify();
  }

  /** Records the first error; replies already queued are still read before it is thrown. */
  fail(err: Error): void {
    this.#failure ??= err;
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /** The next reply; rejects if the connection fails or `deadline` (a Date.now() value) passes. */
  async next(deadline: number): Promise<T> {
    // Each pass either returns, throws, or waits for new data or the timer.
    for (;;) {
      const next = this.#replies.shift();
      if (next) return next;
      if (this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) throw this.#opts.error(`timed out waiting for a ${this.#opts.noun[0]}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}
