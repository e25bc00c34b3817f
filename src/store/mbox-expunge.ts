// Removing messages from an mbox file, crash-safely: POP3's UPDATE state
// (RFC 1939 6: DELE only marks; QUIT removes) and, later, IMAP's EXPUNGE.
//
// An mbox (RFC 4155) is one stream of text, so removing a message means
// writing the file again without it. Writing in place could leave half a
// mailbox after a crash. Instead, under the dot-lock:
//  1. bring the side index up to date (mbox-index.ts), so mail delivered
//     since the caller looked is indexed too, and under its own UIDs;
//  2. copy every byte of the mbox, except each removed message's range,
//     into "<dir>/.<name>.expunge-<pid>" (same directory, so step 4 is a
//     rename within one filesystem); a removed range runs from the message's
//     From line to the next message's (its blank separator goes with it),
//     or to the end of the file for the last message;
//  3. fsync the new file: its bytes are on disk before its name is;
//  4. rename it over the mbox (readers see the old file or the new one,
//     never a mix), then fsync the directory so the rename survives too;
//  5. save the index with the kept messages' offsets shifted (and the flag
//     journal merged into it, flag-journal.ts).
// A crash before 4 leaves the old file untouched (a leftover temporary file
// is harmless and removed by the next expunge). A crash between 4 and 5
// leaves an index that no longer matches the file: the next load rescans
// and the kept messages keep their UIDs through their fingerprints, so
// nothing is lost or shown twice.
//
// Lack of space: step 2 needs room for a copy of everything kept. If it
// fails with ENOSPC or EDQUOT, the temporary file goes, the mbox and its
// index are untouched, and the caller gets a DiskFullError (disk-full.ts)
// to answer with a "try again later" that says why. If only the index
// cannot be saved in step 5, the index is kept in memory (mbox-index.ts):
// the removal has happened and is reported as done.
//
// Invariants:
//  - Removal is by UID, against the index as it is under the lock: a UID
//    that is no longer there (or never was) removes nothing, and a message
//    the caller never saw cannot be removed.
//  - Every byte that is not in a removed range is copied as it is.
//  - The file keeps its permission bits (0600) and, when we run as root,
//    its owner.

import { open, readdir, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { DiskFullError, isDiskFull } from './disk-full.ts';
import { withMailboxLock } from './dotlock.ts';
import { READ_CHUNK_BYTES, readRange, writeAll } from './file-io.ts';
import { openMbox, saveIndex, tailHash, updateIndexLocked } from './mbox-index.ts';
import type { IndexWriter, MailboxIndex } from './mbox-index.ts';
import { MessageTable } from './message-table.ts';
import { fsyncDirectory } from './safeio.ts';

export interface ExpungeResult {
  /** UIDs removed, ascending. */
  removed: number[];
  /** The index after the removal, already saved. */
  index: MailboxIndex;
}

export interface ExpungeOptions {
  lockTimeoutMs?: number;
  /** Clock in milliseconds, for an index that has to be built (see loadIndex). */
  now?: () => number;
  /** For tests: runs after the new file is written, before the rename; a throw aborts. */
  beforeRename?: () => Promise<void>;
  /** For tests: how the copy is written (default writeAll), e.g. failing as a full disk does. */
  writeCopy?: (file: FileHandle, data: Buffer) => Promise<void>;
  /** For tests: how the index file is written (see mbox-index.ts). */
  writeIndex?: IndexWriter;
}

/** The message of the DiskFullError an expunge throws. */
export const EXPUNGE_DISK_FULL = 'not enough disk space to remove messages';

/** Removes the messages with these UIDs from the mbox (see the header). */
export async function expungeMessages(
  mboxPath: string,
  uids: ReadonlySet<number>,
  opts: ExpungeOptions = {},
): Promise<ExpungeResult> {
  return withMailboxLock(
    mboxPath,
    async () => {
      const { index } = await updateIndexLocked(mboxPath, opts);
      return expungeLocked(mboxPath, index, uids, opts);
    },
    { timeoutMs: opts.lockTimeoutMs },
  );
}

/**
 * Steps 2-5 of the header, for a caller that holds the lock and has just
 * brought `index` up to date (the shared mailbox, mailbox.ts). `index` is
 * not changed; the result holds a new one (the same object if nothing was
 * removed).
 */
export async function expungeLocked(mboxPath: string, index: MailboxIndex, uids: ReadonlySet<number>, opts: ExpungeOptions = {}): Promise<ExpungeResult> {
  await removeStaleTempFiles(mboxPath);
  const dropped = removedRanges(index, uids);
  if (dropped.length === 0) return { removed: [], index }; // nothing to rewrite
  const written = await rewriteWithout(mboxPath, dropped, index.mboxSize, opts);
  const next = shiftedIndex(index, dropped);
  next.tailHash = written.tailHash;
  next.mboxMtimeMs = written.mtimeMs;
  await saveIndex(mboxPath, next, opts.writeIndex);
  return { removed: dropped.map((range) => range.uid), index: next };
}

/** The temporary file an expunge writes, next to the mbox. */
export function expungeTempPath(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.expunge-${process.pid}`);
}

// A removed message's bytes [start, end) in the old file.
interface Range {
  uid: number;
  start: number;
  end: number;
}

// Each removed message runs to the next message's From line (taking its
// blank separator along) or, for the last one, to the end of the indexed file.
function removedRanges(index: MailboxIndex, uids: ReadonlySet<number>): Range[] {
  const ranges: Range[] = [];
  const table = index.messages;
  for (const uid of uids) {
    const k = table.find(uid);
    if (k < 0) continue;
    ranges.push({ uid, start: table.offsetAt(k), end: k + 1 < table.length ? table.offsetAt(k + 1) : index.mboxSize });
  }
  return ranges.sort((a, b) => a.start - b.start);
}

// The kept messages, moved up by the bytes removed before them, in a new
// table (a session's snapshot may still show the old one: message-table.ts).
// An expunge is a change too: it takes the next mod-sequence, so that
// HIGHESTMODSEQ moves (RFC 7162 QRESYNC reports expunges by it).
function shiftedIndex(index: MailboxIndex, dropped: Range[]): MailboxIndex {
  const table = index.messages;
  const kept = new MessageTable(table.flags, table.length - dropped.length);
  let shift = 0;
  let d = 0;
  for (let k = 0; k < table.length; k++) {
    if (d < dropped.length && dropped[d].start === table.offsetAt(k)) {
      shift += dropped[d].end - dropped[d].start;
      d++;
      continue;
    }
    kept.pushRowOf(table, k, shift);
  }
  return { ...index, mboxSize: index.mboxSize - shift, highestModseq: index.highestModseq + 1, messages: kept };
}

// Steps 2-4 of the header. Returns what the new index needs about the new file.
async function rewriteWithout(mboxPath: string, dropped: Range[], indexedSize: number, opts: ExpungeOptions): Promise<{ tailHash: string; mtimeMs: number }> {
  const write = opts.writeCopy ?? writeAll;
  const source = await openMbox(mboxPath);
  if (!source) throw new Error(`mbox vanished during expunge: ${mboxPath}`);
  const temp = expungeTempPath(mboxPath);
  let written: { tailHash: string; mtimeMs: number };
  try {
    const original = await source.stat();
    // 'wx+': create exclusively (never follow or reuse a planted file), and
    // readable, for the tail hash below.
    const target = await open(temp, 'wx+', 0o600);
    try {
      await target.chmod(original.mode & 0o7777); // the creation mode passed through the umask
      if (process.getuid?.() === 0) await target.chown(original.uid, original.gid);
      // Keep everything between the removed ranges, and whatever lies past
      // the indexed end (not expected under the lock, but never dropped).
      // Each chunk is written before the next is read, so one buffer serves
      // the whole copy (a 200 MB mailbox in fresh buffers left 200 MB for the collector).
      const block = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      const copyRange = async (start: number, end: number) => {
        // readRange throws if the file is shorter than that: better than a mailbox with a hole.
        for await (const chunk of readRange(source, start, end - start, block)) await write(target, chunk);
      };
      let position = 0;
      for (const range of dropped) {
        await copyRange(position, range.start);
        position = range.end;
      }
      await copyRange(position, original.size);
      await target.sync();
      const removedBytes = dropped.reduce((sum, r) => sum + r.end - r.start, 0);
      // The index covers the new file up to the old indexed end, shifted.
      written = { tailHash: await tailHash(target, indexedSize - removedBytes), mtimeMs: (await target.stat()).mtimeMs };
    } finally {
      await target.close();
    }
    await opts.beforeRename?.();
    await rename(temp, mboxPath);
  } catch (err) {
    await unlink(temp).catch(() => {}); // best effort: the error matters more
    if (isDiskFull(err)) throw new DiskFullError(EXPUNGE_DISK_FULL, err as NodeJS.ErrnoException);
    throw err;
  } finally {
    await source.close();
  }
  await fsyncDirectory(path.dirname(mboxPath));
  return written;
}

// A crash before the rename can leave our temporary file behind. We hold
// the lock, so no expunge of this mailbox is running: any such file is stale.
async function removeStaleTempFiles(mboxPath: string): Promise<void> {
  const prefix = `.${path.basename(mboxPath)}.expunge-`;
  const dir = path.dirname(mboxPath);
  for (const name of await readdir(dir)) {
    if (name.startsWith(prefix)) await unlink(path.join(dir, name)).catch(() => {});
  }
}
