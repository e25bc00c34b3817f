// A message body on its way in: held in memory while it is small, moved to a
// temporary file once it grows past a threshold, so a 25 MiB message costs the
// server a few buffers of memory, not 25 MiB (the Raspberry Pi rule).
//
// In memory the bytes are copied into 256 KiB blocks rather than kept as the
// many small pieces they arrive in: fewer, larger writes later, and no
// per-piece garbage for the collector.
//
// The temporary file is not fsync'd: it is only a staging area. Durability
// comes from the mbox append (or queue file) that copies it, which is fsync'd
// before the client hears 250.

import { open, unlink, mkdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const BLOCK_BYTES = 256 * 1024;

export class SpooledBody {
  /** Full blocks, then the one being filled (`used` bytes of it). */
  private blocks: Buffer[] = [];
  private used = 0;
  private file: FileHandle | null = null;
  private filePath: string | null = null;
  size = 0;
  private readonly tmpDir: string;
  private readonly memoryLimit: number;

  constructor(tmpDir: string, memoryLimit: number) {
    this.tmpDir = tmpDir;
    this.memoryLimit = memoryLimit;
  }

  /** Add bytes. `chunk` may be reused by the caller once this resolves. */
  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (!this.file && this.size > this.memoryLimit) await this.moveToFile();
    if (this.file) {
      await writeAll(this.file, chunk);
      return;
    }
    for (let from = 0; from < chunk.length; ) {
      let block = this.blocks[this.blocks.length - 1];
      if (!block || this.used === block.length) {
        block = Buffer.allocUnsafe(Math.min(BLOCK_BYTES, Math.max(this.memoryLimit, 1)));
        this.blocks.push(block);
        this.used = 0;
      }
      const copied = chunk.copy(block, this.used, from);
      this.used += copied;
      from += copied;
    }
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
    this.blocks = [];
    this.used = 0;
  }

  /** Stop writing; the body can now be read any number of times. */
  async finish(): Promise<void> {
    await this.file?.close();
    this.file = null;
  }

  /**
   * The body's bytes, from memory or from the temporary file. Each chunk
   * yielded is only valid until the next one is asked for: the file is read
   * into one buffer, reused, so a large body makes no garbage.
   */
  async *read(): AsyncIterable<Buffer> {
    if (!this.filePath) {
      yield* this.memoryParts();
      return;
    }
    const file = await open(this.filePath, 'r');
    try {
      const buffer = Buffer.allocUnsafe(BLOCK_BYTES);
      for (let position = 0; ; ) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) break;
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await file.close();
    }
  }

  /** Remove the temporary file, if any. Safe to call twice. */
  async discard(): Promise<void> {
    await this.file?.close().catch(() => {});
    this.file = null;
    if (this.filePath) await unlink(this.filePath).catch(() => {});
    this.filePath = null;
    this.blocks = [];
    this.used = 0;
  }
}

// write(2) may write less than asked (a disk filling up does that before it
// fails with ENOSPC): loop, so a short write is never a silently cut body.
async function writeAll(file: FileHandle, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    done += (await file.write(data, done, data.length - done)).bytesWritten;
  }
}
