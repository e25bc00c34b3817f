// The file-system calls the mbox appender makes, behind a small interface.
//
// Delivery must survive a full disk or a failing fsync without leaving half
// a message in the mailbox. Such failures are hard to cause on a real disk,
// so the appender takes its I/O as a parameter: tests pass a version that
// fails after N bytes, or counts fsyncs, and check what is left on disk.
// `realAppendIO` is the ordinary implementation on plain file descriptors.

import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { MboxState } from './append-journal.ts';
import { stateOf } from './append-journal.ts';
import { readAtSync, writeAll } from './file-io.ts';
import { fsyncDirectory } from './safeio.ts';

export interface AppendIO {
  /** Opens (creating with mode 0o600) the mbox for reading and appending. */
  open(path: string): Promise<number>;
  /** Size, inode and ctime of the file (for the append journal). */
  stat(fd: number): Promise<MboxState>;
  /** Reads up to `length` bytes at `position`. */
  readAt(fd: number, position: number, length: number): Promise<Buffer>;
  /** Appends all of `data` at the end of the file. The caller may reuse `data` once this settles. */
  write(fd: number, data: Buffer): Promise<void>;
  /** Forces the file's data to disk. */
  fsync(fd: number): Promise<void>;
  /** Cuts the file back to `size` bytes (the rollback after a failure). */
  truncate(fd: number, size: number): Promise<void>;
  close(fd: number): Promise<void>;
  /** Makes a newly created file's directory entry durable. */
  fsyncDir(dirPath: string): Promise<void>;
}

const fsyncAsync = promisify(fs.fsync);
const ftruncateAsync = promisify(fs.ftruncate);

// O_APPEND: every write lands at the current end of file, even if another
// program (holding the dot-lock before us) has just grown it.
// O_NOFOLLOW: a symlink planted in place of a mailbox is refused, not
// followed to some other file. (Not defined on Windows, hence `?? 0`.)
const { O_RDWR, O_CREAT, O_APPEND } = fs.constants;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

// open, fstat, the 2-byte tail read and close are done synchronously: they
// take microseconds, while a thread-pool call waits for a turn of the event
// loop behind other sessions' traffic (see dotlock.ts). write and fsync, which
// move real data, stay asynchronous.
export const realAppendIO: AppendIO = {
  open: async (path) => fs.openSync(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW, 0o600),
  stat: async (fd) => stateOf(fs.fstatSync(fd, { bigint: true })),
  readAt: async (fd, position, length) => readAtSync(fd, position, length),
  write: (fd, data) => writeAll(fd, data),
  fsync: (fd) => fsyncAsync(fd),
  truncate: (fd, size) => ftruncateAsync(fd, size),
  close: async (fd) => fs.closeSync(fd),
  fsyncDir: (dirPath) => fsyncDirectory(dirPath),
};
