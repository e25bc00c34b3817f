// The flag journal: flag changes without rewriting the side index.
//
// Marking one message \Seen in a mailbox of 50,000 would otherwise mean
// writing a 3.5 MB index file. Instead each change is one line appended to
// "<dir>/.<name>.flags" (a hidden name, reserved by paths.ts):
//
//   jjordan-flags 1 uidvalidity=1763780751
//   17 4402 \Seen                  UID 17 now has exactly these flags, at mod-sequence 4402
//   18 4403                        UID 18 now has no flags
//   recent 51                      UIDs below 51 have been given \Recent
//
// Loading the index applies the journal (mbox-index.ts); whenever the index
// is written anyway, or the journal has grown past a share of the index
// (mailbox.ts), the index is written with everything in it and the journal
// emptied. A line states the whole flag set and the mod-sequence it was set
// at, and is applied only if that is newer than what the index says: so a
// crash between writing the index and emptying the journal, which applies
// the journal a second time, changes nothing.
//
// Appends are not fsync'd, as Dovecot's mail_fsync=optimized does not for
// its flag changes: flags are not mail, and a crash loses at most the last
// few changes. A line cut short by a crash (no LF) is ignored and cut off
// at the next load. Every read and write is done holding the mailbox's
// dot-lock (mailbox.ts, mbox-index.ts).

import { appendFile, open, truncate } from 'node:fs/promises';
import * as path from 'node:path';
import type { MailboxIndex } from './mbox-index.ts';

const HEADER = /^jjordan-flags 1 uidvalidity=(\d{1,15})$/;
const LINE = /^(\d{1,15}) (\d{1,15})(?: (.*))?$/;
const RECENT = /^recent (\d{1,15})$/;
const LF = 0x0a;

/** `<dir>/.<name>.flags`, next to the mbox. */
export function flagJournalPathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.flags`);
}

/** One change: `uid` has exactly the flags of set `flagId` from mod-sequence `modseq` on. */
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

/**
 * Applies the journal to `index` (in place: flags, mod-sequences, the
 * recent mark). Returns the journal's length in bytes (0 if there is none,
 * or if it belongs to another UIDVALIDITY: then it describes a lost index,
 * and is emptied). A last line without LF is cut off the file.
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
    if (recent) index.recentUid = Math.min(Math.max(index.recentUid, Number(recent[1])), index.uidNext);
    // Anything else is damage; a line is only a hint, so skip it.
  }
  return complete;
}

/**
 * Appends `text` (whole lines) to the journal, starting it with its header
 * if it is empty. `journalBytes` is its length now; returns the new length.
 */
export async function appendFlagJournal(mboxPath: string, uidValidity: number, journalBytes: number, text: string): Promise<number> {
  const data = journalBytes === 0 ? `jjordan-flags 1 uidvalidity=${uidValidity}\n${text}` : text;
  const bytes = Buffer.from(data, 'latin1');
  await appendFile(flagJournalPathFor(mboxPath), bytes, { mode: 0o600, flag: 'a' });
  return journalBytes + bytes.length;
}

/** Empties the journal: call it once the index holding its changes is on disk. */
export async function resetFlagJournal(mboxPath: string): Promise<void> {
  try {
    await truncate(flagJournalPathFor(mboxPath), 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
