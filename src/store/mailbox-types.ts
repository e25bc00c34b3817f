// The types a session meets on an open mailbox (mailbox.ts): snapshots,
// change events, flag changes, items to append, status figures, options.
// Kept apart from the state (mailbox-state.ts) so each file reads alone.

import type { IndexWriter, JournalAppender } from './mbox-index.ts';
import type { CacheWriter } from './message-cache.ts';

/** The UIDs of a mailbox at one moment, in order: message n is uids[n - 1]. Never changes. */
export interface Snapshot {
  readonly uids: Uint32Array;
  /** Goes up by one with each change of the message list. */
  readonly version: number;
}

/** A session's handle, as the state sees it: something events are emitted on. */
export interface Listener {
  emit(event: string, payload: unknown): boolean;
}

/** Event `changed`: messages arrived and/or left (one step from version - 1 to version). */
export interface MailboxChange {
  version: number;
  /** UIDs no longer in the mailbox, ascending. */
  expunged: readonly number[];
  /** UIDs new in the mailbox, ascending (all above the old ones). */
  appended: readonly number[];
  /** The handle whose call made the change; null for a delivery or another program. */
  origin: Listener | null;
}

/** One message's flags after a change. */
export interface FlagChange {
  uid: number;
  flags: readonly string[];
  modseq: number;
}

/** Event `flags`. */
export interface FlagsEvent {
  changes: readonly FlagChange[];
  origin: Listener | null;
}

/** One message for append(). */
export interface AppendItem {
  /** The message, CRLF or LF line ends (stored as LF). Must not wait on the network: the lock is held. */
  content: () => AsyncIterable<Buffer>;
  flags: readonly string[];
  /** IMAP internal date (RFC 3501 6.3.11); kept to the second, in the From line. */
  internalDate: Date;
}

/** What STATUS (RFC 3501 6.3.10) and SELECT report. */
export interface MailboxStatus {
  messages: number;
  recent: number;
  unseen: number;
  uidNext: number;
  uidValidity: number;
  highestModseq: number;
}

export interface MailboxOptions {
  lockTimeoutMs?: number;
  /** Clock in milliseconds (Date.now), for a new UIDVALIDITY. */
  now?: () => number;
  /** For tests: how the index file is written (mbox-index.ts). */
  writeIndex?: IndexWriter;
  /** For tests: how lines are appended to the index journal (mbox-index.ts). */
  appendJournal?: JournalAppender;
  /** For tests: how the message cache writes its file (message-cache.ts). */
  writeCache?: CacheWriter;
}

/** How often IDLE sessions' mailboxes are checked for changes by other programs. */
export const POLL_MS = 1000;
