// Durable delivery into an mbox file, with group commit.
//
// Appending a message (RFC 4155 layout, mboxrd quoting) means: take the
// dot-lock, write "From <sender> <date>\n", the quoted message, and a blank
// line, then fsync before telling the sender "250 OK" (a reply that promises
// durability comes after fsync, never before).
//
// An fsync costs a few milliseconds, so one fsync per message would cap a
// mailbox at a few hundred deliveries per second. Group commit: requests for
// the same file queue up, and a single writer per file takes everything
// queued as one batch: one lock, one fsync of the mbox (and one or two small
// ones of the append journal, see append-journal.ts), then every request of the
// batch is answered. While a batch is being fsynced the next requests pile up and
// form the next batch, so the busier the mailbox, the bigger the batches.
//
// Invariants:
//  - Never a partial message: on any error the file is cut back to its size
//    before the batch (ftruncate) and every request of the batch fails.
//    A request whose content stream fails is cut back alone; the rest of
//    the batch goes on. A process killed mid-batch cannot cut anything
//    back; the append journal (append-journal.ts) records where each batch
//    starts, and the next holder of the lock cuts a torn batch off.
//  - A request is resolved only after the fsync covering its bytes.
//  - At most one batch per file is in flight (one writer per path).
// appendBatchLocked is one batch on its own, for a caller that holds the
// lock already: IMAP APPEND and COPY (mailbox-state.ts), which must index
// the new messages under that same lock to hand out their UIDs.

import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { AppendIO } from './append-io.ts';
import { realAppendIO } from './append-io.ts';
import { AppendJournal, PLANNED_MAX_BYTES, recoverTornTail } from './append-journal.ts';
import { withMailboxLock } from './dotlock.ts';
import { writeAllSync } from './file-io.ts';
import { formatFromLine } from './from-line.ts';
import { MboxrdQuoter } from './mboxrd.ts';

export type { AppendIO };
export { realAppendIO };

export interface AppendRequest {
  /** SMTP envelope sender; '' (the null sender) is written MAILER-DAEMON. */
  envelopeFrom: string;
  /** Delivery time, for the From line. */
  date: Date;
  /** The raw message with LF line endings, NOT quoted. May be called more than once. */
  content: () => AsyncIterable<Buffer>;
}

export interface AppendResult {
  /** Byte offset of the message's "From " line. */
  offset: number;
  /** Bytes from `offset` through the message's final LF (the blank separator line excluded). */
  length: number;
}

export interface AppenderOptions {
  io?: AppendIO;
  lockTimeoutMs?: number;
  staleLockMs?: number;
}

interface Pending {
  request: AppendRequest;
  resolve: (result: AppendResult) => void;
  reject: (err: unknown) => void;
}

// A batch of a few small messages goes to the page cache in one synchronous
// write(2), which takes microseconds, where a write through the thread pool
// waits for two turns of a busy event loop (there and back) and so delays
// the whole batch and everyone waiting for it. The fsync that follows is
// what takes time, and it stays asynchronous; so do larger writes, so that
// a big message never holds up the other sessions.
const SYNC_WRITE_BYTES = 64 * 1024;

const defaultAppendIO: AppendIO = {
  ...realAppendIO,
  write: async (fd, data) => (data.length <= SYNC_WRITE_BYTES ? writeAllSync(fd, data) : realAppendIO.write(fd, data)),
};

// Everything is gathered into one buffer of this size before write(2):
// copying costs far less than a write(2) through the thread pool, which
// waits for a turn of a busy event loop. Only pieces larger than the
// buffer are written as they are. 256 KiB holds a batch of fifty 5 KB
// messages; a megabyte was no faster and cost four times the memory.
const COALESCE_BYTES = 256 * 1024;
// Write buffers kept for reuse (one per mailbox being written). There must
// be one for each mailbox written at once: when many mailboxes receive mail
// together, each writer loop ends after almost every batch, and a buffer
// allocated afresh each time is external memory that makes V8 run its full
// (mark-compact) collector over and over. 16 x 256 KiB = 4 MiB at most.
const SPARE_BUFFERS = 16;
const LF = 0x0a;

export class MboxAppender {
  readonly #io: AppendIO;
  readonly #lockOptions: { timeoutMs?: number; staleMs?: number };
  // Requests waiting for the next batch, per absolute mbox path. A path has
  // an entry exactly while its writer loop runs.
  readonly #queues = new Map<string, Pending[]>();
  // Mailbox directories known to exist: one mkdir per directory, not per batch.
  readonly #madeDirs = new Set<string>();
  readonly #spareBuffers: Buffer[] = [];

  constructor(opts: AppenderOptions = {}) {
    this.#io = opts.io ?? defaultAppendIO;
    this.#lockOptions = { timeoutMs: opts.lockTimeoutMs, staleMs: opts.staleLockMs };
  }

  /** Appends one message; resolves once it is on disk (fsynced). */
  append(mboxPath: string, request: AppendRequest): Promise<AppendResult> {
    const key = path.resolve(mboxPath);
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(key);
      if (queue) {
        queue.push({ request, resolve, reject });
      } else {
        this.#queues.set(key, [{ request, resolve, reject }]);
        void this.#runWriter(key);
      }
    });
  }

  // The single writer for one path: commits batches until nobody is waiting.
  async #runWriter(key: string): Promise<void> {
    const queue = this.#queues.get(key)!;
    // One write buffer for all of this path's batches (they run one at a time).
    const buffer = this.#spareBuffers.pop() ?? Buffer.allocUnsafe(COALESCE_BYTES);
    while (queue.length > 0) {
      // Let callers that are about to append (for example those whose
      // previous append just resolved) join this batch.
      await new Promise((resolve) => setImmediate(resolve));
      const batch = queue.splice(0);
      try {
        const results = await this.#commitBatch(key, batch, buffer);
        batch.forEach((pending, i) => {
          const result = results[i];
          if (result instanceof Error) pending.reject(result);
          else pending.resolve(result);
        });
      } catch (err) {
        for (const pending of batch) pending.reject(err);
      }
    }
    this.#queues.delete(key);
    if (this.#spareBuffers.length < SPARE_BUFFERS) this.#spareBuffers.push(buffer);
  }

  // Writes one batch under the lock. Returns a result or an Error per request
  // (only content errors are per request); throws if the whole batch failed.
  async #commitBatch(mboxPath: string, batch: Pending[], buffer: Buffer): Promise<(AppendResult | Error)[]> {
    const dir = path.dirname(mboxPath);
    if (!this.#madeDirs.has(dir)) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      this.#madeDirs.add(dir);
    }
    // If the directory vanished behind our back, the next batch makes it again.
    return this.#underLock(mboxPath, batch, buffer).catch((err: NodeJS.ErrnoException) => {
      if (err?.code === 'ENOENT') this.#madeDirs.delete(dir);
      throw err;
    });
  }

  async #underLock(mboxPath: string, batch: Pending[], buffer: Buffer): Promise<(AppendResult | Error)[]> {
    const requests = batch.map((pending) => pending.request);
    return withMailboxLock(mboxPath, () => appendBatchLocked(mboxPath, requests, { io: this.#io, buffer }), this.#lockOptions);
  }
}

export interface BatchOptions {
  io?: AppendIO;
  /** The write buffer (default: a new one of 64 KiB). */
  buffer?: Buffer;
  /**
   * If one request's content fails, cut the whole batch off and throw its
   * error (IMAP COPY and multi-message APPEND are all or nothing, RFC 3501
   * 6.4.7, RFC 3502). Default: only that request fails.
   */
  allOrNothing?: boolean;
}

/**
 * Writes one batch into the mbox, durably (the journal, then the bytes,
 * then fsync: see the header). The caller holds the mailbox's dot-lock and
 * the mbox's directory exists. Returns a result or an Error per request
 * (only content errors are per request); throws if the whole batch failed,
 * having cut the file back to where it was.
 */
export async function appendBatchLocked(mboxPath: string, requests: readonly AppendRequest[], opts: BatchOptions = {}): Promise<(AppendResult | Error)[]> {
  const io = opts.io ?? realAppendIO;
  const buffer = opts.buffer ?? Buffer.allocUnsafe(64 * 1024);
  const fd = await io.open(mboxPath);
  let journal: AppendJournal | null = null;
  let start = -1; // the batch's first byte: where a failure cuts back to
  try {
    journal = await AppendJournal.open(mboxPath);
    const opened = journal; // (the same, for the closures below)
    // A batch killed half-way leaves a torn tail: cut it first.
    const mbox = await recoverTornTail(opened, {
      state: () => io.stat(fd),
      read: (offset, length) => io.readAt(fd, offset, length),
      truncate: (size) => io.truncate(fd, size),
      sync: () => io.fsync(fd),
    });
    start = mbox.size;
    // A batch that outgrows the buffer is written as it comes, after the
    // journal's "start" is on disk (the writer asks for it before its first write).
    const out = new CoalescingWriter(io, fd, start, buffer, () => opened.begin(mbox.ino, start));
    await out.add(await separatorPadding(io, fd, start));
    const results: (AppendResult | Error)[] = [];
    for (const request of requests) {
      const result = await writeMessage(out, request);
      if (result instanceof Error && opts.allOrNothing) throw result;
      results.push(result);
    }
    if (!out.streamed && out.position - start <= PLANNED_MAX_BYTES) {
      // All of it is in the buffer: one planned record, then the bytes (see append-journal.ts).
      if (out.position === start) return results; // nothing to write
      await out.flushAfter(opened.plan(mbox.ino, start, out.buffered));
      await io.fsync(fd);
    } else {
      await out.flush();
      const written = await io.stat(fd);
      // The mbox's fsync and the journal's "complete" go to disk together.
      await allOrFirstError([io.fsync(fd), opened.complete(mbox.ino, start, out.position, written.ctimeNs)]);
    }
    // A new file's name must be durable too, not just its bytes.
    if (start === 0) await io.fsyncDir(path.dirname(mboxPath));
    return results;
  } catch (err) {
    if (start >= 0) {
      try {
        await io.truncate(fd, start);
        await io.fsync(fd);
        await journal!.settle(await io.stat(fd));
      } catch {
        // The original error is the one to report; the journal still
        // says "pending", so the next holder of the lock cuts the batch.
      }
    }
    throw err;
  } finally {
    // By now the batch is fsynced or rolled back: a failing close
    // changes nothing on disk, so it must not fail the batch.
    journal?.close();
    await io.close(fd).catch(() => {});
  }
}

// Waits for every promise (none is left running behind our back), then
// throws the first failure, if any.
async function allOrFirstError(promises: Promise<unknown>[]): Promise<void> {
  const outcomes = await Promise.allSettled(promises);
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed) throw failed.reason;
}

// RFC 4155: a From line must follow a blank line (or start the file). If the
// file was left by another program without its final blank line, add it.
async function separatorPadding(io: AppendIO, fd: number, size: number): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const tail = await io.readAt(fd, Math.max(0, size - 2), Math.min(2, size));
  if (tail.length === 2 && tail[0] === LF && tail[1] === LF) return Buffer.alloc(0);
  if (tail[tail.length - 1] === LF) return Buffer.from('\n');
  return Buffer.from('\n\n');
}

// Thrown inside writeMessage when the message's own content stream fails,
// to tell it apart from an I/O error on the mbox.
class ContentError {
  readonly cause: unknown;
  constructor(cause: unknown) {
    this.cause = cause;
  }
}

async function writeMessage(out: CoalescingWriter, request: AppendRequest): Promise<AppendResult | Error> {
  const offset = out.position;
  await out.add(Buffer.from(formatFromLine(request.envelopeFrom, request.date)));
  const quoter = new MboxrdQuoter();
  let lastByte = LF; // an empty message needs no final LF
  try {
    for await (const chunk of contentOf(request)) {
      const quoted = quoter.push(chunk);
      if (quoted.length > 0) lastByte = quoted[quoted.length - 1];
      await out.add(quoted);
    }
  } catch (err) {
    if (!(err instanceof ContentError)) throw err; // I/O error: whole batch
    // Only this message is bad: cut it off and let the batch go on.
    await out.rewindTo(offset);
    return err.cause instanceof Error ? err.cause : new Error(String(err.cause));
  }
  const rest = quoter.end();
  if (rest.length > 0) lastByte = rest[rest.length - 1];
  await out.add(rest);
  if (lastByte !== LF) await out.add(Buffer.from('\n'));
  const length = out.position - offset;
  await out.add(Buffer.from('\n')); // the blank line that ends a message in mbox
  return { offset, length };
}

// The request's content, with its failures wrapped as ContentError.
async function* contentOf(request: AppendRequest): AsyncGenerator<Buffer> {
  let iterator: AsyncIterator<Buffer>;
  try {
    iterator = request.content()[Symbol.asyncIterator]();
  } catch (err) {
    throw new ContentError(err);
  }
  for (;;) {
    let step: IteratorResult<Buffer>;
    try {
      step = await iterator.next();
    } catch (err) {
      throw new ContentError(err);
    }
    if (step.done) return;
    yield step.value;
  }
}

// Gathers small pieces into one buffer so a batch costs few write(2) calls,
// and tracks the absolute file position of the next byte. Each write is
// awaited before more is buffered, so memory stays bounded however fast the
// content streams arrive. Before its first write it awaits `beforeWriting`
// (the journal's record of the batch), unless flushAfter gave it another.
class CoalescingWriter {
  readonly #io: AppendIO;
  readonly #fd: number;
  readonly #buffer: Buffer;
  readonly #beforeWriting: () => Promise<void>;
  #ready: Promise<void> | null = null;
  #used = 0;
  /** File offset the next added byte will land at. */
  position: number;

  constructor(io: AppendIO, fd: number, startSize: number, buffer: Buffer, beforeWriting: () => Promise<void>) {
    this.#io = io;
    this.#fd = fd;
    this.position = startSize;
    this.#buffer = buffer;
    this.#beforeWriting = beforeWriting;
  }

  /** True once bytes have been written (or are being written): the batch outgrew the buffer. */
  get streamed(): boolean {
    return this.#ready !== null;
  }

  /** What is buffered and not yet written. */
  get buffered(): Buffer {
    return this.#buffer.subarray(0, this.#used);
  }

  async #write(data: Buffer): Promise<void> {
    await (this.#ready ??= this.#beforeWriting());
    await this.#io.write(this.#fd, data);
  }

  async add(data: Buffer): Promise<void> {
    this.position += data.length;
    if (data.length > this.#buffer.length) {
      await this.flush(); // keep the order: what is buffered goes first
      await this.#write(data); // big piece: no point copying it
      return;
    }
    if (this.#used + data.length > this.#buffer.length) await this.flush();
    data.copy(this.#buffer, this.#used);
    this.#used += data.length;
  }

  /** Writes out whatever is buffered. */
  async flush(): Promise<void> {
    if (this.#used === 0) return;
    const data = this.#buffer.subarray(0, this.#used);
    this.#used = 0;
    await this.#write(data);
  }

  /** Writes out what is buffered once `ready` resolves, instead of beforeWriting (nothing written yet). */
  async flushAfter(ready: Promise<void>): Promise<void> {
    this.#ready = ready;
    await this.flush();
  }

  /** Drops everything from `position` on, whether written or still buffered. */
  async rewindTo(position: number): Promise<void> {
    const bufferedFrom = this.position - this.#used;
    if (position >= bufferedFrom) {
      this.#used = position - bufferedFrom; // not written yet: forget it
    } else {
      await this.flush();
      await this.#io.truncate(this.#fd, position);
    }
    this.position = position;
  }
}
