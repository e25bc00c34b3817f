// The side index: IMAP's UIDs and flags, and POP3's sizes, for one mbox file.
//
// An mbox file (RFC 4155) is just text: it has no place for a message's
// identity or its flags, and finding message n means reading everything
// before it. So next to each mailbox lives a small text file, ".<name>.index"
// (names starting with "." are reserved by paths.ts), listing every message:
//
//   jjordan-index 3 uidvalidity=1763780751 uidnext=4 size=16384 mtime=1763780751123.45 tail=9f0c5e2a1b3d4c6e count=3 modseq=7 recent=3
//   1 0 5406 36 5517 6f1d2c3b4a596877 1763780100 5 8c1e09d2 \Seen
//   2 5407 5301 5443 5410 0a1b2c3d4e5f6071 1763780200 2 -
//   3 10709 5674 10745 5788 1122334455667788 1763780300 7 31f0a6b7 \Answered \Seen $Label1
//
// Per line: uid, byte offset of the "From " line, length (as MboxEntry), first
// byte after the From line, size as a client sees it, fingerprint, internal
// date (RFC 3501 2.3.3, seconds, from the From line), mod-sequence of the
// last change (RFC 7162), the CRC-32 of the message's bytes as the scan saw
// them ("-": not known, as for mail an older version indexed), then the
// flags and keywords (flags.ts; the rest of the line, maybe empty). The
// header says which UIDs were handed out (RFC
// 3501 2.3.1.1: UIDVALIDITY, UIDNEXT), the highest mod-sequence (RFC 7162
// HIGHESTMODSEQ), the first UID no session has had as \Recent yet, and
// which state of the mbox the lines describe: its size and mtime and a hash
// of its last 256 bytes. The format is in mbox-index-file.ts; version 1
// files (no dates, no mod-sequences) are read and upgraded by a rescan that
// keeps every UID and flag; version 2 files (no CRCs) are read as they
// are. Flag changes, and new mail once indexed, go to a journal next to
// the index (flag-journal.ts, persistIndex), applied on every load and
// merged into the index whenever it is written: a STORE or a delivery
// costs a line, not a rewrite of 3 MB.
//
// The mbox can change behind our back: deliveries append, and mutt or
// procmail may rewrite it. Each load, under the dot-lock, compares:
//  - same size, mtime and tail: the index is current (one stat, one 256-byte
//    read, parsing the index file and the flag journal);
//  - larger, with the old tail unchanged: new mail was appended; only the
//    new bytes are scanned and get the next UIDs (mbox-index-reconcile.ts),
//    written to the journal;
//  - anything else: the whole file is scanned again. A message keeps its UID
//    and flags if its fingerprint matches an old entry, as long as UIDs
//    still ascend in file order (mbox-index-reconcile.ts); the rest get
//    new UIDs and a new mod-sequence, all above the old ones, so
//    UIDVALIDITY stays and IMAP clients stay consistent. Only a
//    missing or corrupt index starts a new UIDVALIDITY (see newUidValidity).
// The mtime is checked on top of size and tail because a rewrite can keep
// both (mutt marking one message read and another unread) while moving the
// messages in between: their offsets would be wrong.
//
// The fingerprint hashes the From line, the Message-ID and the first 512
// stored bytes of the body, deliberately not the other header fields: mutt
// adds "Status:" headers when it rewrites a file, and that must not change
// a message's identity.
//
// A full disk must not stop anyone reading mail. When the index cannot be
// written for lack of space (ENOSPC, EDQUOT), the new index is kept in
// memory, in this process, and used as the old index of the next load,
// which tries to write it again: it reaches the disk when space returns.
// (A crash before then only loses what the on-disk index does not know; the
// next load rebuilds it from the mbox as after any lost index write.)
//
// Invariants:
//  - UIDs strictly ascend in file order; a UID is never reused within one
//    UIDVALIDITY (new ones come from uidnext).
//  - Mod-sequences never go back: every change (new messages, flags, an
//    expunge) takes the next one above HIGHESTMODSEQ.
//  - The index is read and written only under the mailbox's dot-lock, so a
//    delivery in progress is never half seen; and only after a batch that a
//    crash tore has been cut off (append-journal.ts), so a torn message is
//    never indexed.

import { hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { recoverTornAppend } from './append-journal.ts';
import { isDiskFull } from './disk-full.ts';
import { withMailboxLock } from './dotlock.ts';
import { readInto } from './file-io.ts';
import { appendFlagJournal, applyFlagJournal, formatAppended, isJournalSmall, journalSize, resetFlagJournal } from './flag-journal.ts';
import { formatIndex, parseIndex } from './mbox-index-file.ts';
import { extendIndex, UidAssigner } from './mbox-index-reconcile.ts';
import { scanMessages } from './mbox-index-scan.ts';
import type { ScannedMessage } from './mbox-index-scan.ts';
import { MessageTable } from './message-table.ts';
import { writeFileAtomic } from './safeio.ts';

export { computeFingerprint } from './mbox-index-scan.ts';
export { formatIndex, parseIndex };
export type { ScannedMessage };

export type { IndexedMessage } from './message-table.ts';

export interface MailboxIndex {
  /** RFC 3501 2.3.1.1: seconds since the epoch when the index was first built. */
  uidValidity: number;
  /** The UID the next new message gets. */
  uidNext: number;
  /** Bytes of the mbox this index covers (its size when scanned). */
  mboxSize: number;
  /** Hash of the (up to) 256 bytes before mboxSize. */
  tailHash: string;
  /** The mbox's mtime when scanned; absent = unknown (the next load rescans). */
  mboxMtimeMs?: number;
  /** RFC 7162 HIGHESTMODSEQ: the mod-sequence of the latest change. */
  highestModseq: number;
  /** The first UID not yet given \Recent to any session (RFC 3501 2.3.2). */
  recentUid: number;
  /** Every message, in file order (message-table.ts). */
  messages: MessageTable;
}

/** Writes the index file's text; tests pass one that fails as a full disk does. */
export type IndexWriter = (indexPath: string, data: Buffer) => Promise<void>;

/** The real IndexWriter: an atomic replace (safeio.ts), mode 0600. */
export const writeIndexAtomically: IndexWriter = (indexPath, data) => writeFileAtomic(indexPath, data, { mode: 0o600 });

/** Appends whole lines to the index journal (flag-journal.ts); tests pass one that fails as a full disk does. */
export type JournalAppender = typeof appendFlagJournal;

/** How the index and its journal are written (tests replace them). */
export interface IndexWriters {
  writeIndex?: IndexWriter;
  appendJournal?: JournalAppender;
}

export interface IndexUpdateOptions extends IndexWriters {
  /** Clock in milliseconds (Date.now), for UIDVALIDITY. */
  now?: () => number;
  /** The scan of the mbox (default scanMessages); tests count its calls. */
  scan?: typeof scanMessages;
  /** false: do not write a changed index; the caller changes it further and saves it. */
  save?: boolean;
}

export interface LoadIndexOptions extends IndexUpdateOptions {
  lockTimeoutMs?: number;
}

/** What updateIndexLocked found and did. */
export interface IndexUpdate {
  index: MailboxIndex;
  /**
   * 'same': nothing changed (the index given or read is returned as it is);
   * 'extended': new messages were added at the end of the same table;
   * 'rebuilt': a new table (a rescan, a new index, a lost mbox).
   */
  change: 'same' | 'extended' | 'rebuilt';
  /** The mbox's inode when looked at (0: no mbox). */
  ino: number;
}

const TAIL_BYTES = 256;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0; // refuse a symlink planted as a mailbox

/** `<dir>/.<name>.index`, next to the mbox. */
export function indexPathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.index`);
}

/** Brings the side index up to date with the mbox (see the header) and returns it. */
export async function loadIndex(mboxPath: string, opts: LoadIndexOptions = {}): Promise<MailboxIndex> {
  // No account directory yet (no mail ever arrived): nothing to lock or read.
  try {
    await stat(path.dirname(mboxPath));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex(newUidValidity(mboxPath, opts.now ?? Date.now, null));
    throw err;
  }
  return withMailboxLock(mboxPath, async () => (await updateIndexLocked(mboxPath, opts)).index, { timeoutMs: opts.lockTimeoutMs });
}

// Indexes that could not be written for lack of space, by absolute mbox
// path: newer than the file on disk (see the header).
const unsavedIndexes = new Map<string, MailboxIndex>();

/**
 * Writes the index atomically (mode 0600), then empties the flag journal,
 * whose changes it now holds. Call it holding the mailbox lock. On a full
 * disk it keeps the index in memory instead, for the next load to use and
 * write (see the header), and returns false; the journal stays.
 */
export async function saveIndex(mboxPath: string, index: MailboxIndex, writeIndex: IndexWriter = writeIndexAtomically): Promise<boolean> {
  const key = path.resolve(mboxPath);
  try {
    await writeIndex(indexPathFor(mboxPath), formatIndex(index));
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    unsavedIndexes.set(key, copyOf(index)); // a copy: the caller goes on changing its own
    return false;
  }
  unsavedIndexes.delete(key);
  await resetFlagJournal(mboxPath);
  return true;
}

/**
 * Writes what changed in `index`. With `appendedFrom`, only rows from that
 * one on are new (mail appended): while the journal is small they go there
 * (flag-journal.ts), a few hundred bytes instead of the whole index.
 * Anything else rewrites the index (saveIndex). Call it holding the lock.
 */
export async function persistIndex(mboxPath: string, index: MailboxIndex, writers: IndexWriters = {}, appendedFrom: number | null = null): Promise<boolean> {
  // (An index kept in memory after a full disk is ahead of the file: the journal cannot describe it.)
  if (appendedFrom !== null && !unsavedIndexes.has(path.resolve(mboxPath)) && isJournalSmall(journalSize(mboxPath), index.messages.length)) {
    try {
      await (writers.appendJournal ?? appendFlagJournal)(mboxPath, index.uidValidity, formatAppended(index, appendedFrom), true);
      return true;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
    }
  }
  return saveIndex(mboxPath, index, writers.writeIndex);
}


/**
 * loadIndex without taking the lock: for callers that already hold it (the
 * expunge, the shared mailbox). Cuts off a torn tail first, and saves the
 * index if it had to be extended or rebuilt. `current` is an index this
 * process keeps up to date in memory (mailbox.ts): it is used instead of
 * reading the files, and extended in place when mail was appended.
 */
export async function updateIndexLocked(mboxPath: string, opts: IndexUpdateOptions = {}, current: MailboxIndex | null = null): Promise<IndexUpdate> {
  const now = opts.now ?? Date.now;
  const save = async (index: MailboxIndex) => opts.save === false || (await saveIndex(mboxPath, index, opts.writeIndex));
  await recoverTornAppend(mboxPath);
  let old = current;
  let stored: StoredIndex = { state: 'valid', index: null, version: 2, oldUidValidity: null };
  const kept = current ? undefined : unsavedIndexes.get(path.resolve(mboxPath));
  const unsaved = kept ? copyOf(kept) : null;
  if (!current) {
    stored = await readIndexFile(indexPathFor(mboxPath));
    old = unsaved ?? stored.index;
    if (old) await applyFlagJournal(mboxPath, old);
  }
  const handle = await openMbox(mboxPath);
  if (!handle) {
    // No mbox: an empty mailbox. Keep the UIDs already handed out, so they
    // are never reused; write nothing for a mailbox that never existed.
    if (!old && stored.state === 'missing') return { index: emptyIndex(newUidValidity(mboxPath, now, null)), change: 'rebuilt', ino: 0 };
    if (old && old.mboxSize === 0 && old.messages.length === 0) {
      if (unsaved) await save(old); // space may be back
      return { index: old, change: 'same', ino: 0 };
    }
    const index = old
      ? { ...emptyIndex(old.uidValidity), uidNext: old.uidNext, highestModseq: old.highestModseq + 1, recentUid: old.recentUid, messages: new MessageTable(old.messages.flags) }
      : emptyIndex(newUidValidity(mboxPath, now, stored.oldUidValidity));
    await save(index);
    return { index, change: 'rebuilt', ino: 0 };
  }
  try {
    const { size, mtimeMs, ino } = await handle.stat();
    const upgrade = stored.version === 1; // dates and mod-sequences come from a rescan
    if (old && !upgrade && size === old.mboxSize && mtimeMs === old.mboxMtimeMs && (await tailHash(handle, size)) === old.tailHash) {
      if (unsaved) await save(old); // space may be back
      return { index: old, change: 'same', ino }; // the fast path: nothing changed
    }
    const scan = opts.scan ?? scanMessages;
    const fallbackDate = Math.floor(mtimeMs / 1000); // for a From line without a readable date
    let change: IndexUpdate['change'] = 'rebuilt';
    let index: MailboxIndex | null = null;
    const rowsBefore = old?.messages.length ?? 0;
    if (old && !upgrade && size > old.mboxSize && (await tailHash(handle, old.mboxSize)) === old.tailHash) {
      const added: ScannedMessage[] = [];
      const end = await scan(handle, old.mboxSize, (m) => added.push(m));
      if (extendIndex(old, added, fallbackDate)) {
        old.mboxSize = end;
        old.tailHash = await tailHash(handle, end);
        [index, change] = [old, 'extended'];
      }
    }
    if (!index) {
      const uidValidity = old ? old.uidValidity : newUidValidity(mboxPath, now, stored.oldUidValidity);
      const highestModseq = old ? old.highestModseq + 1 : 1; // one change: the rescan
      // Each message goes into the new table as the scan finds it: no list of them all is held.
      const assigner = new UidAssigner(old, highestModseq, fallbackDate);
      const end = await scan(handle, 0, (m) => assigner.add(m));
      const messages = assigner.table;
      index = {
        uidValidity, uidNext: Math.max(old?.uidNext ?? 1, messages.length > 0 ? messages.uidAt(messages.length - 1) + 1 : 1),
        mboxSize: end, tailHash: await tailHash(handle, end),
        highestModseq, recentUid: old?.recentUid ?? 1, messages,
      };
    }
    index.mboxMtimeMs = mtimeMs;
    if (opts.save !== false) await persistIndex(mboxPath, index, opts, change === 'extended' ? rowsBefore : null);
    return { index, change, ino };
  } finally {
    await handle.close();
  }
}

/** Hash of the (up to) 256 bytes before `size`: cheap evidence that the file's end is unchanged. */
export async function tailHash(handle: FileHandle, size: number): Promise<string> {
  const start = Math.max(0, size - TAIL_BYTES);
  const buffer = Buffer.alloc(size - start);
  const bytesRead = await readInto(handle, buffer, buffer.length, start);
  return hash('sha1', buffer.subarray(0, bytesRead), 'hex').slice(0, 16);
}

/** Opens an mbox for reading; null if it does not exist. */
export async function openMbox(mboxPath: string): Promise<FileHandle | null> {
  try {
    return await open(mboxPath, constants.O_RDONLY | O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

function copyOf(index: MailboxIndex): MailboxIndex {
  return { ...index, messages: index.messages.clone() };
}

/** An index of no messages. */
export function emptyIndex(uidValidity: number): MailboxIndex {
  return {
    uidValidity, uidNext: 1, mboxSize: 0, tailHash: hash('sha1', '', 'hex').slice(0, 16),
    highestModseq: 1, recentUid: 1, messages: new MessageTable(),
  };
}

// The last UIDVALIDITY this process gave each mailbox (absolute path).
const issuedUidValidity = new Map<string, number>();

// A new UIDVALIDITY: the time in seconds, but always above a corrupt
// index's old value and above the last one this process gave the mailbox.
// A lost index rebuilt within the second it was built would otherwise get
// the same UIDVALIDITY with UIDs from 1 again, and a POP3 UIDL or an IMAP
// UID already shown would name another message. (Across a restart the
// clock has moved on; only a rebuild, a restart and another rebuild within
// one second could still repeat a value.)
export function newUidValidity(mboxPath: string, now: () => number, oldUidValidity: number | null): number {
  const key = path.resolve(mboxPath);
  const value = Math.max(Math.floor(now() / 1000), (oldUidValidity ?? 0) + 1, (issuedUidValidity.get(key) ?? 0) + 1);
  issuedUidValidity.set(key, value);
  return value;
}

// ---- Reading the index file ----

interface StoredIndex {
  state: 'missing' | 'corrupt' | 'valid';
  index: MailboxIndex | null;
  /** The format version of a valid file (1 is upgraded by a rescan). */
  version: 1 | 2 | 3;
  /** The UIDVALIDITY a corrupt index still shows, if any. */
  oldUidValidity: number | null;
}

async function readIndexFile(indexPath: string): Promise<StoredIndex> {
  let data: Buffer;
  try {
    data = await readFile(indexPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing', index: null, version: 2, oldUidValidity: null };
    throw err;
  }
  const parsed = parseIndex(data);
  if (parsed) return { state: 'valid', index: parsed.index, version: parsed.version, oldUidValidity: parsed.index.uidValidity };
  const old = /uidvalidity=(\d{1,15})/.exec(data.toString('latin1', 0, 200));
  return { state: 'corrupt', index: null, version: 2, oldUidValidity: old ? Number(old[1]) : null };
}
