// The index journal: changes to the side index without rewriting it.
//
// Marking one message \Seen in a mailbox of 50,000, or indexing one new
// delivery, would otherwise mean writing a 3.5 MB index file. Instead each
// change is a line appended to "<dir>/.<name>.flags" (a hidden name,
// reserved by paths.ts):
//
//   jjordan-flags 1 uidvalidity=1763780751
//   17 4402 \Seen                  UID 17 now has exactly these flags, at mod-sequence 4402
//   18 4403                        UID 18 now has no flags
//   recent 51                      UIDs below 51 have been given \Recent
//   +3 51 2000 300 40 310 0a1b2c3d4e5f6071 1763780900 4404 5e0c2a9f \Seen
//   mbox size=2301 mtime=1763780900123.4 tail=9f0c5e2a1b3d4c6e uidnext=52 modseq=4404
//
// The last two are new mail indexed (a "+3" line per message, with the
// fields of a version 3 index line, its CRC included: mbox-index-file.ts)
// and the state of the mbox the index now describes; "+" lines count only
// once the "mbox" line after them is there. Lines of the older form,
// "+ " and no CRC, are still read (the message's CRC then unknown).
//
// Loading the index applies the journal (mbox-index.ts); whenever the index
// is written anyway, or the journal has grown past a share of the index
// (isJournalSmall), the index is written with everything in it and the
// journal emptied. A flag line states the whole flag set and the
// mod-sequence it was set at, and is applied only if that is newer than
// what the index says; "+" lines only add UIDs above the last: so a crash
// between writing the index and emptying the journal, which applies the
// journal a second time, changes nothing.
//
// Flag lines are not fsync'd, as Dovecot's mail_fsync=optimized does not
// for its flag changes: flags are not mail, and a crash loses at most the
// last few changes. New-mail lines are (fdatasync): their UIDs may already
// have been shown. A line cut short by a crash (no LF) is ignored and cut
// off at the next load; reading stops at the first line that does not fit.
// Every read and write is done holding the mailbox's dot-lock.

import { statSync } from 'node:fs';
import { open, truncate } from 'node:fs/promises';
import * as path from 'node:path';
import type { MailboxIndex } from './mbox-index.ts';
import { writeAll } from './file-io.ts';
import type { MessageTable, NewRow } from './message-table.ts';

const HEADER = /^jjordan-flags 1 uidvalidity=(\d{1,15})$/;
const LINE = /^(\d{1,15}) (\d{1,15})(?: (.*))?$/;
const RECENT = /^recent (\d{1,15})$/;
// "+3 uid offset length contentOffset size fingerprint date modseq crc[ flags]"; the older "+ " form has no crc.
const ADDED = /^\+(3?) (\d{1,15}) (\d{1,15}) (\d{1,15}) (\d{1,15}) (\d{1,15}) ([0-9a-f]{16}) (\d{1,15}) (\d{1,15})(?: (.*))?$/;
const CRC_FIELD = /^([0-9a-f]{8}|-)(?: (.*))?$/;
const MBOX = /^mbox size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) uidnext=(\d{1,15}) modseq=(\d{1,15})$/;
const LF = 0x0a;
// The journal is merged into the index once it passes this share of it.
const MERGE_FIXED_BYTES = 16 * 1024;
const MERGE_BYTES_PER_MESSAGE = 16;

/** `<dir>/.<name>.flags`, next to the mbox. */
export function flagJournalPathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.flags`);
}

/** The journal's length in bytes (0 if there is none). */
export function journalSize(mboxPath: string): number {
  try {
    return statSync(flagJournalPathFor(mboxPath)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** True while a journal of `bytes` is worth keeping beside an index of `messages` (else merge it). */
export function isJournalSmall(bytes: number, messages: number): boolean {
  return bytes <= MERGE_FIXED_BYTES + MERGE_BYTES_PER_MESSAGE * messages;
}

/** One change: `uid` has exactly these flags from mod-sequence `modseq` on. */
export interface FlagEntry {
  uid: number;
  modseq: number;
  /** Space-separated, canonical (FlagPool.text). */
  flags: string;
}

/** A journal line for each entry. */
export function formatEntries(entries: readonly FlagEntry[]): string {
  return entries.map((e) => (e.flags === '' ? `${e.uid} ${e.modseq}\n` : `${e.uid} ${e.modseq} ${e.flags}\n`)).join('');
}

/** The lines for rows `from`... of the index (new mail), then its "mbox" line. */
export function formatAppended(index: MailboxIndex, from: number): string {
  const table = index.messages;
  let text = '';
  for (let k = from; k < table.length; k++) {
    const flags = table.flags.text(table.flagIdAt(k));
    const crc = table.crcAt(k);
    text += `+3 ${table.uidAt(k)} ${table.offsetAt(k)} ${table.lengthAt(k)} ${table.contentOffsetAt(k)} ${table.sizeAt(k)} ` +
      `${table.fingerprintAt(k)} ${table.internalDateAt(k)} ${table.modseqAt(k)} ${crc >= 0 ? crc.toString(16).padStart(8, '0') : '-'}` +
      `${flags === '' ? '' : ' ' + flags}\n`;
  }
  return text + `mbox size=${index.mboxSize} mtime=${index.mboxMtimeMs ?? 0} tail=${index.tailHash} uidnext=${index.uidNext} modseq=${index.highestModseq}\n`;
}

/**
 * Applies the journal to `index` (in place). Returns the journal's length
 * in bytes (0 if there is none, or if it belongs to another UIDVALIDITY:
 * then it describes a lost index, and is emptied). A last line without LF
 * is cut off the file.
 */
export async function applyFlagJournal(mboxPath: string, index: MailboxIndex): Promise<number> {
  const file = flagJournalPathFor(mboxPath);
  let data: Buffer;
  try {
    const handle = await open(file, 'r');
    try {
      data = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const complete = data.lastIndexOf(LF) + 1;
  if (complete < data.length) await truncate(file, complete); // a torn last line
  const lines = data.toString('latin1', 0, complete).split('\n');
  const header = HEADER.exec(lines[0]);
  if (!header || Number(header[1]) !== index.uidValidity) {
    if (data.length > 0) await truncate(file, 0); // so the next change starts a journal of its own
    return 0;
  }
  const table = index.messages;
  const pending: AddedLine[] = []; // "+" lines waiting for their "mbox" line
  for (let i = 1; i < lines.length - 1; i++) {
    const line = lines[i];
    const change = LINE.exec(line);
    if (change) {
      const modseq = Number(change[2]);
      const k = table.find(Number(change[1]));
      if (k >= 0 && modseq > table.modseqAt(k)) table.setFlagsAt(k, table.flags.idOfText(change[3] ?? ''), modseq);
      if (modseq > index.highestModseq) index.highestModseq = modseq; // never back, even for a UID since expunged
      continue;
    }
    const recent = RECENT.exec(line);
    if (recent) {
      index.recentUid = Math.min(Math.max(index.recentUid, Number(recent[1])), index.uidNext);
      continue;
    }
    const added = parseAdded(line);
    if (added) {
      pending.push(added);
      continue;
    }
    const mbox = MBOX.exec(line);
    if (!mbox || !applyAppended(index, pending, mbox)) break; // damage: believe nothing after it
    pending.length = 0;
  }
  return complete;
}

/** A new-mail line: the row it adds, its flags still as text (crc -1 where the line has none: the older form, or "-"). */
type AddedLine = Omit<NewRow, 'flagId'> & { flags: string };

function parseAdded(line: string): AddedLine | null {
  const m = ADDED.exec(line);
  if (!m) return null;
  let [crc, flags] = [-1, m[10] ?? ''];
  if (m[1] === '3') {
    const rest = CRC_FIELD.exec(flags);
    if (!rest) return null;
    [crc, flags] = [rest[1] === '-' ? -1 : parseInt(rest[1], 16), rest[2] ?? ''];
  }
  const [uid, offset, length, contentOffset, size, internalDate, modseq] = [m[2], m[3], m[4], m[5], m[6], m[8], m[9]].map(Number);
  return { uid, offset, length, contentOffset, size, fingerprint: m[7], internalDate, modseq, crc, flags };
}

// New mail from the journal, if it follows on from the index: UIDs above
// the last, bytes after the last message, inside the mbox it describes.
function applyAppended(index: MailboxIndex, added: readonly AddedLine[], mbox: RegExpExecArray): boolean {
  const table: MessageTable = index.messages;
  const [size, mtime, uidNext, modseq] = [Number(mbox[1]), Number(mbox[2]), Number(mbox[4]), Number(mbox[5])];
  if (size < index.mboxSize || !Number.isFinite(mtime) || uidNext < index.uidNext) return false;
  let lastUid = table.length > 0 ? table.uidAt(table.length - 1) : 0;
  let lastEnd = index.mboxSize;
  for (const { uid, offset, length, contentOffset } of added) {
    if (uid <= lastUid || uid >= uidNext || offset < lastEnd || contentOffset < offset || contentOffset > offset + length || offset + length > size) return false;
    [lastUid, lastEnd] = [uid, offset + length];
  }
  for (const { flags, ...row } of added) table.push({ ...row, flagId: table.flags.idOfText(flags) });
  index.mboxSize = size;
  index.mboxMtimeMs = mtime;
  index.tailHash = mbox[3];
  index.uidNext = uidNext;
  index.highestModseq = Math.max(index.highestModseq, modseq);
  return true;
}

/**
 * Appends `text` (whole lines) to the journal, starting it with its header
 * if it is empty; with `sync`, fdatasync'd. On a failure (a full disk) the
 * journal is cut back to what it was and the error thrown. Returns the
 * journal's new length.
 */
export async function appendFlagJournal(mboxPath: string, uidValidity: number, text: string, sync = false): Promise<number> {
  const handle = await open(flagJournalPathFor(mboxPath), 'a', 0o600);
  try {
    const { size } = await handle.stat();
    const bytes = Buffer.from(size === 0 ? `jjordan-flags 1 uidvalidity=${uidValidity}\n${text}` : text, 'latin1');
    try {
      await writeAll(handle, bytes);
      if (sync) await handle.datasync();
    } catch (err) {
      await handle.truncate(size).catch(() => {}); // no half line; cutting needs no space
      throw err;
    }
    return size + bytes.length;
  } finally {
    await handle.close();
  }
}

/** Empties the journal: call it once the index holding its changes is on disk. */
export async function resetFlagJournal(mboxPath: string): Promise<void> {
  try {
    await truncate(flagJournalPathFor(mboxPath), 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
