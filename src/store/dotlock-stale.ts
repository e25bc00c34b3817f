// Who holds a dot-lock, and breaking a lock its holder abandoned (see
// dotlock.ts for taking and releasing one).
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

import type { BigIntStats } from 'node:fs';
import { closeSync, fstatSync, openSync, readFileSync, readlinkSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import * as path from 'node:path';
import { readIntoSync } from './file-io.ts';

/** A break file is held for microseconds; one this old was left by a crash. */
export const BREAK_STALE_MS = 5_000;
// Left-behind break files passed over before giving up on breaking.
const BREAK_GENERATIONS = 8;

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

// ---- Breaking a stale lock ----

// What a lock file was when we looked: enough to recognise the very same file.
interface Seen {
  stat: BigIntStats;
  content: string;
}

/** The lock file's stat and content (its first 512 bytes); null if there is none. Throws other errors. */
export function look(file: string): Seen | null {
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
    const length = readIntoSync(fd, buffer, buffer.length, 0);
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
export function breakIfStale(lockPath: string, staleMs: number): boolean {
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

/** unlink(2), ignoring failure: the file is already gone, or the error that brought us here matters more. */
export function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // (see above)
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}
