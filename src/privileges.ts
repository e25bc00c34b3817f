// Root, and how the programs stop being it.
//
// Ports below 1024 (25, 465, 587, 993, ...) can only be bound by root, but a
// mail server parses strangers' input and must never read a byte of it as
// root. So a server started as root goes, in this order (main.ts):
//
//   1. bind     as root: the listening sockets. The kernel completes incoming
//               connections, but they wait unread (wire/listener.ts).
//   2. prepare  as root: the data directory must belong to the runAs user.
//               If it is missing we create it, one directory, and give it
//               away through its descriptor. We never walk or chown a tree:
//               the runAs user controls what is inside, and a symlink put
//               there would send root's chown anywhere. A directory that
//               belongs to someone else stops the start, saying what to run.
//   3. drop     become the runAs user: groups first, uid last (a process
//               that is no longer root cannot change its groups).
//   4. accept   as that user: accounts, certificates, files, and only now
//               are the waiting connections read.
//
// The relay (relay/main.ts) does steps 2 and 3 the same way, and adduser and
// the certbot hook become the owner of the data directory before writing
// into it, so every file there belongs to the user the server runs as.
//
// Started as root with no user to become, we refuse to run unless the config
// says so explicitly. Files are private: the umask removes group and other
// permissions (mbox files 0600, directories 0700).

import { mkdir, open, readdir, lstat } from 'node:fs/promises';
import { accessSync, statSync, constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

/** The process calls we make, injectable so tests need not be root. */
export interface ProcessIdentity {
  getuid(): number;
  setuid(id: number | string): void;
  setgid(id: number | string): void;
  initgroups?(user: number | string, extraGroup: number | string): void;
}

export interface RunAs {
  user: string;
  group: string;
  allowRoot: boolean;
}

export interface Ids {
  uid: number;
  gid: number;
}

export class PrivilegeError extends Error {}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Make new files private: u=rw, no group or other bits. */
export function restrictUmask(): void {
  process.umask(0o077);
}

/**
 * Steps 2 and 3 for a program started as root: the data directory is made
 * ready for the runAs user, `beforeDrop` runs (the server starts the relay
 * there), then we become that user. Returns 'not-root', 'dropped' or
 * 'kept-root' (only when runAs.allowRoot is set), for the log.
 */
export async function leaveRoot(runAs: RunAs, dataDir: string, beforeDrop?: () => void): Promise<string> {
  if (isRoot() && runAs.user) await prepareDataDir(dataDir, lookupIds(runAs.user, runAs.group), runAs.user);
  beforeDrop?.();
  const outcome = dropPrivileges(runAs);
  if (outcome === 'dropped') await checkDataDirIsOurs(dataDir, runAs.user);
  return outcome;
}

/** Step 3. Returns 'not-root', 'dropped', or 'kept-root' (only when allowRoot is set). */
export function dropPrivileges(runAs: RunAs, identity: ProcessIdentity = process as ProcessIdentity): string {
  if (identity.getuid() !== 0) return 'not-root';
  if (!runAs.user) {
    if (runAs.allowRoot) return 'kept-root';
    throw new PrivilegeError('refusing to run as root: set runAs.user (and runAs.group) in the config, or runAs.allowRoot');
  }
  const group = runAs.group || runAs.user;
  // Order matters: supplementary groups and gid while we still may, uid last.
  identity.initgroups?.(runAs.user, group);
  identity.setgid(group);
  identity.setuid(runAs.user);
  if (identity.getuid() === 0) throw new PrivilegeError('still root after setuid');
  return 'dropped';
}

/** Numeric uid/gid of a user and group, through id(1) and getent(1). */
export function lookupIds(user: string, group: string): Ids {
  const ask = (command: string, args: string[]) => {
    try {
      return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return ''; // not found: reported below, naming what is missing
    }
  };
  const uid = Number.parseInt(ask('id', ['-u', user]).trim(), 10);
  const gid = Number.parseInt(ask('getent', ['group', group || user]).split(':')[2] ?? '', 10);
  if (!Number.isInteger(uid)) throw new PrivilegeError(`runAs.user "${user}" does not exist on this system: create it or set runAs`);
  if (!Number.isInteger(gid)) throw new PrivilegeError(`runAs.group "${group || user}" does not exist on this system: create it or set runAs`);
  return { uid, gid };
}

/**
 * Step 2, as root: create the data directory for `ids` if it is missing;
 * otherwise check that it belongs to them. Returns 'created' or 'exists'.
 */
export async function prepareDataDir(dataDir: string, ids: Ids, user: string): Promise<'created' | 'exists'> {
  if (await createDataDir(dataDir, ids)) return 'created';
  const info = await lstat(dataDir).catch(() => null);
  // A link named in the config is the administrator's choice: look at its target.
  const target = info?.isSymbolicLink() ? statSync(dataDir) : info;
  if (!target?.isDirectory()) throw new PrivilegeError(`the data directory ${dataDir} is not a directory`);
  if (target.uid !== ids.uid) {
    throw new PrivilegeError(
      `the data directory ${dataDir} belongs to uid ${target.uid}, not to ${user} (uid ${ids.uid}), the user the server runs as. ` +
        `If that is the right directory, run: chown -R ${user}: ${dataDir}`,
    );
  }
  return 'exists';
}

/**
 * Create `dir` (mode 0700) owned by `ids`, if it does not exist; true if it
 * was created. Its parent must exist. The ownership is given through a
 * descriptor opened without following links, so what changes owner is the
 * directory we just made and nothing a link points to.
 */
export async function createDataDir(dir: string, ids: Ids): Promise<boolean> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT') throw new PrivilegeError(`cannot create the data directory ${dir}: ${dirname(dir)} does not exist`);
    throw err;
  }
  const handle = await open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  try {
    await handle.chown(ids.uid, ids.gid);
  } finally {
    await handle.close();
  }
  return true;
}

/**
 * After the drop: we can use the data directory, and what sits at its top
 * (passwd, mail/, queue/, tls/, ...) is ours. One directory listing, not a
 * walk; it catches a data directory under /root and files an administrator
 * made as root, and names the path to fix.
 */
export async function checkDataDirIsOurs(dataDir: string, user: string): Promise<void> {
  checkDataDirReachable(dataDir, user);
  const uid = process.getuid?.();
  for (const name of await readdir(dataDir)) {
    if (name === 'lost+found') continue; // the file system's own, when the data directory is a mount point
    const path = join(dataDir, name);
    const info = await lstat(path);
    if (info.uid !== uid) {
      throw new PrivilegeError(`${path} belongs to uid ${info.uid}, not to ${user}, the user the server runs as: run: chown -R ${user}: ${dataDir}`);
    }
  }
}

/** The data directory can be used by `user`, whom we are now (a directory under /root cannot). */
export function checkDataDirReachable(dataDir: string, user: string): void {
  try {
    accessSync(dataDir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !isRoot()) return; // made later, by us
    throw new PrivilegeError(
      `user ${user} cannot use the data directory ${dataDir} (it, or a directory above it, is closed to ${user}): ` +
        `choose a dataDir ${user} can reach, or leave dataDir unset to use the system directory`,
    );
  }
}

/**
 * For programs an administrator runs as root against the data directory
 * (adduser, the certbot hook): become the directory's owner, so that what
 * they write belongs to the user the server runs as, and root never writes
 * into a directory another user controls. Not root, or a directory that
 * root owns or that does not exist: nothing changes. Returns the uid we run as.
 */
export function becomeOwnerOf(dir: string): number {
  const info = isRoot() ? statSync(dir, { throwIfNoEntry: false }) : undefined;
  if (!info || info.uid === 0) return process.getuid?.() ?? 0;
  const { uid, gid } = info;
  process.setgroups?.([gid]);
  process.setgid?.(gid);
  process.setuid?.(uid);
  if (process.getuid?.() !== uid) throw new PrivilegeError(`could not become uid ${uid}, the owner of ${dir}`);
  return uid;
}
