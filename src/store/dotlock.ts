// The traditional mbox dot-lock, plus an in-process mutex.
//
// mbox files have no internal structure to protect them, so every program
// that changes one (this server, procmail, mutt, a POP3 server rewriting the
// file) agrees to first create "<mbox>.lock", failing if it exists, and to
// remove it when done. RFC 4155 leaves locking to local convention; the
// dot-lock (described in the LOCKING section of mutt's mbox(5) page) is the
// convention every mbox tool understands, and it works even where
// fcntl/flock locks do not, such as NFS.
//
// Two layers:
//  1. An in-process async mutex per path, so two callers inside this process
//     queue up instead of both polling the same lock file.
//  2. The lock file itself, which keeps other processes out. It holds
//     "PID:HOSTNAME" (Dovecot's format) and, on Linux, a second line
//     "pidspace=BOOT-ID/PID-NAMESPACE" (see dotlock-stale.ts). It is made
//     with that content in one step (createLockFile): never empty.
//
// Stale locks (a crashed holder's) are recognised and broken without a
// race in dotlock-stale.ts.
//
// Invariants:
//  - The lock file is removed in `finally`, whatever `fn` does, but only if
//    it is still the file we created (someone may have broken it as stale).
//  - Waiting for another process is bounded: after `timeoutMs` we give up
//    with LockTimeoutError.
//  - Never wait on the network (a client) while holding the lock: callers in
//    this process queue behind the holder without a time limit.
//
// Taking and releasing the lock file are a few tiny metadata calls (link,
// stat, unlink; no fsync) and are done synchronously: they cost
// microseconds, whereas through the thread pool each one waits for a turn of
// the event loop behind every other session's socket traffic, which made a
// busy server spend longer taking the lock than writing the mail. Waiting for
// another process's lock stays asynchronous (sleeps between attempts).

import { closeSync, fstatSync, futimesSync, openSync, statSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { isDiskFull } from './disk-full.ts';
import { breakIfStale, isErrno, lockFileContent, unlinkQuietly } from './dotlock-stale.ts';
import { linkStamp, releaseStamp } from './dotlock-stamp.ts';
import type { Stamp } from './dotlock-stamp.ts';
import { writeAllSync } from './file-io.ts';

export { BREAK_STALE_MS, breakFilePath, isStale, lockFileContent, parseLockFile } from './dotlock-stale.ts';

export interface LockOptions {
  /**
   * How long to wait for a lock held by another process before giving up.
   * Default 10 s. Callers in this process wait their turn in the mutex first;
   * that wait is not bounded, so a holder must never wait on the network.
   */
  timeoutMs?: number;
  /** A lock file not touched for this long is considered abandoned. Default 5 min. */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_STALE_MS = 5 * 60 * 1000;
// Floor of the refresh period, for tests that use a tiny staleMs.
const MIN_REFRESH_MS = 10;

/** Thrown when a mailbox stays locked by someone else for `timeoutMs`. */
export class LockTimeoutError extends Error {
  override name = 'LockTimeoutError';
  readonly lockPath: string;
  constructor(lockPath: string, timeoutMs: number) {
    super(`mailbox is locked: ${lockPath} still held after ${timeoutMs} ms`);
    this.lockPath = lockPath;
  }
}

/**
 * Delay before the n-th retry (n = 0, 1, ...): starts at 5 ms and doubles up
 * to 200 ms, so a short hold is noticed quickly and a long one is polled
 * without burning CPU.
 */
export function lockRetryDelay(attempt: number): number {
  return Math.min(5 * 2 ** attempt, 200);
}

// Tail of the queue of callers for each path (absolute), in this process.
const queueTails = new Map<string, Promise<void>>();

/**
 * Runs `fn` while holding both the in-process mutex and the dot-lock for
 * `mboxPath`. The directory of `mboxPath` must already exist.
 */
export async function withMailboxLock<T>(mboxPath: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const key = path.resolve(mboxPath);
  const staleMs = opts.staleMs ?? DEFAULT_STALE_MS;
  return withProcessMutex(key, async () => {
    const lockPath = key + '.lock';
    const ours = await acquireLockFile(lockPath, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, staleMs);
    // Keep the lock young while we work, so an age-based break never takes it.
    const refresh = setInterval(() => touch(ours.fd), Math.max(staleMs / 4, MIN_REFRESH_MS));
    refresh.unref();
    try {
      return await fn();
    } finally {
      clearInterval(refresh);
      releaseLockFile(lockPath, ours);
    }
  });
}

/**
 * Runs `fn` after every earlier caller with the same key in this process
 * has finished: a promise chain per key. (Keys are lock paths here; other
 * users prefix theirs, as folders.ts does.)
 */
export async function withProcessMutex<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = queueTails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  const tail = previous.then(() => done);
  queueTails.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    // Forget the key when nobody queued behind us, so the map does not grow.
    if (queueTails.get(key) === tail) queueTails.delete(key);
  }
}

// ---- Taking and releasing ----

// The lock file we hold, kept open so we can refresh its mtime: the
// directory's stamp (dotlock-stamp.ts), or a file created in place.
interface HeldLock {
  fd: number;
  dev: number;
  ino: number;
  stamp: Stamp | null;
}

async function acquireLockFile(lockPath: string, timeoutMs: number, staleMs: number): Promise<HeldLock> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; ) {
    const created = createLockFile(lockPath, lockFileContent());
    if (created) return created;
    if (breakIfStale(lockPath, staleMs)) continue; // retry at once
    const left = deadline - Date.now();
    if (left <= 0) throw new LockTimeoutError(lockPath, timeoutMs);
    await sleep(Math.min(lockRetryDelay(attempt++), left));
  }
}

/**
 * Creates the lock file with its content in one step, or returns null if
 * someone holds it. A private file that already holds the content (this
 * process's stamp for the directory, made once: dotlock-stamp.ts) is
 * hard-linked to the lock's name: link(2), like an exclusive create, fails
 * with EEXIST when the name is taken, but the lock never exists without its
 * content. (Created empty and then written, a process killed in between
 * leaves an empty lock that only age can break: the mailbox stuck for
 * staleMs.) liblockfile and Dovecot make dot-locks the same way. Where hard
 * links are not supported (a FAT-formatted card) or there is no room for
 * the private file, the lock is created in place.
 */
function createLockFile(lockPath: string, content: string): HeldLock | null {
  let stamp: Stamp | null;
  try {
    stamp = linkStamp(lockPath, content);
  } catch (err) {
    if (isDiskFull(err) || isErrno(err, 'EPERM') || isErrno(err, 'ENOTSUP') || isErrno(err, 'EOPNOTSUPP')) return createInPlace(lockPath, content);
    throw err;
  }
  return stamp && { fd: stamp.fd, dev: stamp.dev, ino: stamp.ino, stamp };
}

// The plain way: an exclusive create, then the content.
function createInPlace(lockPath: string, content: string): HeldLock | null {
  let fd: number;
  try {
    fd = openSync(lockPath, 'wx', 0o644); // O_CREAT|O_EXCL: fails with EEXIST if anyone holds the lock
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return null;
    throw err;
  }
  try {
    writeAllSync(fd, Buffer.from(content));
  } catch (err) {
    // No block left for one line: the empty file still locks (every tool
    // treats an empty lock as held, and breaks it only by age), and reading
    // the mailbox must work on a full disk.
    if (!isDiskFull(err)) {
      closeSync(fd);
      unlinkQuietly(lockPath);
      throw err;
    }
  }
  const { dev, ino } = fstatSync(fd);
  return { fd, dev, ino, stamp: null };
}

function touch(fd: number): void {
  try {
    const now = new Date();
    futimesSync(fd, now, now);
  } catch {
    // Nothing to do about it; the lock is then broken by age later than it could be.
  }
}

function releaseLockFile(lockPath: string, ours: HeldLock): void {
  // Still our inode? (Someone may have broken the lock and made their own.)
  // The number is proof: our open fd keeps that inode alive, so no other
  // file can be given its number meanwhile.
  try {
    const st = statSync(lockPath);
    if (st.ino === ours.ino && st.dev === ours.dev) unlinkSync(lockPath);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err; // ENOENT: someone broke it; nothing to release
  } finally {
    if (ours.stamp) releaseStamp(ours.stamp);
    else closeSync(ours.fd);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
