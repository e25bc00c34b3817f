// An open mailbox, as a session sees it: the handle IMAP and POP3 sessions
// hold on one mbox folder. Every handle on the same file in this process
// shares one state (mailbox-state.ts): one index in memory, one open file,
// one snapshot per version, so a delivery, an expunge or a flag change made
// through one handle is seen by all, as events:
//   'changed' (MailboxChange)  messages arrived and/or were expunged
//   'flags'   (FlagsEvent)     flags changed
//   'gone'    ()               the folder was deleted or renamed away
// This module knows nothing of IMAP syntax: no sequence numbers (the
// session maps them onto its Snapshot's UIDs), no modified UTF-7.
//
// Typical use (IMAP SELECT):
//   const box = await openMailbox(folderPath(accountDir, 'INBOX'));
//   const view = box.snapshot();                  // EXISTS = view.uids.length
//   const recent = box.claimRecent();             // this session's \Recent
//   box.on('changed', (change) => ...);           // untagged EXISTS / EXPUNGE later
//   ...
//   await box.close();

import { EventEmitter } from 'node:events';
import { attach, detach } from './mailbox-registry.ts';
import type { MailboxState } from './mailbox-state.ts';
import type { AppendItem, FlagChange, MailboxOptions, MailboxStatus, Snapshot } from './mailbox-types.ts';
import type { MessageRecord, MessageRows } from './message-table.ts';
import { NoSuchFolderError } from './store-errors.ts';
import { cachedValues, readInOrder } from './mailbox-reads.ts';
import type { CacheFill, MessageContent, ReadExtent } from './mailbox-reads.ts';

export type { AppendItem, FlagChange, FlagsEvent, MailboxChange, MailboxOptions, MailboxStatus, Snapshot } from './mailbox-types.ts';
export { POLL_MS } from './mailbox-types.ts';
export { diffUids } from './mailbox-files.ts';
export type { MessageRecord, MessageRows } from './message-table.ts';
export type { CacheFill, MessageContent, ReadExtent } from './mailbox-reads.ts';
export { MessageChangedError } from './message-reader.ts';
export { MessageExpungedError } from './store-errors.ts';
export { InvalidFlagError, SYSTEM_FLAGS } from './flags.ts';
export { mailboxTouched } from './mailbox-registry.ts';

/** Opens the mailbox whose mbox file is `mboxPath` (loading and reconciling its index if no session has it open). */
export async function openMailbox(mboxPath: string, opts: MailboxOptions = {}): Promise<Mailbox> {
  const handle = new Mailbox();
  await handle.attach(mboxPath, opts);
  return handle;
}

export class Mailbox extends EventEmitter {
  #state: MailboxState | null = null;
  #closed = false;

  /** (Use openMailbox.) */
  async attach(mboxPath: string, opts: MailboxOptions): Promise<void> {
    if (this.#state) throw new Error('this handle is already open');
    this.#state = await attach(mboxPath, opts, this);
    await this.#state.refresh(); // another handle may have it open: make sure it is current
  }

  get #open(): MailboxState {
    if (!this.#state || this.#closed) throw new Error('mailbox handle is closed');
    return this.#state;
  }

  /** The mbox file's path. */
  get path(): string {
    return this.#open.path;
  }

  /** RFC 3501 2.3.1.1 */
  get uidValidity(): number {
    return this.#open.index.uidValidity;
  }

  /** RFC 3501 2.3.1.1: the UID the next message will get. */
  get uidNext(): number {
    return this.#open.index.uidNext;
  }

  /** RFC 7162 HIGHESTMODSEQ. */
  get highestModseq(): number {
    return this.#open.index.highestModseq;
  }

  /** Keywords known in this mailbox (for FLAGS and PERMANENTFLAGS). */
  keywords(): string[] {
    return this.#open.index.messages.flags.keywords();
  }

  /** The message list now; the same object for everyone until it changes. */
  snapshot(): Snapshot {
    return this.#open.snapshot();
  }

  /** The message with this UID, if it is still in the mailbox. */
  message(uid: number): MessageRecord | undefined {
    return this.#open.message(uid);
  }

  /**
   * The index's columns, read-only, as they are now: for walking many
   * messages without an object each. Valid until the next await (an
   * expunge replaces the table); ask again after one.
   */
  rows(): MessageRows {
    return this.#open.index.messages;
  }

  /** Counts for STATUS and SELECT: messages, recent, unseen, and the UID and mod-sequence figures. */
  status(): MailboxStatus {
    return this.#open.status();
  }

  /** The UIDs that are \Recent for this caller alone (RFC 3501 2.3.2); the next caller gets none of them. */
  claimRecent(): number[] {
    return this.#open.claimRecent();
  }

  /** Checks (cheaply) whether the mbox changed and, if so, updates and emits the events. */
  refresh(): Promise<void> {
    return this.#open.refresh();
  }

  /**
   * STORE (RFC 3501 6.4.6): sets, adds or removes flags on the messages with
   * these UIDs (UIDs no longer there are skipped). With unchangedSince,
   * messages changed after that mod-sequence are left alone (RFC 7162
   * 3.1.3: the caller reports them as MODIFIED). Returns the messages whose
   * flags did change, all with one new mod-sequence; emits 'flags'.
   * Throws InvalidFlagError (nothing changed) for \Recent, an unknown
   * system flag, a malformed keyword or too many keywords.
   */
  setFlags(uids: Iterable<number>, op: 'set' | 'add' | 'remove', flags: readonly string[], opts: { unchangedSince?: number } = {}): Promise<FlagChange[]> {
    return this.#open.setFlags(uids, op, flags, opts.unchangedSince, this);
  }

  /**
   * APPEND, COPY, MOVE: adds the messages at the end, durably, all or none
   * (crash-safe, as deliveries); resolves to their UIDs in order (APPENDUID,
   * COPYUID, RFC 4315). Content must not wait on the network: spool it first.
   */
  append(items: readonly AppendItem[]): Promise<number[]> {
    return this.#open.append(items, this);
  }

  /** EXPUNGE, CLOSE, MOVE, POP3 QUIT: removes these messages (crash-safe rewrite); resolves to the UIDs removed. */
  expunge(uids: Iterable<number>): Promise<number[]> {
    return this.#open.expunge(uids, this);
  }

  /**
   * The message's bytes: unquoted, LF line ends, as stored. Checked against
   * the mbox before the first byte (message-reader.ts): throws
   * MessageExpungedError or MessageChangedError instead of other bytes.
   * Pass the record the caller sized its reply by (FETCH's literal, POP3's
   * octet count) as `expected`, so a change in between is caught too.
   */
  read(uid: number, expected?: MessageRecord): AsyncIterable<Buffer> {
    return this.#open.read(uid, expected);
  }

  /**
   * read() of a message of up to 128 KiB in the mbox (almost all mail): its
   * bytes in one buffer, read and checked at once, without a wait (FETCH of
   * small bodies, imap/fetch-batch.ts). null for a larger message: read() it.
   */
  readSmall(uid: number, expected?: MessageRecord): Buffer | null {
    return this.#open.readSmall(uid, expected);
  }

  /**
   * readSmall() as a string of one character per byte ('latin1'), for a
   * caller that works on the message as text (POP3's RETR): no buffer is
   * made for it (message-reader.ts readSmallText).
   */
  readSmallText(uid: number, expected?: MessageRecord): string | null {
    return this.#open.readSmallText(uid, expected);
  }

  /**
   * The messages with these UIDs (ascending; those no longer there are
   * skipped), each visited in file order with its header section or all of
   * it, read in large blocks and checked as read() checks (a changed file
   * throws MessageChangedError). See store/sequential-reader.ts.
   */
  readInOrder(uids: readonly number[], extent: ReadExtent, visitor: (uid: number, content: MessageContent) => void | Promise<void>): Promise<void> {
    return readInOrder(this.#open.reads, uids, extent, visitor);
  }

  /**
   * Values kept in the message cache (store/message-cache.ts): for uids[j]
   * (ascending) and kinds[i] (0..7; the caller says what they mean), the
   * byte string at out[j * kinds.length + i], null for a message no longer
   * there. What the cache lacks is worked out by `fill` from the messages
   * (read in file order) and kept for next time.
   */
  cachedValues(uids: readonly number[], kinds: readonly number[], fill: CacheFill): Promise<(string | null)[]> {
    return cachedValues(this.#open.reads, uids, kinds, fill);
  }

  /** IDLE (RFC 2177): while on, changes by other programs are noticed within POLL_MS. */
  watch(on: boolean): void {
    this.#open.watch(this, on);
  }

  /** Done with it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed || !this.#state) return;
    this.#closed = true;
    this.removeAllListeners();
    await detach(this.#state, this);
  }

  /** True once the folder was deleted or renamed away (then changes throw NoSuchFolderError). */
  get gone(): boolean {
    return this.#state?.gone ?? false;
  }
}

export { NoSuchFolderError };
