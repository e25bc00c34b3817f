// The mailbox a session has selected, as that session sees it: which
// message has which sequence number, which are \Recent for it, and the
// changes other sessions (and deliveries) made that it has not been told.
//
// Sequence numbers (RFC 3501 2.3.1.2) are the client's: message n is the
// n-th of the list the client was last told about. Another session's
// EXPUNGE must not renumber messages behind the client's back, so an
// expunged message stays in this view (a "ghost") until a moment RFC 3501
// 7.4.1 allows EXPUNGE responses: not during FETCH, STORE or SEARCH, nor
// when no command is in progress. New messages and flag changes may be
// told at the end of any command.
//
// Memory: the view is the store's snapshot itself (shared by every session
// on that mailbox) except while this session is behind; then it is a copy
// until it catches up (store/mailbox-state.ts, Snapshot).
//
// This object changes as the session reports updates (like POP3's
// maildrop): it belongs to one session, and only that session's commands
// call it, one at a time.

import type { Mailbox, MailboxChange, FlagChange, FlagsEvent, MessageRecord } from '../store/mailbox.ts';
import type { SeqRange } from './parser.ts';
import { ParseError, SAVED_RESULT } from './parser.ts';

export interface UpdateOptions {
  withUid?: boolean;
  modseq?: boolean;
  rev2?: boolean;
}

export class Selected {
  readonly name: string;
  readonly readOnly: boolean;
  readonly mailbox: Mailbox;
  /** The UIDs the client knows, in order: sequence number n is view[n - 1]. */
  private view: Uint32Array;
  /** UIDs that are \Recent in this session (RFC 3501 2.3.2). */
  private readonly recent = new Set<number>();
  /** Expunged since the client was last told (ghosts while they stay in `view`). */
  private readonly expunged = new Set<number>();
  /** Flag changes by others not told yet, by UID. */
  private readonly flagChanges = new Map<number, FlagChange>();
  /** The result a SEARCH saved (RFC 5182 SEARCHRES), for `$` in later commands. */
  saved: ReadonlySet<number> = new Set();
  private newMessages = false;
  /** Called when something arrived that an IDLE session should tell at once. */
  private wake: (() => void) | null = null;

  private constructor(name: string, readOnly: boolean, mailbox: Mailbox) {
    this.name = name;
    this.readOnly = readOnly;
    this.mailbox = mailbox;
    this.view = mailbox.snapshot().uids;
    mailbox.on('changed', (change: MailboxChange) => this.onChanged(change));
    mailbox.on('flags', (event: FlagsEvent) => this.onFlags(event));
    mailbox.on('gone', () => this.poke());
  }

  /** SELECT / EXAMINE: the view starts as the mailbox is now; this session claims the new mail's \Recent. */
  static open(name: string, readOnly: boolean, mailbox: Mailbox): Selected {
    const selected = new Selected(name, readOnly, mailbox);
    if (!readOnly) for (const uid of mailbox.claimRecent()) selected.recent.add(uid);
    return selected;
  }

  private onChanged(change: MailboxChange): void {
    for (const uid of change.expunged) this.expunged.add(uid);
    if (change.appended.length > 0) this.newMessages = true;
    this.poke();
  }

  private onFlags(event: FlagsEvent): void {
    if (event.origin === this.mailbox) return; // our own STORE answers for itself
    for (const change of event.changes) this.flagChanges.set(change.uid, change);
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** IDLE: be called back at the next change (once). */
  onNextChange(wake: () => void): void {
    this.wake = wake;
  }

  get exists(): number {
    return this.view.length;
  }

  /** The UID of sequence number `seq`, or 0. */
  uidAt(seq: number): number {
    return this.view[seq - 1] ?? 0;
  }

  /** The sequence number of `uid`, or 0 if the client does not know it. */
  seqOf(uid: number): number {
    let low = 0;
    let high = this.view.length - 1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const at = this.view[mid];
      if (at === uid) return mid + 1;
      if (at < uid) low = mid + 1;
      else high = mid - 1;
    }
    return 0;
  }

  isRecent(uid: number): boolean {
    return this.recent.has(uid);
  }

  get recentCount(): number {
    let count = 0;
    for (const uid of this.recent) if (this.seqOf(uid) > 0) count++;
    return count;
  }

  /** Expunged by someone, but still numbered for this client. */
  isGhost(uid: number): boolean {
    return this.expunged.has(uid);
  }

  /** The message record, unless it is a ghost. */
  message(uid: number): MessageRecord | undefined {
    return this.expunged.has(uid) ? undefined : this.mailbox.message(uid);
  }

  /** Its flags as this session sees them: \Recent added where it is (not in IMAP4rev2, RFC 9051 2.3.2). */
  flagsOf(record: { uid: number; flags: readonly string[] }, rev2 = false): readonly string[] {
    return !rev2 && this.recent.has(record.uid) ? [...record.flags, '\\Recent'] : record.flags;
  }

  /**
   * The UIDs a sequence set names, ascending. Sequence numbers: `*` is the
   * last message, and a number past it is the client's error (BAD).
   * UIDs (RFC 3501 6.4.8): `*` is the largest UID, and UIDs that are not
   * there are simply left out.
   */
  resolve(set: readonly SeqRange[], byUid: boolean): number[] {
    const uids: number[] = [];
    const last = this.view.length;
    if (set.length === 1 && set[0].from === SAVED_RESULT) {
      for (const uid of this.saved) if (this.seqOf(uid) > 0) uids.push(uid); // `$` (RFC 5182 2.1)
    } else if (byUid) {
      const largest = last > 0 ? this.view[last - 1] : 0;
      for (const range of set) {
        const from = range.from === Infinity ? largest : range.from;
        const to = range.to === Infinity ? largest : range.to;
        const [low, high] = from <= to ? [from, to] : [to, from];
        // Walk the view, not the range: a range 1:4294967295 is one comparison per message.
        for (let i = lowerBound(this.view, low); i < last && this.view[i] <= high; i++) uids.push(this.view[i]);
      }
    } else {
      for (const range of set) {
        const from = range.from === Infinity ? last : range.from;
        const to = range.to === Infinity ? last : range.to;
        if (Math.max(from, to) > last || Math.min(from, to) < 1) throw new ParseError(`no message ${Math.max(from, to)}: the mailbox has ${last}`);
        for (let seq = Math.min(from, to); seq <= Math.max(from, to); seq++) uids.push(this.view[seq - 1]);
      }
    }
    return ascendingUnique(uids);
  }

  /**
   * The untagged responses that bring the client up to date (RFC 3501
   * 7.3.1, 7.4.1, 7.4.2): EXPUNGE (only when `allowExpunge`), EXISTS and
   * RECENT for new mail, FETCH FLAGS for others' flag changes. The view
   * moves on accordingly. Options: `withUid` adds the UID to FETCH
   * responses, `modseq` their MODSEQ (CONDSTORE, RFC 7162 3.2.4), `rev2`
   * leaves RECENT and \Recent out (RFC 9051).
   */
  updates(allowExpunge: boolean, options: UpdateOptions = {}): string[] {
    const { withUid = false, modseq = false, rev2 = false } = options;
    const lines: string[] = [];
    let view = this.view;
    if (allowExpunge && this.expunged.size > 0) {
      // Highest first: each EXPUNGE renumbers only the messages after it.
      for (let i = view.length - 1; i >= 0; i--) if (this.expunged.has(view[i])) lines.push(`${i + 1} EXPUNGE`);
      view = view.filter((uid) => !this.expunged.has(uid));
      const saved = new Set(this.saved);
      for (const uid of this.expunged) {
        this.recent.delete(uid);
        this.flagChanges.delete(uid);
        saved.delete(uid); // RFC 5182 2.1: an expunged message leaves the saved result
      }
      this.saved = saved;
      this.expunged.clear();
    }
    const current = this.mailbox.snapshot().uids;
    if (this.newMessages) {
      this.newMessages = false;
      const lastKnown = view.length > 0 ? view[view.length - 1] : 0;
      const added = current.subarray(lowerBound(current, lastKnown + 1));
      if (added.length > 0) {
        const grown = new Uint32Array(view.length + added.length);
        grown.set(view);
        grown.set(added, view.length);
        view = grown;
        if (!this.readOnly) for (const uid of this.mailbox.claimRecent()) this.recent.add(uid);
        lines.push(`${view.length} EXISTS`);
        if (!rev2) lines.push(`${this.countRecent(view)} RECENT`);
      }
    }
    // Share the store's array again once this view holds the same list.
    this.view = this.expunged.size === 0 && sameUids(view, current) ? current : view;
    for (const [uid, change] of this.flagChanges) {
      const seq = this.seqOf(uid);
      if (seq === 0) continue;
      // RFC 7162 3.2.4: with CONDSTORE on, the UID (7.3.1 "UID") and MODSEQ come too.
      const items = [...(withUid || modseq ? [`UID ${uid}`] : []), `FLAGS (${this.flagsOf(change, rev2).join(' ')})`, ...(modseq ? [`MODSEQ (${change.modseq})`] : [])];
      lines.push(`${seq} FETCH (${items.join(' ')})`);
    }
    this.flagChanges.clear();
    return lines;
  }

  private countRecent(view: Uint32Array): number {
    let count = 0;
    for (const uid of this.recent) if (lowerBound(view, uid) < view.length && view[lowerBound(view, uid)] === uid) count++;
    return count;
  }

  /** Done with the mailbox (CLOSE, UNSELECT, another SELECT, the end of the session). */
  async close(): Promise<void> {
    this.wake = null;
    await this.mailbox.close();
  }
}

/** The first index whose UID is >= `uid`. */
function lowerBound(uids: Uint32Array, uid: number): number {
  let low = 0;
  let high = uids.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (uids[mid] < uid) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Sorted, each once; the usual set (`1:*`, `5,7:9`) already is, and costs one pass. */
function ascendingUnique(uids: number[]): number[] {
  for (let i = 1; i < uids.length; i++) {
    if (uids[i] <= uids[i - 1]) return [...new Set(uids)].sort((a, b) => a - b);
  }
  return uids;
}

function sameUids(a: Uint32Array, b: Uint32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
