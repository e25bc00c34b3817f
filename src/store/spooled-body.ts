// A message body on its way in: held in memory while it is small, moved to a
// temporary file once it grows past a threshold, so a 25 MiB message costs the
// server a few buffers of memory, not 25 MiB (the Raspberry Pi rule).
//
// Two limits decide when the body goes to the file:
//  - `memoryLimit`, per body (the session's share);
//  - an optional MemoryBudget shared by every body in the process
//    (memory-budget.ts): each in-memory block is reserved from it first,
//    and a refusal sends the body to its file at once. The reservation is
//    given back when the body moves to its file and when it is discarded,
//    so the owner must always call discard() (after delivery or failure).
//
// In memory the bytes are copied into blocks of up to 256 KiB rather than kept
// as the many small pieces they arrive in: fewer, larger writes later, and no
// per-piece garbage for the collector.
//
// The temporary file is not fsync'd: it is only a staging area. Durability
// comes from the mbox append (or queue file) that copies it, which is fsync'd
// before the client hears 250.

import { open, unlink, mkdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readRange, writeAll } from './file-io.ts';
import type { MemoryBudget } from './memory-budget.ts';

const BLOCK_BYTES = 256 * 1024;
/** The first buffer of a block; it grows as the block fills (see grow). */
const FIRST_BYTES = 16 * 1024;

export interface SpooledBodyOptions {
  /** The process-wide budget in-memory blocks are reserved from. */
  budget?: MemoryBudget;
}

export class SpooledBody {
  /** Full blocks, then the one being filled (`used` bytes of it). */
  private blocks: Buffer[] = [];
  private used = 0;
  /** Bytes of `budget` this body holds (the blocks' total size). */
  private reserved = 0;
  private file: FileHandle | null = null;
  private filePath: string | null = null;
  size = 0;
  private readonly tmpDir: string;
  private readonly memoryLimit: number;
  private readonly budget: MemoryBudget | null;

  constructor(tmpDir: string, memoryLimit: number, options: SpooledBodyOptions = {}) {
    this.tmpDir = tmpDir;
    this.memoryLimit = memoryLimit;
    this.budget = options.budget ?? null;
  }

  /** Add bytes. `chunk` may be reused by the caller once this resolves. */
  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (!this.file && (this.size > this.memoryLimit || !this.reserveRoomFor(chunk.length))) await this.moveToFile();
    if (this.file) {
      await writeAll(this.file, chunk);
      return;
    }
    for (let from = 0; from < chunk.length; ) {
      let block = this.blocks[this.blocks.length - 1];
      if (!block || this.used === this.blockBytes()) {
        // Only the first block starts small: a body that fills one is large, and its later blocks are
        // made whole at once (grown, each would cost twice its size in buffers and copies).
        const size = block ? this.blockBytes() : Math.min(this.blockBytes(), Math.max(FIRST_BYTES, chunk.length - from));
        block = Buffer.allocUnsafe(size);
        this.blocks.push(block);
        this.used = 0;
      } else if (this.used === block.length) {
        block = this.grow(block, chunk.length - from);
      }
      const copied = chunk.copy(block, this.used, from);
      this.used += copied;
      from += copied;
    }
  }

  // The first block's buffer starts small and is replaced by a larger copy
  // as it fills, up to blockBytes (the budget is charged whole blocks all
  // the same). Most mail is a few KiB: a 256 KiB buffer for each message
  // made the collector run a full GC every few dozen messages.
  private grow(block: Buffer, wanted: number): Buffer {
    const larger = Buffer.allocUnsafe(Math.min(this.blockBytes(), Math.max(block.length * 2, this.used + wanted)));
    block.copy(larger, 0, 0, this.used);
    this.blocks[this.blocks.length - 1] = larger;
    return larger;
  }

  private blockBytes(): number {
    return Math.min(BLOCK_BYTES, Math.max(this.memoryLimit, 1));
  }

  // Reserves from the budget the new blocks `bytes` more would need.
  // False if the budget cannot give them: the body must go to its file.
  private reserveRoomFor(bytes: number): boolean {
    const room = this.blocks.length > 0 ? this.blockBytes() - this.used : 0;
    if (bytes <= room || !this.budget) return true;
    const cost = Math.ceil((bytes - room) / this.blockBytes()) * this.blockBytes();
    if (!this.budget.tryReserve(cost)) return false;
    this.reserved += cost;
    return true;
  }

  private releaseMemory(): void {
    this.blocks = [];
    this.used = 0;
    this.budget?.release(this.reserved);
    this.reserved = 0;
  }

  /** The bytes held in memory, as views of the blocks. */
  private memoryParts(): Buffer[] {
    return this.blocks.map((block, i) => (i === this.blocks.length - 1 ? block.subarray(0, this.used) : block));
  }

  private async moveToFile(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    this.filePath = join(this.tmpDir, `body-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.file = await open(this.filePath, 'w+', 0o600);
    for (const part of this.memoryParts()) await writeAll(this.file, part);
    this.releaseMemory();
  }

  /** True once the body has moved to its temporary file. */
  get inFile(): boolean {
    return this.filePath !== null;
  }

  /** Stop writing; the body can now be read any number of times. */
  async finish(): Promise<void> {
    await this.file?.close();
    this.file = null;
  }

  /** The body's bytes, from memory or from the temporary file (each chunk a new buffer when from the file). */
  async *read(): AsyncIterable<Buffer> {
    if (!this.filePath) {
      yield* this.memoryParts();
      return;
    }
    const file = await open(this.filePath, 'r');
    try {
      yield* readRange(file, 0, this.size);
    } finally {
      await file.close();
    }
  }

  /** Remove the temporary file, if any, and give back the memory. Safe to call twice. */
  async discard(): Promise<void> {
    await this.file?.close().catch(() => {});
    this.file = null;
    if (this.filePath) await unlink(this.filePath).catch(() => {});
    this.filePath = null;
    this.releaseMemory();
  }
}
