// The one helper for replacing a whole file atomically (chasquid calls it
// safeio): the queue, the side index and the config all go through here.
//
// Writing a file in place can leave it half-written after a crash. Instead:
//  1. write the new content to a temporary file in the same directory
//     (same filesystem, so the rename below is atomic),
//  2. fsync it, so its bytes are on disk before its name is,
//  3. rename it over the target: readers see the old file or the new one,
//     never a mix,
//  4. fsync the directory, so the rename itself survives a power cut.
//
// The temporary name starts with "." so it can never be mistaken for a
// mailbox (paths.ts refuses mailbox names that start with ".").

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export interface AtomicWriteOptions {
  /** Permission bits of the new file. Default 0o600 (mail is private). */
  mode?: number;
}

/** Replaces `target` with `data` so that a crash leaves old or new, not a mix. */
export async function writeFileAtomic(
  target: string,
  data: string | Buffer,
  opts: AtomicWriteOptions = {},
): Promise<void> {
  const dir = path.dirname(target);
  const temp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const handle = await fs.open(temp, 'wx', opts.mode ?? 0o600);
  try {
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(temp, target);
  } catch (err) {
    await fs.unlink(temp).catch(() => {}); // best effort: the error matters more
    throw err;
  }
  await fsyncDirectory(dir);
}

/** Makes a directory's entries (creations, renames) durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
