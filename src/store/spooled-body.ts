// A message body on its way in: held in memory while it is small, moved to a
// temporary file once it grows past a threshold, so a 25 MiB message costs the
// server a few buffers of memory, not 25 MiB (the Raspberry Pi rule).
//
// The temporary file is not fsync'd: it is only a staging area. Durability
// comes from the mbox append (or queue file) that copies it, which is fsync'd
// before the client hears 250.

import { open, unlink, mkdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export class SpooledBody {
  private chunks: Buffer[] = [];
  private file: FileHandle | null = null;
  private filePath: string | null = null;
  size = 0;
  private readonly tmpDir: string;
  private readonly memoryLimit: number;

  constructor(tmpDir: string, memoryLimit: number) {
    this.tmpDir = tmpDir;
    this.memoryLimit = memoryLimit;
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.size += chunk.length;
    if (!this.file && this.size <= this.memoryLimit) {
      // The caller may reuse its buffer: keep our own copy.
      this.chunks.push(Buffer.from(chunk));
      return;
    }
    if (!this.file) await this.moveToFile();
    await this.file!.write(chunk);
  }

  private async moveToFile(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
    this.filePath = join(this.tmpDir, `body-${process.pid}-${randomBytes(6).toString('hex')}`);
    this.file = await open(this.filePath, 'w+', 0o600);
    await this.file.write(Buffer.concat(this.chunks));
    this.chunks = [];
  }

  /** Stop writing; the body can now be read any number of times. */
  async finish(): Promise<void> {
    await this.file?.close();
    this.file = null;
  }

  /** The body's bytes, from memory or streamed from the temporary file. */
  async *read(): AsyncIterable<Buffer> {
    if (this.filePath) {
      yield* createReadStream(this.filePath, { highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>;
    } else {
      yield* this.chunks;
    }
  }

  /** Remove the temporary file, if any. Safe to call twice. */
  async discard(): Promise<void> {
    await this.file?.close().catch(() => {});
    this.file = null;
    if (this.filePath) await unlink(this.filePath).catch(() => {});
    this.filePath = null;
    this.chunks = [];
  }
}
