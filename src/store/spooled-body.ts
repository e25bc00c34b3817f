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
// In memory the bytes are copied into blocks of 256 KiB rather than kept as
// the many small pieces they arrive in: fewer, larger writes later, and no
// per-piece garbage for the collector. Two sizes of buffer, so that neither
// small nor large mail makes garbage:
//  - a body starts in a small buffer (16 KiB, a slice of Node's shared
//    Buffer pool): most mail is a few KiB, and a 256 KiB buffer for each
//    message made the collector run a full GC every few dozen messages;
//  - a body that outgrows it continues in whole blocks taken from a pool
//    (buffer-pool.ts) and given back at discard(), for the next message.
//    Fresh blocks for each large message brought a full GC every few
//    messages: V8 counts a new Buffer's memory as allocated since its last
//    full collection and adds it to the old generation's size (22-39 full
//    GCs for 200 messages of 1 MiB instead of 1-13; a tenth of the rate).
// The budget is charged whole blocks either way.
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
import { BufferPool, recycle } from '../buffer-pool.ts';

const BLOCK_BYTES = 256 * 1024;
/** A body's first buffer (below Buffer.poolSize / 2, so a slice of Node's shared pool). */
const SMALL_BYTES = 16 * 1024;

/**
 * Whole blocks of every body in the process. It keeps up to 8 MiB of free
 * blocks (ten 1 MiB messages arriving at once use 40), let go after a
 * minute without mail.
 */
export const wholeBlocks = new BufferPool(BLOCK_BYTES, 32, 60_000);

export interface SpooledBodyOptions {
  /** The process-wide budget in-memory blocks are reserved from. */
  budget?: MemoryBudget;
}

export class SpooledBody {
  /** Full blocks, then the one being filled (`used` bytes of it). */
  private blocks: Buffer[] = [];
  private used = 0;
  /** Bytes of `budget` this body holds (whole blocks, even for the small first buffer). */
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
        block = this.newBlock(block ? this.blockBytes() : chunk.length - from);
        this.blocks.push(block);
        this.used = 0;
      } else if (this.used === block.length) {
        // The small first buffer is full: move its bytes into a whole block.
        const whole = this.newBlock(this.blockBytes());
        block.copy(whole, 0, 0, this.used);
        this.blocks[this.blocks.length - 1] = block = whole;
      }
      const copied = chunk.copy(block, this.used, from);
      this.used += copied;
      from += copied;
    }
  }

  /** A buffer for `wanted` bytes: the small one if they fit, else a whole block (pooled when of the usual size). */
  private newBlock(wanted: number): Buffer {
    const size = wanted <= SMALL_BYTES ? Math.min(SMALL_BYTES, this.blockBytes()) : this.blockBytes();
    return size === BLOCK_BYTES ? wholeBlocks.take() : Buffer.allocUnsafe(size);
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
    for (const block of this.blocks) recycle(block);
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

  /**
   * The body's bytes, from memory or from the temporary file. A chunk is
   * valid until the next one is asked for (one from memory: until
   * discard()); a consumer copies what it keeps. The chunks stay the body's:
   * never recycle() them (their blocks go back to the pool at discard()).
   */
  async *read(): AsyncIterable<Buffer> {
    if (!this.filePath) {
      yield* this.memoryParts();
      return;
    }
    const file = await open(this.filePath, 'r');
    // One pooled block, read into again for each chunk: a 25 MiB body in
    // fresh buffers left 25 MiB for the collector (RSS +20-28 MiB, not +13).
    const block = wholeBlocks.take();
    try {
      yield* readRange(file, 0, this.size, block);
    } finally {
      recycle(block);
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
