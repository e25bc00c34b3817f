// Dropping root. Ports below 1024 (25, 465, 587, 993, ...) can only be bound
// by root, but a mail server that parses strangers' input must not keep
// root's powers: once the listeners are bound we become an ordinary user,
// group first (a process that is no longer root cannot change its group).
// Started as root with no user to become, we refuse to run unless the config
// says so explicitly.
//
// Files the server creates are private to that user: the umask removes group
// and other permissions (mbox files 0600, directories 0700).

import { chown, readdir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
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

export class PrivilegeError extends Error {}

/** Make new files private: u=rw, no group or other bits. */
export function restrictUmask(): void {
  process.umask(0o077);
}

/**
 * Called after binding. Returns what was done, for the log:
 * 'not-root', 'dropped', or 'kept-root' (only when allowRoot is set).
 */
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

/** Numeric uid/gid of a user and group, through id(1); used to chown the data directory. */
export function lookupIds(user: string, group: string): { uid: number; gid: number } {
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

/** Give the data directory to the unprivileged user (run as root, before dropping). Links are not followed. */
export async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  const info = await lstat(path);
  if (info.isSymbolicLink()) return;
  await chown(path, uid, gid);
  if (info.isDirectory()) {
    for (const name of await readdir(path)) await chownTree(join(path, name), uid, gid);
  }
}
