// DELETE and RENAME of folders, crash-safely.
//
// Both change several files: a folder is its mbox, its side index, its flag
// and append journals, its message cache and its subfolder directory, and renaming INBOX also
// makes a new, empty INBOX (RFC 3501 6.3.5). A crash half-way must not leave
// a folder whose index describes another file, or mail nobody can reach.
// So, holding the folder's dot-lock (no delivery, expunge or append runs):
//  1. an intent file, "<account>/.folders-intent", is written and fsync'd
//     (safeio.ts): what is being done, and for INBOX the UIDVALIDITY and
//     UIDNEXT its new empty index must keep;
//  2. the steps run, each one idempotent: a rename(2) of a file that is
//     still at its old name, an unlink of a file that is still there;
//  3. the directories are fsync'd and the intent file removed.
// Every call into folders.ts first completes an intent left by a crash
// (rolls it forward: the steps again, skipping what was done), so the next
// LIST, CREATE, DELETE or RENAME finds a consistent account.
//
// Steps never overwrite mail: an mbox or subfolder directory is moved only
// if nothing is at the new name (the caller checked it was free before the
// intent was written).

import { constants } from 'node:fs';
import { lstat, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import { journalPathFor } from './append-journal.ts';
import { withMailboxLock } from './dotlock.ts';
import { flagJournalPathFor } from './flag-journal.ts';
import { folderPath, SUBFOLDER_SUFFIX } from './folder-names.ts';
import { mailboxGone, mailboxReplaced } from './mailbox-registry.ts';
import { emptyIndex, indexPathFor, saveIndex } from './mbox-index.ts';
import { cachePathFor } from './message-cache-file.ts';
import { fsyncDirectory, writeFileAtomic } from './safeio.ts';
import { readSubscriptions, renamedSubscriptions, writeSubscriptions } from './subscriptions.ts';

/** What a folder operation was doing, as written before its first step. */
export type Intent =
  | { op: 'delete'; name: string }
  | { op: 'rename'; from: string; to: string; inbox: { uidValidity: number; uidNext: number; highestModseq: number } | null };

/** For tests: called after each step; a throw stops the operation there, as a crash would. */
export interface FolderHooks {
  afterStep?: (step: string) => void | Promise<void>;
  lockTimeoutMs?: number;
}

const INTENT_FILE = '.folders-intent';

export function intentPath(accountDir: string): string {
  return path.join(accountDir, INTENT_FILE);
}

/** Completes an operation a crash interrupted, if any (see the header). */
export async function recoverFolders(accountDir: string, hooks: FolderHooks = {}): Promise<void> {
  let text: string;
  try {
    text = await readFile(intentPath(accountDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  let intent: Intent | null = null;
  try {
    intent = JSON.parse(text) as Intent;
  } catch {
    // Written atomically, so never torn; anything else is not ours to act on.
  }
  if (intent?.op !== 'delete' && intent?.op !== 'rename') return clearIntent(accountDir);
  try {
    folderPath(accountDir, intent.op === 'delete' ? intent.name : intent.from);
    if (intent.op === 'rename') folderPath(accountDir, intent.to);
  } catch {
    return clearIntent(accountDir); // names we would never have written
  }
  await carryOut(accountDir, intent, hooks);
}

/**
 * Writes the intent `makeIntent` gives (it runs under the folder's lock),
 * carries it out, and clears it. The caller holds the account's folder
 * mutex and names the folder whose lock to take.
 */
export async function runIntent(accountDir: string, lockedFolder: string, makeIntent: () => Promise<Intent>, hooks: FolderHooks = {}): Promise<void> {
  let intent: Intent | null = null;
  await locked(folderPath(accountDir, lockedFolder), hooks, async () => {
    intent = await makeIntent();
    await writeFileAtomic(intentPath(accountDir), JSON.stringify(intent), { mode: 0o600 });
    // From here on, sessions on the folder change nothing (they wait for this lock, then find it gone).
    if (intent.op === 'delete' || !intent.inbox) await mailboxGone(folderPath(accountDir, lockedFolder), true);
    await hooks.afterStep?.('intent');
    await steps(accountDir, intent, hooks);
  });
  await finish(accountDir, intent!, hooks);
}

async function carryOut(accountDir: string, intent: Intent, hooks: FolderHooks): Promise<void> {
  const source = folderPath(accountDir, intent.op === 'delete' ? intent.name : intent.from);
  await locked(source, hooks, () => steps(accountDir, intent, hooks));
  await finish(accountDir, intent, hooks);
}

// The dot-lock of the folder's mbox, if its directory still exists (a
// rolled-forward rename may have moved the directory it would be in).
async function locked(mboxPath: string, hooks: FolderHooks, fn: () => Promise<void>): Promise<void> {
  if (!(await exists(path.dirname(mboxPath)))) return fn();
  await withMailboxLock(mboxPath, fn, { timeoutMs: hooks.lockTimeoutMs });
}

async function steps(accountDir: string, intent: Intent, hooks: FolderHooks): Promise<void> {
  const step = async (name: string) => hooks.afterStep?.(name);
  if (intent.op === 'delete') {
    const file = folderPath(accountDir, intent.name);
    await unlinkIfPresent(file);
    await step('mbox');
    for (const side of sidecars(file)) await unlinkIfPresent(side);
    await removeStaleTemporaries(file);
    await step('sidecars');
    await removeSubfolderDir(file + SUBFOLDER_SUFFIX);
    await step('subfolders');
    await fsyncDirectory(path.dirname(file));
    return;
  }
  const from = folderPath(accountDir, intent.from);
  const to = folderPath(accountDir, intent.to);
  const fromSides = sidecars(from);
  const toSides = sidecars(to);
  // Once INBOX's mail has moved, the files at its name are the new INBOX's:
  // a second run must not move those.
  const mailMoved = intent.inbox !== null && (await exists(to));
  if (!mailMoved) {
    for (let i = 0; i < fromSides.length; i++) {
      await renameIfPresent(fromSides[i], toSides[i], true);
      await step(`sidecar ${path.basename(fromSides[i])}`);
    }
    await renameIfPresent(from, to, false);
    await step('mbox');
  }
  if (!intent.inbox) {
    await renameIfPresent(from + SUBFOLDER_SUFFIX, to + SUBFOLDER_SUFFIX, false);
    await step('subfolders');
  } else {
    // RFC 3501 6.3.5: INBOX stays, empty. It keeps its UIDVALIDITY and goes
    // on from its UIDNEXT, so no UID a client has seen names another message.
    await createEmptyFile(from);
    await step('new inbox');
    if (!(await exists(indexPathFor(from)))) {
      const { uidValidity, uidNext, highestModseq } = intent.inbox;
      const index = { ...emptyIndex(uidValidity), uidNext, highestModseq: highestModseq + 1, recentUid: uidNext };
      index.mboxMtimeMs = (await stat(from)).mtimeMs;
      await saveIndex(from, index);
    }
    await step('new inbox index');
  }
  await fsyncDirectory(path.dirname(from));
  if (path.dirname(to) !== path.dirname(from)) await fsyncDirectory(path.dirname(to));
}

// After the steps, outside the lock: sessions are told, subscriptions
// follow a rename, and the intent goes.
async function finish(accountDir: string, intent: Intent, hooks: FolderHooks): Promise<void> {
  if (intent.op === 'delete') {
    await mailboxGone(folderPath(accountDir, intent.name), true);
  } else {
    const from = folderPath(accountDir, intent.from);
    await mailboxGone(folderPath(accountDir, intent.to), true); // sessions that opened the name before it existed
    if (intent.inbox) {
      await mailboxReplaced(from);
    } else {
      await mailboxGone(from, true);
      const names = await readSubscriptions(accountDir);
      const renamed = names && renamedSubscriptions(names, intent.from, intent.to);
      if (renamed) await writeSubscriptions(accountDir, renamed);
    }
    await hooks.afterStep?.('subscriptions');
  }
  await clearIntent(accountDir);
}

async function clearIntent(accountDir: string): Promise<void> {
  try {
    await unlink(intentPath(accountDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return;
  }
  await fsyncDirectory(accountDir);
}

/** The store's files that belong to an mbox: index, flag journal, append journal, message cache (and a compaction's new one). */
export function sidecars(mboxPath: string): string[] {
  const cache = cachePathFor(mboxPath);
  return [indexPathFor(mboxPath), flagJournalPathFor(mboxPath), journalPathFor(mboxPath), cache, `${cache}.new`];
}

async function renameIfPresent(from: string, to: string, replace: boolean): Promise<void> {
  if (!(await exists(from))) return;
  if (!replace && (await exists(to))) return; // never over mail: leave both for an admin
  await rename(from, to);
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

async function createEmptyFile(file: string): Promise<void> {
  try {
    const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0), 0o600);
    await handle.close();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

// An expunge killed before its rename leaves ".<name>.expunge-<pid>".
async function removeStaleTemporaries(mboxPath: string): Promise<void> {
  const prefix = `.${path.basename(mboxPath)}.expunge-`;
  const dir = path.dirname(mboxPath);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix)) await unlinkIfPresent(path.join(dir, name));
  }
}

// A subfolder directory with no folders left in it holds at most the
// store's files of folders deleted long ago: remove them and it. Never
// follows a link, never descends.
async function removeSubfolderDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    if (!(await lstat(dir)).isDirectory()) return;
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of entries) {
    const entry = path.join(dir, name);
    if (!(await lstat(entry)).isDirectory()) await unlinkIfPresent(entry);
  }
  try {
    await rmdir(dir);
  } catch (err) {
    // Something that is no folder of ours (a directory someone made by
    // hand): leave it, rather than fail every later folder operation.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
