// The side index: IMAP's UIDs and flags, and POP3's sizes, for one mbox file.
//
// An mbox file (RFC 4155) is just text: it has no place for a message's
// identity or its flags, and finding message n means reading everything
// before it. So next to each mailbox lives a small text file, ".<name>.index"
// (names starting with "." are reserved by paths.ts), listing every message:
//
//   jjordan-index 1 uidvalidity=1763780751 uidnext=4 size=16384 mtime=1763780751123.45 tail=9f0c5e2a1b3d4c6e count=3
//   1 0 5406 36 5517 6f1d2c3b4a596877 \Seen
//   2 5407 5301 5443 5410 0a1b2c3d4e5f6071
//   3 10709 5674 10745 5788 1122334455667788 \Seen \Answered
//
// Per line: uid, byte offset of the "From " line, length (as MboxEntry), first
// byte after the From line, size as a client sees it, fingerprint, then the
// flags (the rest of the line, maybe empty). The header says which UIDs were
// handed out (RFC 3501 2.3.1.1: UIDVALIDITY, UIDNEXT) and which state of the
// mbox the lines describe: its size and mtime and a hash of its last 256
// bytes.
//
// The mbox can change behind our back: deliveries append, and mutt or
// procmail may rewrite it. Each load, under the dot-lock, compares:
//  - same size, mtime and tail: the index is current (one stat, one 256-byte
//    read, parsing the index file; 50,000 messages load in a few ms);
//  - larger, with the old tail unchanged: new mail was appended; only the
//    new bytes are scanned and get the next UIDs;
//  - anything else: the whole file is scanned again. A message keeps its UID
//    and flags if its fingerprint matches an old entry, as long as UIDs
//    still ascend in file order; the rest get new UIDs, all above the old
//    ones, so UIDVALIDITY stays and IMAP clients stay consistent. Only a
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
import { formatIndex, parseIndex } from './mbox-index-file.ts';
import { scanForIndex } from './mbox-index-scan.ts';
import type { ScannedMessage } from './mbox-index-scan.ts';
import { writeFileAtomic } from './safeio.ts';

export { computeFingerprint } from './mbox-index-scan.ts';
export { formatIndex, parseIndex };
export type { ScannedMessage };

export interface IndexedMessage {
  /** Stable identity (IMAP UID), strictly ascending in file order. */
  uid: number;
  /** Byte offset of the "From " line (as MboxEntry). */
  offset: number;
  /** From line through the message's last LF, blank separator excluded (as MboxEntry). */
  length: number;
  /** First byte after the From line. */
  contentOffset: number;
  /** Octets a client sees: mboxrd quoting undone, CRLF line ends (POP3 LIST, IMAP RFC822.SIZE). */
  size: number;
  /** IMAP flags, space-separated; '' if none. */
  flags: string;
  /** Identifies the message across rewrites of the file (see the header). */
  fingerprint: string;
}

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
  messages: IndexedMessage[];
}

/** Writes the index file's text; tests pass one that fails as a full disk does. */
export type IndexWriter = (indexPath: string, text: string) => Promise<void>;

/** The real IndexWriter: an atomic replace (safeio.ts), mode 0600. */
export const writeIndexAtomically: IndexWriter = (indexPath, text) => writeFileAtomic(indexPath, text, { mode: 0o600 });

export interface IndexUpdateOptions {
  /** Clock in milliseconds (Date.now), for UIDVALIDITY. */
  now?: () => number;
  writeIndex?: IndexWriter;
}

export interface LoadIndexOptions extends IndexUpdateOptions {
  lockTimeoutMs?: number;
}

const TAIL_BYTES = 256;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0; // refuse a symlink planted as a mailbox

/** `<dir>/.<name>.index`, next to the mbox. */
export function indexPathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.index`);
}

/** Brings the side index up to date with the mbox (see the header) and returns it. */
export async function loadIndex(mboxPath: string, opts: LoadIndexOptions = {}): Promise<MailboxIndex> {
  return (await loadIndexWith(mboxPath, opts, async () => null)).index;
}

/**
 * loadIndex, and the mbox opened for reading under the same lock (null if
 * there is no mbox): every byte the index lists is in that file, even if an
 * expunge replaces the mbox right after the lock is released.
 */
export async function openIndexed(mboxPath: string, opts: LoadIndexOptions = {}): Promise<{ index: MailboxIndex; file: FileHandle | null }> {
  const { index, extra } = await loadIndexWith(mboxPath, opts, () => openMbox(mboxPath));
  return { index, file: extra };
}

async function loadIndexWith<T>(mboxPath: string, opts: LoadIndexOptions, alsoUnderLock: () => Promise<T | null>): Promise<{ index: MailboxIndex; extra: T | null }> {
  // No account directory yet (no mail ever arrived): nothing to lock or read.
  try {
    await stat(path.dirname(mboxPath));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { index: emptyIndex(newUidValidity(mboxPath, opts.now ?? Date.now, null)), extra: null };
    throw err;
  }
  return withMailboxLock(
    mboxPath,
    async () => {
      const index = await updateIndexLocked(mboxPath, opts);
      return { index, extra: await alsoUnderLock() };
    },
    { timeoutMs: opts.lockTimeoutMs },
  );
}

// Indexes that could not be written for lack of space, by absolute mbox
// path: newer than the file on disk (see the header).
const unsavedIndexes = new Map<string, MailboxIndex>();

/**
 * Writes the index atomically (mode 0600). Call it holding the mailbox lock.
 * On a full disk it keeps the index in memory instead, for the next load to
 * use and write (see the header), and returns false. The caller must not
 * change `index` afterwards.
 */
export async function saveIndex(mboxPath: string, index: MailboxIndex, writeIndex: IndexWriter = writeIndexAtomically): Promise<boolean> {
  const key = path.resolve(mboxPath);
  try {
    await writeIndex(indexPathFor(mboxPath), formatIndex(index));
  } catch (err) {
    if (!isDiskFull(err)) throw err;
    unsavedIndexes.set(key, index);
    return false;
  }
  unsavedIndexes.delete(key);
  return true;
}

/**
 * loadIndex without taking the lock: for callers that already hold it (the
 * expunge). Cuts off a torn tail first, and saves the index if it had to be
 * extended or rebuilt.
 */
export async function updateIndexLocked(mboxPath: string, opts: IndexUpdateOptions = {}): Promise<MailboxIndex> {
  const now = opts.now ?? Date.now;
  const save = (index: MailboxIndex) => saveIndex(mboxPath, index, opts.writeIndex);
  await recoverTornAppend(mboxPath);
  const stored = await readIndexFile(indexPathFor(mboxPath));
  const unsaved = unsavedIndexes.get(path.resolve(mboxPath)) ?? null;
  const old = unsaved ?? stored.index;
  const handle = await openMbox(mboxPath);
  if (!handle) {
    // No mbox: an empty mailbox. Keep the UIDs already handed out, so they
    // are never reused; write nothing for a mailbox that never existed.
    if (stored.state === 'missing' && !unsaved) return emptyIndex(newUidValidity(mboxPath, now, null));
    if (old && old.mboxSize === 0 && old.messages.length === 0) {
      if (unsaved) await save(old); // space may be back
      return old;
    }
    const index = old ? { ...emptyIndex(old.uidValidity), uidNext: old.uidNext } : emptyIndex(newUidValidity(mboxPath, now, stored.oldUidValidity));
    await save(index);
    return index;
  }
  try {
    const { size, mtimeMs } = await handle.stat();
    if (old && size === old.mboxSize && mtimeMs === old.mboxMtimeMs && (await tailHash(handle, size)) === old.tailHash) {
      if (unsaved) await save(old); // space may be back
      return old; // the fast path: nothing changed
    }
    let index: MailboxIndex | null = null;
    if (old && size > old.mboxSize && (await tailHash(handle, old.mboxSize)) === old.tailHash) {
      index = await extend(handle, old);
    }
    if (!index) {
      const uidValidity = old ? old.uidValidity : newUidValidity(mboxPath, now, stored.oldUidValidity);
      const scan = await scanForIndex(handle, 0);
      const { messages, uidNext } = assignUids(scan.messages, old);
      index = { uidValidity, uidNext, mboxSize: scan.end, tailHash: await tailHash(handle, scan.end), messages };
    }
    index.mboxMtimeMs = mtimeMs;
    await save(index);
    return index;
  } finally {
    await handle.close();
  }
}

// New mail appended after the indexed part: scan only the new bytes. They
// must start with a From line right at the old end, as our appender writes
// them; anything else (another program appended junk, or a file that did
// not end with a blank line) changes where the old last message ends, so
// the caller rescans everything. Returns null in that case.
async function extend(handle: FileHandle, old: MailboxIndex): Promise<MailboxIndex | null> {
  const scan = await scanForIndex(handle, old.mboxSize);
  if (scan.messages.length === 0 || scan.messages[0].offset !== old.mboxSize) return null;
  let uidNext = old.uidNext;
  const added = scan.messages.map((m) => ({ ...m, uid: uidNext++, flags: '' }));
  const tail = await tailHash(handle, scan.end);
  return { uidValidity: old.uidValidity, uidNext, mboxSize: scan.end, tailHash: tail, messages: old.messages.concat(added) };
}

/**
 * Gives each scanned message (in file order) a UID: the UID and flags of
 * the first unused old entry with the same fingerprint, if that keeps UIDs
 * ascending; otherwise the next new UID. Greedy, in order, so duplicates of
 * one message take the old entries in order too.
 */
export function assignUids(scanned: ScannedMessage[], old: MailboxIndex | null): { messages: IndexedMessage[]; uidNext: number } {
  const byFingerprint = new Map<string, IndexedMessage[]>();
  for (const entry of old?.messages ?? []) {
    const list = byFingerprint.get(entry.fingerprint);
    if (list) list.push(entry);
    else byFingerprint.set(entry.fingerprint, [entry]);
  }
  const used = new Map<string, number>(); // entries consumed per fingerprint
  let uidNext = old?.uidNext ?? 1;
  let lastUid = 0;
  const messages = scanned.map((m): IndexedMessage => {
    const candidates = byFingerprint.get(m.fingerprint) ?? [];
    let k = used.get(m.fingerprint) ?? 0;
    while (k < candidates.length && candidates[k].uid <= lastUid) k++; // would break the order
    used.set(m.fingerprint, k + 1);
    const match = candidates[k];
    lastUid = match ? match.uid : uidNext++;
    return { ...m, uid: lastUid, flags: match ? match.flags : '' };
  });
  return { messages, uidNext };
}

/** Hash of the (up to) 256 bytes before `size`: cheap evidence that the file's end is unchanged. */
export async function tailHash(handle: FileHandle, size: number): Promise<string> {
  const start = Math.max(0, size - TAIL_BYTES);
  const buffer = Buffer.alloc(size - start);
  const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
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

function emptyIndex(uidValidity: number): MailboxIndex {
  return { uidValidity, uidNext: 1, mboxSize: 0, tailHash: hash('sha1', '', 'hex').slice(0, 16), messages: [] };
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
function newUidValidity(mboxPath: string, now: () => number, oldUidValidity: number | null): number {
  const key = path.resolve(mboxPath);
  const value = Math.max(Math.floor(now() / 1000), (oldUidValidity ?? 0) + 1, (issuedUidValidity.get(key) ?? 0) + 1);
  issuedUidValidity.set(key, value);
  return value;
}

// ---- Reading the index file ----

interface StoredIndex {
  state: 'missing' | 'corrupt' | 'valid';
  index: MailboxIndex | null;
  /** The UIDVALIDITY a corrupt index still shows, if any. */
  oldUidValidity: number | null;
}

async function readIndexFile(indexPath: string): Promise<StoredIndex> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing', index: null, oldUidValidity: null };
    throw err;
  }
  const index = parseIndex(text);
  if (index) return { state: 'valid', index, oldUidValidity: index.uidValidity };
  const old = /uidvalidity=(\d{1,15})/.exec(text.slice(0, 200));
  return { state: 'corrupt', index: null, oldUidValidity: old ? Number(old[1]) : null };
}
