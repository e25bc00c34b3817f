// An account's folders (RFC 3501 6.3: CREATE, DELETE, RENAME, LIST,
// SUBSCRIBE), as files mutt can open one by one.
//
// Layout: Thunderbird's own for local mbox folders, so a folder can hold
// both messages and subfolders (Thunderbird and K-9 create such):
//   mail/<account>/INBOX                 the inbox (mbox)
//   mail/<account>/Sent                  a folder (mbox)
//   mail/<account>/Archive               a folder that also has children ...
//   mail/<account>/Archive.sbd/2024      ... which live in Archive.sbd/
//   mail/<account>/.subscriptions        subscribed names (subscriptions.ts)
//   mail/<account>/.<name>.index         side index of <name>; .<name>.flags its flag journal
// A ".sbd" directory without its mbox file is a folder that holds only
// subfolders (\Noselect). Names and their rules: folder-names.ts. DELETE and
// RENAME are crash-safe (folder-changes.ts); every function here first
// completes one a crash interrupted. Folder operations of one account run
// one at a time in this process.

import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, unlink } from 'node:fs/promises';
import type { Dirent } from 'node:fs';
import * as path from 'node:path';
import { isDiskFull } from './disk-full.ts';
import { withProcessMutex } from './dotlock.ts';
import { exists, recoverFolders, runIntent, sidecars } from './folder-changes.ts';
import type { FolderHooks } from './folder-changes.ts';
import { collisionKey, componentOfEntry, DELIMITER, folderPath, isInbox, splitName, SUBFOLDER_SUFFIX } from './folder-names.ts';
import { updateIndexLocked } from './mbox-index.ts';
import { fsyncDirectory } from './safeio.ts';
import { FolderExistsError, FolderHasChildrenError, InvalidMailboxNameError, NoSuchFolderError, NotEnoughSpaceError, TooManyFoldersError } from './store-errors.ts';
import { MAX_SUBSCRIPTIONS, readSubscriptions, subscriptionsPath, writeSubscriptions } from './subscriptions.ts';

export { canonicalName, DELIMITER, folderPath, isInbox } from './folder-names.ts';
export { FolderExistsError, FolderHasChildrenError, InvalidMailboxNameError, NoSuchFolderError, NotEnoughSpaceError, TooManyFoldersError };
export type { FolderHooks };

/** One folder, for LIST (RFC 3501 6.3.8, RFC 3348 children, RFC 6154 special use). */
export interface FolderEntry {
  name: string;
  /** False for a folder that only holds subfolders (\Noselect). */
  selectable: boolean;
  hasChildren: boolean;
  /** RFC 6154: `\Sent` `\Drafts` `\Trash` `\Junk` `\Archive`, or null. */
  specialUse: string | null;
}

/** Folders an account may have; CREATE beyond it fails. */
export const MAX_FOLDERS = 1000;

/** RFC 6154 attributes of the top-level folders ensureDefaultFolders makes. */
const SPECIAL_USE: Record<string, string> = { Sent: '\\Sent', Drafts: '\\Drafts', Trash: '\\Trash', Junk: '\\Junk', Archive: '\\Archive' };
const DEFAULT_FOLDERS = ['Sent', 'Drafts', 'Trash', 'Junk', 'Archive'];

// ---- One operation at a time per account ----

async function withAccount<T>(accountDir: string, hooks: FolderHooks, fn: () => Promise<T>): Promise<T> {
  return withProcessMutex(`folders:${path.resolve(accountDir)}`, async () => {
    try {
      await recoverFolders(accountDir, hooks);
      return await fn();
    } catch (err) {
      if (isDiskFull(err) && !(err instanceof NotEnoughSpaceError)) throw new NotEnoughSpaceError('not enough disk space for this folder operation', err as NodeJS.ErrnoException);
      throw err;
    }
  });
}

// ---- LIST ----

/** Every folder of the account, INBOX first, then by name; INBOX always. */
export async function listFolders(accountDir: string): Promise<FolderEntry[]> {
  return withAccount(accountDir, {}, () => list(accountDir));
}

async function list(accountDir: string): Promise<FolderEntry[]> {
  const found: FolderEntry[] = [];
  await walk(accountDir, '', 0, found);
  if (!found.some((f) => f.name === 'INBOX')) found.push({ name: 'INBOX', selectable: true, hasChildren: false, specialUse: null });
  return found.sort((a, b) => (a.name === 'INBOX' ? -1 : b.name === 'INBOX' ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// The folders in `dir` (whose names start with `prefix`), and below.
// Returns how many were found, so a parent knows whether it has children.
async function walk(dir: string, prefix: string, depth: number, found: FolderEntry[]): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return 0;
    throw err;
  }
  const here = new Map<string, { file: boolean; dir: boolean }>();
  for (const entry of entries) {
    if (!entry.isFile() && !entry.isDirectory()) continue; // links and the rest: never followed
    const component = componentOfEntry(entry.name, entry.isDirectory());
    if (component === null) continue;
    // At the top, only the file "INBOX" is the inbox; "inbox" written by
    // another program would be a second INBOX to a client.
    if (depth === 0 && isInbox(component) && component !== 'INBOX') continue;
    const seen = here.get(component) ?? { file: false, dir: false };
    if (entry.isDirectory()) seen.dir = true;
    else seen.file = true;
    here.set(component, seen);
  }
  let count = 0;
  for (const [component, seen] of here) {
    if (found.length >= 2 * MAX_FOLDERS) break; // a tree someone else grew: list what fits
    const name = prefix + component;
    const entry: FolderEntry = { name, selectable: seen.file, hasChildren: false, specialUse: depth === 0 ? (SPECIAL_USE[component] ?? null) : null };
    found.push(entry);
    count++;
    if (seen.dir && depth + 1 < 16) entry.hasChildren = (await walk(path.join(dir, component + SUBFOLDER_SUFFIX), name + DELIMITER, depth + 1, found)) > 0;
  }
  return count;
}

// ---- CREATE ----

/**
 * CREATE (RFC 3501 6.3.3): an empty folder, and its missing parents as
 * empty folders too. A name ending in "/" makes a folder for subfolders
 * only (\Noselect), as Dovecot's mbox storage does.
 */
export async function createFolder(accountDir: string, name: string, hooks: FolderHooks = {}): Promise<void> {
  const forChildrenOnly = name.endsWith(DELIMITER) && name.length > 1;
  const components = splitName(forChildrenOnly ? name.slice(0, -1) : name);
  if (components.length === 1 && components[0] === 'INBOX' && !forChildrenOnly) throw new FolderExistsError('INBOX always exists');
  await withAccount(accountDir, hooks, async () => {
    if ((await list(accountDir)).length >= MAX_FOLDERS) throw new TooManyFoldersError(`at most ${MAX_FOLDERS} folders`);
    await makeFolder(accountDir, components, forChildrenOnly ? 'children' : 'mbox');
  });
}

// Creates the folder components[0..n-1] and, as needed, its parents (as
// empty folders with a subfolder directory). `last` says what the last
// component becomes: an mbox ('mbox', FolderExistsError if there is one), a
// subfolder directory only ('children'), or a parent like the others
// ('parent': whatever is there is kept).
async function makeFolder(accountDir: string, components: string[], last: 'mbox' | 'children' | 'parent'): Promise<void> {
  await mkdir(accountDir, { recursive: true, mode: 0o700 });
  const fullName = components.join(DELIMITER);
  let dir = accountDir;
  for (let i = 0; i < components.length; i++) {
    const component = components[i];
    const role = i < components.length - 1 ? 'parent' : last;
    await refuseCaseTwin(dir, component);
    const file = path.join(dir, component);
    if (role === 'mbox') {
      if (!(await createEmptyMbox(file, true))) throw new FolderExistsError(`folder exists: ${fullName}`);
      return;
    }
    // A parent that does not exist at all becomes an empty, selectable folder.
    if (role === 'parent' && !(await exists(file)) && !(await exists(file + SUBFOLDER_SUFFIX))) await createEmptyMbox(file, true);
    const made = await makeDir(file + SUBFOLDER_SUFFIX);
    if (role === 'children' && !made) throw new FolderExistsError(`folder exists: ${fullName}`);
    if (made) await fsyncDirectory(dir);
    dir = file + SUBFOLDER_SUFFIX;
  }
}

// Another spelling of the same name in `dir` ("Work" when asked for "WORK").
async function refuseCaseTwin(dir: string, component: string): Promise<void> {
  const key = collisionKey(component);
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[])) {
    const other = componentOfEntry(entry.name, entry.isDirectory()) ?? (entry.name.startsWith('.') ? null : entry.name);
    if (other !== null && other !== component && collisionKey(other) === key) {
      throw new FolderExistsError(`a folder "${other}" exists; names may not differ only in case`);
    }
  }
}

// Creates an empty mbox (0600) and its name durably; false if it existed.
// An old index of a folder once deleted by another program goes with it.
async function createEmptyMbox(file: string, clearSidecars: boolean): Promise<boolean> {
  try {
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
    await handle.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  if (clearSidecars) for (const side of sidecars(file)) await unlink(side).catch(() => {});
  await fsyncDirectory(path.dirname(file));
  return true;
}

async function makeDir(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { mode: 0o700 });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      if (!(await lstat(dir)).isDirectory()) throw new FolderExistsError(`not a directory: ${dir}`);
      return false;
    }
    throw err;
  }
}

// ---- DELETE ----

/**
 * DELETE (RFC 3501 6.3.4): the folder's mbox and its index go. INBOX
 * cannot be deleted; a folder with subfolders is refused, as Dovecot's
 * mbox storage does (FolderHasChildrenError). Sessions that have it open
 * get the event 'gone'.
 */
export async function deleteFolder(accountDir: string, name: string, hooks: FolderHooks = {}): Promise<void> {
  const canonical = splitName(name).join(DELIMITER);
  if (canonical === 'INBOX') throw new InvalidMailboxNameError('INBOX cannot be deleted (RFC 3501 6.3.4)');
  await withAccount(accountDir, hooks, async () => {
    const file = folderPath(accountDir, canonical);
    const [isFile, isDir] = [await exists(file), await exists(file + SUBFOLDER_SUFFIX)];
    if (!isFile && !isDir) throw new NoSuchFolderError(`no such folder: ${canonical}`);
    const children: FolderEntry[] = [];
    if (isDir) await walk(file + SUBFOLDER_SUFFIX, canonical + DELIMITER, 1, children);
    if (children.length > 0) throw new FolderHasChildrenError(`folder has subfolders: ${canonical}`);
    await runIntent(accountDir, canonical, async () => ({ op: 'delete', name: canonical }), hooks);
  });
}

// ---- RENAME ----

/**
 * RENAME (RFC 3501 6.3.5): moves the mbox, its index and journals and its
 * subfolders. Renaming INBOX moves its messages to the new folder and
 * leaves an empty INBOX (its subfolders stay). Missing parents of the new
 * name are created. Crash-safe (folder-changes.ts).
 */
export async function renameFolder(accountDir: string, from: string, to: string, hooks: FolderHooks = {}): Promise<void> {
  const source = splitName(from).join(DELIMITER);
  const target = splitName(to);
  const targetName = target.join(DELIMITER);
  if (targetName === 'INBOX') throw new FolderExistsError('INBOX always exists');
  if (targetName === source) throw new FolderExistsError(`folder exists: ${targetName}`);
  const inbox = source === 'INBOX';
  if (!inbox && targetName.startsWith(source + DELIMITER)) throw new InvalidMailboxNameError('a folder cannot be moved into itself');
  await withAccount(accountDir, hooks, async () => {
    const sourceFile = folderPath(accountDir, source);
    const targetFile = folderPath(accountDir, targetName);
    if (!inbox && !(await exists(sourceFile)) && !(await exists(sourceFile + SUBFOLDER_SUFFIX))) throw new NoSuchFolderError(`no such folder: ${source}`);
    if ((await exists(targetFile)) || (await exists(targetFile + SUBFOLDER_SUFFIX))) throw new FolderExistsError(`folder exists: ${targetName}`);
    if ((await list(accountDir)).length >= MAX_FOLDERS) throw new TooManyFoldersError(`at most ${MAX_FOLDERS} folders`);
    // The new name's parents, and a check that no sibling differs only in case.
    if (target.length > 1) await makeFolder(accountDir, target.slice(0, -1), 'parent');
    await refuseCaseTwin(path.dirname(targetFile), target[target.length - 1]);
    // Store files left by a folder of that name deleted behind our back.
    for (const side of sidecars(targetFile)) await unlink(side).catch(() => {});
    if (inbox) {
      await mkdir(accountDir, { recursive: true, mode: 0o700 });
      if (!(await exists(sourceFile))) await createEmptyMbox(sourceFile, false); // nothing delivered yet: move an empty one
    }
    await runIntent(accountDir, source, async () => {
      // Under INBOX's lock: its index, current, moves with its mail, and the
      // new INBOX goes on from its UIDNEXT.
      const index = inbox ? (await updateIndexLocked(sourceFile)).index : null;
      const inboxState = index && { uidValidity: index.uidValidity, uidNext: index.uidNext, highestModseq: index.highestModseq };
      return { op: 'rename', from: source, to: targetName, inbox: inboxState };
    }, hooks);
  });
}

// ---- Subscriptions and defaults ----

/** LSUB (RFC 3501 6.3.9): the subscribed names. */
export async function subscriptions(accountDir: string): Promise<Set<string>> {
  return withAccount(accountDir, {}, async () => (await readSubscriptions(accountDir)) ?? new Set());
}

/** SUBSCRIBE / UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7): any valid name, existing or not. */
export async function setSubscribed(accountDir: string, name: string, on: boolean): Promise<void> {
  const canonical = splitName(name).join(DELIMITER);
  await withAccount(accountDir, {}, async () => {
    const names = (await readSubscriptions(accountDir)) ?? new Set<string>();
    if (names.has(canonical) === on) return;
    if (on && names.size >= MAX_SUBSCRIPTIONS) throw new TooManyFoldersError(`at most ${MAX_SUBSCRIPTIONS} subscriptions`);
    if (on) names.add(canonical);
    else names.delete(canonical);
    await mkdir(accountDir, { recursive: true, mode: 0o700 });
    await writeSubscriptions(accountDir, names);
  });
}

/**
 * At every login: the first time, INBOX and the RFC 6154 folders (Sent,
 * Drafts, Trash, Junk, Archive) are created and subscribed. The
 * subscription file marks it done, so a folder the user deletes is not
 * made again.
 */
export async function ensureDefaultFolders(accountDir: string): Promise<void> {
  await withAccount(accountDir, {}, async () => {
    if (await exists(subscriptionsPath(accountDir))) return;
    await mkdir(accountDir, { recursive: true, mode: 0o700 });
    await createEmptyMbox(path.join(accountDir, 'INBOX'), false);
    const made = ['INBOX'];
    for (const name of DEFAULT_FOLDERS) {
      try {
        await makeFolder(accountDir, [name], 'mbox');
        made.push(name);
      } catch (err) {
        if (!(err instanceof FolderExistsError)) throw err;
        if (await exists(path.join(accountDir, name))) made.push(name); // there already, in this spelling
      }
    }
    await writeSubscriptions(accountDir, made);
  });
}
