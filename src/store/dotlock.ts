// The traditional mbox dot-lock, plus an in-process mutex.
//
// mbox files have no internal structure to protect them, so every program
// that changes one (this server, procmail, mutt, a POP3 server rewriting the
// file) agrees to first create "<mbox>.lock" with an exclusive create and to
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
//     "pidspace=BOOT-ID/PID-NAMESPACE" (see below).
//
// Stale locks. A lock left behind by a crashed program would block the
// mailbox forever, so it is broken when it is provably abandoned:
//  - by age: its mtime is older than `staleMs`. A holder refreshes the mtime
//    every staleMs/4 while it works, so a long expunge of a large mbox is
//    never taken for abandoned;
//  - by PID: only when the lock was written in our own PID space, and that
//    PID is not running. A PID means nothing elsewhere: a holder on another
//    host (NFS) or in another container would lose its lock at once.
//    Dovecot trusts a PID when the host name is its own; a host name alone
//    is not enough here, because containers sharing one mail directory may
//    share a host name while each has its own PID namespace. So the lock
//    also names the PID namespace (the inode of /proc/self/ns/pid) and the
//    boot (/proc/sys/kernel/random/boot_id; namespace inodes repeat across
//    machines and boots), and the PID is trusted only if both match ours.
//    Any other lock (another host, another container, a lock from before a
//    reboot, a bare PID as liblockfile or older versions of this server
//    write, an empty lock from mutt or procmail) is broken by age only.
//
// Breaking without a race. "Check that it is stale, then unlink it" is two
// steps: two processes can both judge the same old lock stale, one unlinks
// it and creates its own, and the other then unlinks that fresh lock. So a
// breaker first takes a second exclusive file, the break file
// ".<mbox>.lock-break" (a hidden name: paths.ts reserves those, so no
// mailbox can collide with it), and inside it checks that the lock path
// still names the very file it judged (device, inode, mtime to the
// nanosecond, size and content) before unlinking it. Whoever comes second
// sees another file, or none, and breaks nothing. The break file is held
// for a few synchronous system calls. A breaker killed inside that window
// leaves it behind; it is then passed over once older than BREAK_STALE_MS,
// by creating the next one in a numbered series (".lock-break.1", ...)
// rather than by removing it: nobody ever removes a break file but the
// process that created it, so two breakers can never both believe they hold
// the same one. (What remains are the assumptions every lease makes: a
// breaker is not frozen for BREAK_STALE_MS between two system calls, and a
// holder that does not refresh its lock, as mutt and procmail do not, is
// done within staleMs.)
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
// write a line, stat, unlink; no fsync) and are done synchronously: they cost
// microseconds, whereas through the thread pool each one waits for a turn of
// the event loop behind every other session's socket traffic, which made a
// busy server spend longer taking the lock than writing the mail. Waiting for
// another process's lock stays asynchronous (sleeps between attempts).

import type { BigIntStats } from 'node:fs';
import { closeSync, fstatSync, futimesSync, openSync, readFileSync, readSync, readlinkSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { isDiskFull } from './disk-full.ts';

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
/** A break file is held for microseconds; one this old was left by a crash. */
export const BREAK_STALE_MS = 5_000;
// Left-behind break files passed over before giving up on breaking.
const BREAK_GENERATIONS = 8;
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

// ---- Who we are: the lock file's content ----

interface Owner {
  pid: number;
  host: string;
  /** "BOOT-ID/PID-NAMESPACE-INODE", or '' where /proc does not tell. */
  pidSpace: string;
}

let self: Owner | null = null;

function thisProcess(): Owner {
  self ??= { pid: process.pid, host: hostname(), pidSpace: readPidSpace() };
  return self;
}

// Linux only; elsewhere there are no PID namespaces to tell apart.
function readPidSpace(): string {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return boot && namespace ? `${boot}/${namespace}` : '';
  } catch {
    return '';
  }
}

/** What this server writes into a lock file (for tests: a lock "by" another PID of ours). */
export function lockFileContent(pid = process.pid): string {
  const { host, pidSpace } = thisProcess();
  return `${pid}:${host}\n` + (pidSpace ? `pidspace=${pidSpace}\n` : '');
}

/** Reads "PID:HOST[\npidspace=...]"; null for anything else (bare PID, empty, junk). */
export function parseLockFile(content: string): Owner | null {
  const match = /^(\d{1,10}):([^\n]+)\n(?:pidspace=([^\n]*)\n)?$/.exec(content);
  if (!match) return null;
  const pid = Number(match[1]);
  return pid > 0 ? { pid, host: match[2], pidSpace: match[3] ?? '' } : null;
}

/**
 * A lock is stale when its mtime is older than `staleMs`, or when it was
 * written in our PID space (same host name, boot and PID namespace) by a
 * PID that is not running. Anything else is only broken by age.
 */
export function isStale(content: string, mtimeMs: number, staleMs: number, now = Date.now()): boolean {
  if (now - mtimeMs > staleMs) return true;
  const owner = parseLockFile(content);
  const me = thisProcess();
  if (!owner || owner.host !== me.host || owner.pidSpace !== me.pidSpace) return false;
  return !isProcessAlive(owner.pid);
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

// ---- Taking and releasing ----

// The lock file we created, kept open so we can refresh its mtime.
interface HeldLock {
  fd: number;
  dev: number;
  ino: number;
  content: string;
}

async function acquireLockFile(lockPath: string, timeoutMs: number, staleMs: number): Promise<HeldLock> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; ) {
    let fd: number;
    try {
      // 'wx' = O_CREAT|O_EXCL: fails with EEXIST if anyone holds the lock.
      fd = openSync(lockPath, 'wx', 0o644);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      if (breakIfStale(lockPath, staleMs)) continue; // retry at once
      const left = deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(lockPath, timeoutMs);
      await sleep(Math.min(lockRetryDelay(attempt++), left));
      continue;
    }
    let content = lockFileContent();
    try {
      writeSync(fd, content);
    } catch (err) {
      if (isDiskFull(err)) {
        // No block left for one line. The empty file still locks (every
        // tool treats an empty lock as held, and breaks it only by age),
        // and reading the mailbox must work on a full disk.
        content = '';
      } else {
        closeSync(fd);
        unlinkQuietly(lockPath);
        throw err;
      }
    }
    const st = fstatSync(fd);
    return { fd, dev: st.dev, ino: st.ino, content };
  }
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
  // Same inode AND our content inside: an inode number alone is not proof, as
  // a filesystem may hand the number of a deleted lock to the next one created.
  try {
    const st = statSync(lockPath);
    if (st.ino === ours.ino && st.dev === ours.dev && readFileSync(lockPath, 'utf8') === ours.content) unlinkSync(lockPath);
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err; // ENOENT: someone broke it; nothing to release
  } finally {
    closeSync(ours.fd);
  }
}

// ---- Breaking a stale lock ----

// What a lock file was when we looked: enough to recognise the very same file.
interface Seen {
  stat: BigIntStats;
  content: string;
}

function look(file: string): Seen | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  try {
    const stat = fstatSync(fd, { bigint: true });
    const buffer = Buffer.alloc(512); // a lock holds one or two short lines
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return { stat, content: buffer.toString('utf8', 0, length) };
  } finally {
    closeSync(fd);
  }
}

function sameFile(a: Seen, b: Seen): boolean {
  return (
    a.stat.dev === b.stat.dev && a.stat.ino === b.stat.ino && a.stat.mtimeNs === b.stat.mtimeNs && a.stat.size === b.stat.size && a.content === b.content
  );
}

/**
 * Removes the lock file if it is abandoned (see the header). Returns true
 * if it is gone or changed (try to take it again at once), false if it is
 * held (wait).
 */
function breakIfStale(lockPath: string, staleMs: number): boolean {
  const judged = look(lockPath);
  if (!judged) return true; // released meanwhile
  if (!isStale(judged.content, Number(judged.stat.mtimeMs), staleMs)) return false;
  return withBreakFile(lockPath, () => {
    const now = look(lockPath);
    if (now && sameFile(now, judged)) {
      try {
        unlinkSync(lockPath);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    return true; // broken by us, by someone else, or replaced: look again
  });
}

/** The break file of a lock, generation `n` (see the header). */
export function breakFilePath(lockPath: string, n = 0): string {
  const name = `.${path.basename(lockPath)}-break${n === 0 ? '' : '.' + n}`;
  return path.join(path.dirname(lockPath), name);
}

// Runs `fn` holding a break file; returns false without running it while
// another process holds one (it is breaking the lock right now).
function withBreakFile(lockPath: string, fn: () => boolean): boolean {
  for (let n = 0; n < BREAK_GENERATIONS; ) {
    const breakPath = breakFilePath(lockPath, n);
    let fd: number;
    try {
      fd = openSync(breakPath, 'wx', 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err;
      let mtimeMs: number;
      try {
        mtimeMs = statSync(breakPath).mtimeMs;
      } catch (statErr) {
        if (isErrno(statErr, 'ENOENT')) continue; // just released: try it again
        throw statErr;
      }
      if (Date.now() - mtimeMs <= BREAK_STALE_MS) return false; // someone is breaking
      n++; // left behind by a crash: pass it over, never remove it
      continue;
    }
    closeSync(fd);
    try {
      return fn();
    } finally {
      unlinkQuietly(breakPath); // ours: nobody else removes a break file
    }
  }
  return false;
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone, or the error that brought us here matters more
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
