// Watches the recipient's mbox during a run: counts the messages appended
// since the start and checks each one's X-Bench-Token, so the benchmark's
// clock can stop when the last accepted message is visible on disk.

import { open, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';

const READ_CHUNK = 1024 * 1024;
const SEPARATOR = Buffer.from('\nFrom '); // RFC 4155: a line starting "From "

/**
 * Counts the messages added to an mbox file after `init()`: every "\nFrom "
 * (a line starting "From ", RFC 4155) past the starting size, plus the
 * X-Bench-Token header of each, so a message counted twice or not at all is
 * noticed. Reads only new bytes, in bounded chunks; a pattern split across
 * two reads is found through the kept tail of the previous one.
 */
export class MboxWatcher {
  readonly path: string;
  startSize = 0;
  position = 0;
  messages = 0;
  readonly tokens = new Set<number>();
  duplicateTokens = 0;
  /** performance.now() when `messages` last grew. */
  lastGrowthAt = 0;
  problem: string | null = null;
  readonly #tokenPrefix: Buffer;
  #tail = Buffer.alloc(0);
  readonly #buffer = Buffer.allocUnsafe(READ_CHUNK);

  constructor(path: string, tokenPrefix: string) {
    this.path = path;
    this.#tokenPrefix = Buffer.from(tokenPrefix);
  }

  async init(): Promise<void> {
    this.startSize = await sizeOf(this.path);
    this.position = this.startSize;
    if (this.startSize === 0) {
      this.#tail = Buffer.from('\n'); // the file's start is a line start
    } else {
      const handle = await open(this.path, 'r');
      try {
        const from = Math.max(0, this.startSize - 64);
        const { bytesRead } = await handle.read(this.#buffer, 0, this.startSize - from, from);
        this.#tail = Buffer.from(this.#buffer.subarray(0, bytesRead));
      } finally {
        await handle.close();
      }
    }
  }

  /** Reads whatever was appended since the last call. */
  async poll(): Promise<void> {
    if (this.problem) return;
    const size = await sizeOf(this.path);
    if (size < this.position) {
      this.problem = `the mbox shrank from ${this.position} to ${size} bytes during the run`;
      return;
    }
    if (size === this.position) return;
    const handle = await open(this.path, 'r');
    try {
      // Bounded: at most up to the size seen above.
      while (this.position < size) {
        const want = Math.min(READ_CHUNK, size - this.position);
        const { bytesRead } = await handle.read(this.#buffer, 0, want, this.position);
        if (bytesRead === 0) break;
        this.position += bytesRead;
        this.#scan(this.#buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
  }

  #scan(chunk: Buffer): void {
    const before = this.messages;
    const keep = this.#tokenPrefix.length + 8 - 1; // longest pattern, minus one byte
    // Matches that start in the tail and end in the chunk, from a small
    // stitched buffer; then the chunk itself, without copying it.
    const tailLength = this.#tail.length;
    const seam = Buffer.concat([this.#tail, chunk.subarray(0, keep)]);
    this.#find(seam, (at, length) => at < tailLength && at + length > tailLength);
    this.#find(chunk, () => true);
    this.#tail = Buffer.from(chunk.length >= keep ? chunk.subarray(chunk.length - keep) : seam.subarray(Math.max(0, seam.length - keep)));
    if (this.messages > before) this.lastGrowthAt = performance.now();
  }

  // Counts the separators and tokens wholly inside `data` that `wanted` accepts.
  #find(data: Buffer, wanted: (at: number, length: number) => boolean): void {
    for (let at = data.indexOf(SEPARATOR); at >= 0; at = data.indexOf(SEPARATOR, at + 1)) {
      if (wanted(at, SEPARATOR.length)) this.messages++;
    }
    const prefix = this.#tokenPrefix;
    const length = prefix.length + 8;
    for (let at = data.indexOf(prefix); at >= 0; at = data.indexOf(prefix, at + 1)) {
      if (at + length > data.length || !wanted(at, length)) continue; // incomplete: the next read has it
      const n = Number(data.subarray(at + prefix.length, at + length).toString('latin1'));
      if (this.tokens.has(n)) this.duplicateTokens++;
      else this.tokens.add(n);
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/**
 * Several mboxes watched as one (bench-smtp --mailboxes): the same figures
 * as one MboxWatcher, summed over them. A token seen in two of them counts
 * as a duplicate too.
 */
export class MboxWatcherGroup {
  readonly watchers: MboxWatcher[];

  constructor(paths: string[], tokenPrefix: string) {
    this.watchers = paths.map((path) => new MboxWatcher(path, tokenPrefix));
  }

  async init(): Promise<void> {
    for (const watcher of this.watchers) await watcher.init();
  }

  async poll(): Promise<void> {
    for (const watcher of this.watchers) await watcher.poll();
  }

  get messages(): number {
    return this.watchers.reduce((sum, w) => sum + w.messages, 0);
  }

  get tokens(): { size: number } {
    return { size: new Set(this.watchers.flatMap((w) => [...w.tokens])).size };
  }

  get duplicateTokens(): number {
    const total = this.watchers.reduce((sum, w) => sum + w.tokens.size, 0);
    return this.watchers.reduce((sum, w) => sum + w.duplicateTokens, 0) + total - this.tokens.size;
  }

  get lastGrowthAt(): number {
    return Math.max(0, ...this.watchers.map((w) => w.lastGrowthAt));
  }

  get problem(): string | null {
    return this.watchers.find((w) => w.problem)?.problem ?? null;
  }
}
