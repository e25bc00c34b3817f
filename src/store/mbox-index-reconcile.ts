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
 *
 * Messages are added one at a time as the scan finds them (`add`), so a
 * scan of 50,000 messages keeps no list of them: each is in the table as
 * soon as it is found, and garbage the moment after.
 */
export class UidAssigner {
  readonly table: MessageTable;
  readonly #old: MessageTable | null;
  readonly #modseq: number;
  readonly #fallbackDate: number;
  readonly #byFingerprint = new Map<string, number[]>(); // old rows per fingerprint, in order
  readonly #used = new Map<string, number>(); // entries consumed per fingerprint
  #uidNext: number;
  #lastUid = 0;

  constructor(previous: MailboxIndex | null, modseq: number, fallbackDate: number) {
    const old = previous?.messages ?? null;
    this.#old = old;
    this.#modseq = modseq;
    this.#fallbackDate = fallbackDate;
    this.#uidNext = previous?.uidNext ?? 1;
    this.table = new MessageTable(old?.flags, Math.max(16, old?.length ?? 0)); // (an old table's size: a rescan finds about as many)
    for (let k = 0; old && k < old.length; k++) {
      const fingerprint = old.fingerprintAt(k);
      const list = this.#byFingerprint.get(fingerprint);
      if (list) list.push(k);
      else this.#byFingerprint.set(fingerprint, [k]);
    }
  }

  add(m: ScannedMessage): void {
    const k = this.#oldRowFor(m.fingerprint);
    if (k < 0) {
      this.#lastUid = this.#uidNext++;
      this.table.push({ ...m, uid: this.#lastUid, internalDate: m.internalDate ?? this.#fallbackDate, modseq: this.#modseq, flagId: 0 });
      return;
    }
    const old = this.#old!;
    this.#lastUid = old.uidAt(k);
    const oldDate = old.internalDateAt(k);
    const internalDate = m.internalDate ?? (oldDate >= 0 ? oldDate : this.#fallbackDate);
    this.table.push({ ...m, uid: this.#lastUid, internalDate, modseq: old.modseqAt(k), flagId: old.flagIdAt(k) });
  }

  /** The first unused old row with this fingerprint that keeps the UIDs ascending; -1 if none. */
  #oldRowFor(fingerprint: string): number {
    const old = this.#old;
    if (!old) return -1; // a first build: every message is new
    const candidates = this.#byFingerprint.get(fingerprint) ?? [];
    let i = this.#used.get(fingerprint) ?? 0;
    while (i < candidates.length && old.uidAt(candidates[i]) <= this.#lastUid) i++; // would break the order
    this.#used.set(fingerprint, i + 1);
    return candidates[i] ?? -1;
  }
}
