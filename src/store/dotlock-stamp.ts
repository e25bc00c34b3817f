// The file a dot-lock is linked from: one per directory, made once.
//
// dotlock.ts makes a lock as liblockfile and Dovecot do: a private file
// that already holds "PID:HOST" is hard-linked to "<mbox>.lock", so the
// lock is never seen empty. Made afresh for every lock (create, write,
// link, unlink), that private file cost an inode allocated and freed per
// lock: under load (bench-smtp --mailboxes 10, about one message per lock)
// the dot-lock was a fifth of the server's CPU. So the private file, the
// "stamp", is made once per directory and kept: taking a lock is one
// link(2) to it, releasing it one unlink(2) of the lock's name. Every lock
// this process holds in that directory is then the same inode with the
// same "PID:HOST" line, which is all a lock says.
//
// A stamp is ".lock-stamp.PID.N" in the mbox's directory (a hidden name:
// paths.ts reserves those). It goes when it has not been used for IDLE_MS
// (so a server at rest holds no file open in the mail tree), when newer
// stamps push it out (at most MAX_STAMPS are kept, each an open file), and
// when the process exits; it is made again when it vanished (a folder
// deleted or renamed took it along with its directory). A stamp that moved
// with a renamed directory, or that a killed process left, is removed when
// a stamp is next made in the directory it is in, if its owner is this
// process or provably dead.
//
// Before each link the stamp's mtime is set to now: a lock is born young,
// never with the age of the stamp's last use (other programs break a lock
// by age).

import { closeSync, fstatSync, futimesSync, linkSync, openSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { isErrno, isStale, look, unlinkQuietly } from './dotlock-stale.ts';
import { writeAllSync } from './file-io.ts';

export interface Stamp {
  readonly path: string;
  readonly fd: number;
  readonly dev: number;
  readonly ino: number;
  /** Locks linked to it and not yet released. */
  holders: number;
  /** No longer in the map: close its fd when the last holder is done. */
  forgotten: boolean;
  /** When its last holder was done (ms). */
  idleSince: number;
}

const MAX_STAMPS = 64;
const IDLE_MS = 30_000;
const PREFIX = '.lock-stamp.';
// By directory, least recently used first.
const stamps = new Map<string, Stamp>();
// Directories whose file system refused a hard link (a FAT card), with the
// error: not tried again (dotlock.ts creates those locks in place).
const refusing = new Map<string, Error>();
let made = 0;
let exitHook = false;
let sweeper: NodeJS.Timeout | null = null;

/**
 * Links this process's stamp in `lockPath`'s directory to `lockPath`:
 * the stamp (its holder counted; give it back with releaseStamp) if the
 * lock is ours, null if someone holds it. Throws what link(2) or making
 * the stamp throws otherwise (EPERM where hard links are not supported:
 * dotlock.ts then creates the lock in place).
 */
export function linkStamp(lockPath: string, content: string): Stamp | null {
  const dir = path.dirname(lockPath);
  const refused = refusing.get(dir);
  if (refused) throw refused;
  for (let attempt = 0; ; attempt++) {
    const stamp = stampOf(dir, content);
    const now = new Date();
    futimesSync(stamp.fd, now, now);
    try {
      linkSync(stamp.path, lockPath);
      stamp.holders++;
      return stamp;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return null;
      forget(stamp);
      // Gone behind our back (its directory deleted or renamed): make it again, once.
      if (isErrno(err, 'ENOENT') && attempt === 0) continue;
      if (!isErrno(err, 'ENOENT')) unlinkQuietly(stamp.path); // (links refused: leave nothing behind)
      if (isErrno(err, 'EPERM') || isErrno(err, 'ENOTSUP') || isErrno(err, 'EOPNOTSUPP')) {
        if (refusing.size >= MAX_STAMPS) refusing.clear();
        refusing.set(dir, err as Error);
      }
      throw err;
    }
  }
}

/** A lock linked from `stamp` is released (its name unlinked or broken). */
export function releaseStamp(stamp: Stamp): void {
  stamp.holders--;
  if (stamp.holders > 0) return;
  stamp.idleSince = Date.now();
  if (stamp.forgotten) closeSync(stamp.fd);
}

function stampOf(dir: string, content: string): Stamp {
  const known = stamps.get(dir);
  if (known) {
    stamps.delete(dir); // (to the end: most recently used)
    stamps.set(dir, known);
    return known;
  }
  for (;;) {
    const file = path.join(dir, `${PREFIX}${process.pid}.${++made}`);
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o644);
    } catch (err) {
      if (isErrno(err, 'EEXIST')) continue; // (another host's PID, over NFS)
      throw err;
    }
    try {
      writeAllSync(fd, Buffer.from(content));
    } catch (err) {
      closeSync(fd);
      unlinkQuietly(file);
      throw err;
    }
    const { dev, ino } = fstatSync(fd);
    const stamp: Stamp = { path: file, fd, dev, ino, holders: 0, forgotten: false, idleSince: Date.now() };
    removeStrays(dir, file, content);
    stamps.set(dir, stamp);
    pushOutOldest();
    if (!exitHook) {
      exitHook = true;
      process.once('exit', removeAllStamps);
    }
    sweeper ??= setInterval(removeIdleStamps, IDLE_MS).unref();
    return stamp;
  }
}

function forget(stamp: Stamp): void {
  for (const [dir, known] of stamps) {
    if (known === stamp) stamps.delete(dir);
  }
  if (stamps.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
  stamp.forgotten = true;
  if (stamp.holders === 0) closeSync(stamp.fd);
}

// Forgets a stamp and removes its file (locks linked to it keep their own names).
function drop(stamp: Stamp): void {
  forget(stamp);
  unlinkQuietly(stamp.path);
}

function pushOutOldest(): void {
  for (const stamp of stamps.values()) {
    if (stamps.size <= MAX_STAMPS) return;
    if (stamp.holders === 0) drop(stamp);
  }
}

/** Removes the stamps no lock has used for `idleMs` (a timer calls it; tests too). */
export function removeIdleStamps(idleMs = IDLE_MS, now = Date.now()): void {
  for (const stamp of [...stamps.values()]) {
    if (stamp.holders === 0 && now - stamp.idleSince >= idleMs) drop(stamp);
  }
}

/** Removes this process's stamps (at exit; tests). */
export function removeAllStamps(): void {
  for (const stamp of [...stamps.values()]) drop(stamp);
}

// Stamps in `dir` other than `ours` whose owner is this process (one that
// came along with a renamed directory) or a dead process of our PID space.
// Not by age: an idle stamp of a live process (the relay's) is old but in use.
function removeStrays(dir: string, ours: string, content: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(PREFIX) || path.join(dir, name) === ours) continue;
    const file = path.join(dir, name);
    let text: string | undefined;
    try {
      text = look(file)?.content; // (its first 512 bytes: a stamp is one or two short lines)
    } catch {
      continue;
    }
    if (text !== undefined && (text === content || isStale(text, Date.now(), Infinity))) unlinkQuietly(file);
  }
}
