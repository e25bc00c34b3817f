// Reconciling the side index with an mbox that changed (see mbox-index.ts):
// new mail appended at the end, or a file rewritten by another program.
//
// Appended mail is the common case: its messages get the next UIDs and
// nothing else changes. A rewritten file (mutt deleting a message, adding
// Status: fields) is scanned whole, and each message found is matched to
// the old index by fingerprint, so it keeps its UID, flags, mod-sequence
// and internal date (RFC 3501 2.3.1.1: a UID must not change while
// UIDVALIDITY stays the same). Only messages that cannot keep a UID
// without breaking the ascending order, and messages that are new, get a
// new UID from UIDNEXT.

import type { MailboxIndex } from './mbox-index.ts';
import type { ScannedMessage } from './mbox-index-scan.ts';
import { MessageTable } from './message-table.ts';

/**
 * Adds `scanned` (the messages found past the indexed end) to `index`, in
 * place, under the next UIDs and one new mod-sequence. Returns false, and
 * changes nothing, unless they start right at the old end as our appender
 * writes them: anything else (another program appended junk, or a file
 * that did not end with a blank line) changes where the old last message
 * ends, and the caller rescans everything.
 */
export function extendIndex(index: MailboxIndex, scanned: readonly ScannedMessage[], fallbackDate: number): boolean {
  if (scanned.length === 0 || scanned[0].offset !== index.mboxSize) return false;
  const modseq = ++index.highestModseq;
  for (const m of scanned) {
    index.messages.push({ ...m, uid: index.uidNext++, internalDate: m.internalDate ?? fallbackDate, modseq, flagId: 0 });
  }
  return true;
}

/**
 * Gives each scanned message (in file order) a UID: the UID, flags,
 * mod-sequence and internal date of the first unused old entry with the
 * same fingerprint, if that keeps UIDs ascending; otherwise the next new
 * UID (from old.uidNext) and mod-sequence `modseq`. Greedy, in order, so
 * duplicates of one message take the old entries in order too. The new
 * table shares the old one's flag pool.
 */
export function assignUids(scanned: readonly ScannedMessage[], old: MailboxIndex | null, modseq: number, fallbackDate: number): MessageTable {
  if (!old) {
    // A first build: every message new, UIDs from 1 (no old entries to look through).
    const fresh = new MessageTable(undefined, scanned.length);
    scanned.forEach((m, k) => fresh.push({ ...m, uid: k + 1, internalDate: m.internalDate ?? fallbackDate, modseq, flagId: 0 }));
    return fresh;
  }
  const table = old?.messages;
  const byFingerprint = new Map<string, number[]>(); // old rows per fingerprint, in order
  for (let k = 0; table && k < table.length; k++) {
    const fingerprint = table.fingerprintAt(k);
    const list = byFingerprint.get(fingerprint);
    if (list) list.push(k);
    else byFingerprint.set(fingerprint, [k]);
  }
  const used = new Map<string, number>(); // entries consumed per fingerprint
  const result = new MessageTable(table?.flags, scanned.length);
  let uidNext = old?.uidNext ?? 1;
  let lastUid = 0;
  for (const m of scanned) {
    const candidates = byFingerprint.get(m.fingerprint) ?? [];
    let i = used.get(m.fingerprint) ?? 0;
    while (i < candidates.length && table!.uidAt(candidates[i]) <= lastUid) i++; // would break the order
    used.set(m.fingerprint, i + 1);
    const k = candidates[i];
    if (k === undefined) {
      lastUid = uidNext++;
      result.push({ ...m, uid: lastUid, internalDate: m.internalDate ?? fallbackDate, modseq, flagId: 0 });
    } else {
      lastUid = table!.uidAt(k);
      const oldDate = table!.internalDateAt(k);
      const internalDate = m.internalDate ?? (oldDate >= 0 ? oldDate : fallbackDate);
      result.push({ ...m, uid: lastUid, internalDate, modseq: table!.modseqAt(k), flagId: table!.flagIdAt(k) });
    }
  }
  return result;
}
