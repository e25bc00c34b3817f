// The traditional mbox dot-lock, plus an in-process mutex.
//
// mbox files have no internal structure to protect them, so every program
// that changes one (this server, procmail, mutt, a POP3 server rewriting the
// file) agrees to first create "<mbox>.lock" with an exclusive create and to
// remove it when done. RFC 4155 leaves locking to local convention; the
// dot-lock (described in the LOCKING section of mutt's mbox(5) page) is the
// convention every mbox tool understands, and it works even where
// fcntl/flock locks do not, such as old NFS.
//
// Two layers:
//  1. An in-process async mutex per path, so two callers inside this process
//     queue up instead of both polling the same lock file.
//  2. The lock file itself, holding our PID and a newline, which keeps other
//     processes out.
//
// A lock left behind by a crashed program would block the mailbox forever,
// so a lock is "stale" and gets broken when the PID inside is not a running
// process, or when the file is older than `staleMs` (the owner may be on
// another host, or a PID may have been reused).
//
// Invariants:
//  - The lock file is removed in `finally`, whatever `fn` does, but only if
//    it is still the file we created (someone may have broken it as stale).
//  - Waiting for another process is bounded: after `timeoutMs` we give up
//    with LockTimeoutError.
//  - Never wait on the network (a client) while holding the lock: callers in
//    this process queue behind the holder without a time limit.
//
// Taking and releasing the lock file are a few tiny metadata calls (create,
// write a PID, stat, unlink; no fsync) and are done synchronously: they cost
// microseconds, whereas through the thread pool each one waits for a turn of
// the event loop behind every other session's socket traffic, which made a
// busy server spend longer taking the lock than writing the mail. Waiting for
// another process's lock stays asynchronous (sleeps between attempts).

import type { Stats } from 'node:fs';
import { closeSync, fstatSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export interface LockOptions {
  /**
   * How long to wait for a lock held by another process before giving up.
   * Default 10 s. Callers in this process wait their turn in the mutex first;
   * that wait is not bounded, so a holder must never wait on the network.
   */
  timeoutMs?: number;
  /** A lock file older than this is considered abandoned. Default 5 min. */
  staleMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_STALE_MS = 5 * 60 * 1000;

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
export async function withMailboxLock<T>(
  mboxPath: string,
  fn: () => Promise<T>,
  opts: LockOptions = {},
): Promise<T> {
  const key = path.resolve(mboxPath);
  return withProcessMutex(key, async () => {
    const lockPath = key + '.lock';
    const ours = await acquireLockFile(lockPath, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, opts.staleMs ?? DEFAULT_STALE_MS);
    try {
      return await fn();
    } finally {
      releaseLockFile(lockPath, ours);
    }
  });
}

// A promise chain per key: each caller waits for the previous one to finish.
async function withProcessMutex<T>(key: string, fn: () => Promise<T>): Promise<T> {
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

// Identity of the lock file we created: device and inode numbers.
interface LockIdentity {
  dev: number;
  ino: number;
}

async function acquireLockFile(lockPath: string, timeoutMs: number, staleMs: number): Promise<LockIdentity> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; ) {
    let fd: number;
    try {
      // 'wx' = O_CREAT|O_EXCL: fails with EEXIST if anyone holds the lock.
      fd = openSync(lockPath, 'wx', 0o644);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      if (await breakIfStale(lockPath, staleMs)) continue; // retry at once
      const left = deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(lockPath, timeoutMs);
      await sleep(Math.min(lockRetryDelay(attempt++), left));
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n`);
      const st = fstatSync(fd);
      return { dev: st.dev, ino: st.ino };
    } catch (err) {
      // Could not even write our PID (disk full?): do not leave a lock behind.
      try {
        unlinkSync(lockPath);
      } catch {
        // the write error is the one to report
      }
      throw err;
    } finally {
      closeSync(fd);
    }
  }
}

// Removes the lock file if it was abandoned. Returns true if it is gone.
async function breakIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  let content: string;
  let seen: Stats;
  try {
    const handle = await fs.open(lockPath, 'r');
    try {
      seen = await handle.stat();
      content = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return true; // released meanwhile
    throw err;
  }
  if (!isStale(content, seen.mtimeMs, staleMs)) return false;
  // Unlink only if the path still names the file we judged; another process
  // may have broken it and taken a fresh lock in between. (A window remains
  // between this check and the unlink; the dot-lock protocol cannot close it,
  // which is one reason the in-process mutex keeps our own callers out.)
  try {
    const now = await fs.lstat(lockPath);
    const same = now.ino === seen.ino && now.dev === seen.dev && now.mtimeMs === seen.mtimeMs && now.size === seen.size;
    if (!same) return false;
    await fs.unlink(lockPath);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err;
  }
  return true;
}

/**
 * A lock is stale when its mtime is older than `staleMs`, or when it names a
 * PID that is not a running process. An empty or unreadable PID is not
 * proof of death (the owner may be between create and write), so such a lock
 * is only broken by age.
 */
export function isStale(content: string, mtimeMs: number, staleMs: number, now = Date.now()): boolean {
  if (now - mtimeMs > staleMs) return true;
  const pid = Number.parseInt(content.trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  return !isProcessAlive(pid);
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0 checks existence without signalling
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return !isErrno(err, 'ESRCH');
  }
}

function releaseLockFile(lockPath: string, ours: LockIdentity): void {
  // Same inode AND our PID inside: an inode number alone is not proof, as a
  // filesystem may hand the number of a deleted lock to the next one created.
  let isOurs: boolean;
  try {
    const st = statSync(lockPath);
    isOurs = st.ino === ours.ino && st.dev === ours.dev && readFileSync(lockPath, 'utf8') === `${process.pid}\n`;
    if (isOurs) unlinkSync(lockPath);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // someone broke it; nothing to release
    throw err;
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
