// The loops every file-handling module needs, written once.
//
// - writeAll / writeAllSync: write(2) may write fewer bytes than asked (a
//   disk filling up does that before it fails with ENOSPC, and so may a
//   signal). Code that ignores the count silently stores a cut message, so
//   every write of a whole buffer goes through one of these loops: the
//   asynchronous one for large writes, the synchronous one for the small
//   writes that take microseconds from the page cache.
// - readInto / readIntoSync: read(2) may also return fewer bytes than asked
//   before the end of the file (a signal, a network file system). These read
//   N bytes at position P into a buffer the caller owns (so a reader that
//   reuses its 1 MiB block keeps doing so), looping until they have all or
//   the file ends; readAt / readAtSync read them into a new buffer.
// - readRange: stream the bytes [start, start + length) of a file, the way
//   a message is read back from an mbox or a spool file: in bounded chunks,
//   never the whole range in memory at once (in one buffer lent by the
//   caller, when it copies each chunk away before asking for the next).

import { read as readCallback, readSync, writeSync, write as writeCallback } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';

const writeFd = promisify(writeCallback);
const readFd = promisify(readCallback);

/** Chunk size of readRange: a 25 MiB message is a hundred reads. */
export const READ_CHUNK_BYTES = 256 * 1024;
// A range this small is read in one synchronous call (see readRange).
const SMALL_RANGE_BYTES = 128 * 1024;

/** What writeAll writes through: a FileHandle, or (in tests) one that writes a few bytes per call. */
export interface AsyncWritable {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
}

/** Writes all of `data` at the file's current position (or its end, with O_APPEND). */
export async function writeAll(file: AsyncWritable | number, data: Buffer): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } =
      typeof file === 'number' ? await writeFd(file, data, done, data.length - done) : await file.write(data, done, data.length - done);
    done += bytesWritten;
  }
}

/** fs.writeSync's shape; tests pass one that writes a few bytes per call. */
export type WriteSyncCall = (fd: number, buffer: Buffer, offset: number, length: number, position: number | null) => number;

/**
 * Writes all of `data` to `fd`, synchronously: at `position` if one is
 * given, else at the file's current position (its end, with O_APPEND).
 */
export function writeAllSync(fd: number, data: Buffer, position: number | null = null, write: WriteSyncCall = writeSync): void {
  for (let done = 0; done < data.length; ) {
    done += write(fd, data, done, data.length - done, position === null ? null : position + done);
  }
}

/**
 * Reads the `length` bytes at `position` of `file` into the start of
 * `buffer`. Returns how many it read: all of them, fewer only where the file
 * ends.
 */
export async function readInto(file: AsyncReadable | number, buffer: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const { bytesRead } =
      typeof file === 'number' ? await readFd(file, buffer, got, length - got, position + got) : await file.read(buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** The `length` bytes at `position`, in a new buffer (shorter only where the file ends). */
export async function readAt(file: AsyncReadable | number, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  return buffer.subarray(0, await readInto(file, buffer, length, position));
}

/** What readInto reads through: a FileHandle, or (in tests) one that reads a few bytes per call. */
export interface AsyncReadable {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** readInto, synchronously (for small reads from the page cache, see readRange). */
export function readIntoSync(fd: number, buffer: Buffer, length: number, position: number, read: ReadSyncCall = readSync): number {
  let got = 0;
  while (got < length) {
    const bytesRead = read(fd, buffer, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * The `length` bytes at `position`, in a new buffer (shorter only where the
 * file ends), read at once: small reads from the page cache, where a turn of
 * the thread pool would cost more than the read.
 */
export function readAtSync(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  const got = readIntoSync(fd, buffer, length, position);
  return got === length ? buffer : buffer.subarray(0, got);
}

/** fs.readSync's shape; tests pass one that reads a few bytes per call. */
export type ReadSyncCall = (fd: number, buffer: Buffer, offset: number, length: number, position: number) => number;

/**
 * Yields the bytes [start, start + length) of `file`, each chunk a new
 * buffer (so a consumer may keep it, or hand it to a socket). With `into`,
 * every chunk is read into that one buffer instead, so it is valid only
 * until the next one is asked for: for a consumer that is done with each
 * chunk before it asks again (a copy to another file), which then makes no
 * garbage however long the range. Throws if the file ends before the range
 * does: the caller's idea of the file (an index, a stat) is wrong, and a
 * silently short message would be worse.
 */
export async function* readRange(file: FileHandle, start: number, length: number, into?: Buffer): AsyncGenerator<Buffer> {
  if (length <= 0) return;
  if (length <= SMALL_RANGE_BYTES && (!into || length <= into.length)) {
    // Most mail is a few kilobytes: one synchronous read from the page cache
    // takes microseconds, while a read through the thread pool waits a turn
    // of the event loop (about 20 us on a busy server, several times the read).
    const buffer = into ?? Buffer.allocUnsafe(length);
    if (readIntoSync(file.fd, buffer, length, start) !== length) throw shortFile(start, length);
    yield buffer.subarray(0, length);
    return;
  }
  const end = start + length;
  for (let position = start; position < end; ) {
    const buffer = into ?? Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, end - position));
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - position), position);
    if (bytesRead === 0) throw shortFile(start, length);
    position += bytesRead;
    yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
  }
}

function shortFile(start: number, length: number): Error {
  return new Error(`file ends before byte ${start + length} (reading ${length} bytes from ${start})`);
}
