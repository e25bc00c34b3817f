// A POP3 maildrop (RFC 1939): the user's INBOX as one session sees it.
//
// - The INBOX is opened as a shared mailbox (store/mailbox.ts), the same
//   state IMAP sessions on it use: the same UIDs, the same index file.
// - A snapshot taken at login: the messages listed at that moment, numbered
//   1..n, with their sizes. Mail that arrives during the session is neither
//   shown nor touched (RFC 1939 8: the maildrop is fixed for the session).
// - Messages are read by byte range from the mbox file the index was read
//   with (under one dot-lock), checked before the first byte goes out
//   (store/message-reader.ts): a message an IMAP session expunged meanwhile
//   is "-ERR No such message", one another program moved gives -ERR, never
//   other bytes.
// - Reading needs no free space: on a full disk the index is served from
//   memory (store/mbox-index.ts), so a user can still log in and read mail.
// - DELE only marks. The marked messages are removed in the UPDATE state
//   after QUIT, by store/mbox-expunge.ts (under the dot-lock, crash-safe,
//   keeping mail that arrived meanwhile byte for byte). A session that ends
//   any other way removes nothing.
// - One session per maildrop: a second login gets [IN-USE] (RFC 2449 8.1.1),
//   as RFC 1939 8 asks for an exclusive lock on the maildrop.

import { openMailbox } from '../store/mailbox.ts';
import type { Mailbox, MessageRecord } from '../store/mailbox.ts';
import { MessageChangedError } from '../store/message-reader.ts';
import { MessageExpungedError } from '../store/store-errors.ts';
import { mailboxPath } from '../store/paths.ts';
import { ReadAhead } from './read-ahead.ts';

/** Accounts with a POP3 session in the TRANSACTION state, in this process. */
const inUse = new Set<string>();

export class MaildropInUseError extends Error {}

/** A message of the snapshot: its identity and its size as LIST gave it. */
export interface MaildropMessage {
  readonly uid: number;
  /** Octets as the client receives them (RFC 1939 LIST). */
  readonly size: number;
}

export class Maildrop {
  readonly account: string;
  readonly messages: MaildropMessage[];
  readonly uidValidity: number;
  /** Message numbers (1-based) marked with DELE; only numbers get() returned. */
  readonly deleted = new Set<number>();
  /** The next message's answer, made ready while the client reads one (read-ahead.ts). */
  readonly readAhead = new ReadAhead();
  /** Size of every message in the snapshot, deleted or not. */
  private readonly totalOctets: number;
  private readonly mailbox: Mailbox;

  private constructor(account: string, mailbox: Mailbox) {
    this.account = account;
    this.mailbox = mailbox;
    this.uidValidity = mailbox.uidValidity;
    const uids = mailbox.snapshot().uids;
    this.messages = Array.from(uids, (uid) => ({ uid, size: mailbox.message(uid)!.size }));
    this.totalOctets = this.messages.reduce((sum, m) => sum + m.size, 0);
  }

  /** Lock the maildrop for this session and take the snapshot. */
  static async open(dataDir: string, account: string, lockTimeoutMs: number): Promise<Maildrop> {
    if (inUse.has(account)) throw new MaildropInUseError(`maildrop of ${account} is in use`);
    inUse.add(account);
    try {
      const mailbox = await openMailbox(mailboxPath(dataDir, account, 'INBOX'), { lockTimeoutMs });
      return new Maildrop(account, mailbox);
    } catch (err) {
      inUse.delete(account);
      throw err;
    }
  }

  /**
   * The message numbered `n` (1-based), or null if there is none, it is
   * marked deleted, or it has since been expunged (by an IMAP session).
   */
  get(n: number): MaildropMessage | null {
    if (!Number.isInteger(n) || n < 1 || n > this.messages.length || this.deleted.has(n)) return null;
    const message = this.messages[n - 1];
    return this.mailbox.rows().find(message.uid) >= 0 ? message : null;
  }

  /** Messages not marked deleted and their total size (STAT). */
  summary(): { count: number; octets: number } {
    // The snapshot never changes, so only the (usually few) marked messages
    // are visited: STAT costs nothing on a mailbox of 50,000 messages.
    let octets = this.totalOctets;
    for (const n of this.deleted) octets -= this.messages[n - 1].size;
    return { count: this.messages.length - this.deleted.size, octets };
  }

  /**
   * A unique id that survives sessions, restarts, deliveries and rewrites
   * (RFC 1939 7: UIDL): the index's UID, with UIDVALIDITY so an id is never
   * reused even if the index has to start over. IMAP shows the same UIDs.
   */
  uniqueId(message: MaildropMessage): string {
    return `${this.uidValidity}.${message.uid}`;
  }

  /**
   * The message's bytes as stored (LF line endings), mboxrd quoting undone.
   * Throws before the first byte if it was expunged, or if it is no longer
   * the size this session announced (another program rewrote it).
   */
  read(message: MaildropMessage): AsyncIterable<Buffer> {
    let record: MessageRecord;
    try {
      record = this.recordOf(message);
    } catch (error) {
      return failing(error as Error);
    }
    return readChecked(this.mailbox, message.uid, record);
  }

  /**
   * read() of a message of up to 128 KiB (almost all mail) as text, one
   * character per byte, read and checked at once (Mailbox.readSmallText);
   * null for a larger one, which read() streams. Throws what read() would,
   * before anything is sent.
   */
  readSmallText(message: MaildropMessage): string | null {
    this.checkUnchanged(message);
    return this.mailbox.readSmallText(message.uid); // (checked against the index as it is now: nothing waited in between)
  }

  /** The message's record now; throws if it was expunged or changed size since login. */
  private recordOf(message: MaildropMessage): MessageRecord {
    this.checkUnchanged(message);
    return this.mailbox.message(message.uid)!;
  }

  /** Is the message still there, of the size this session announced? */
  isUnchanged(message: MaildropMessage): boolean {
    const rows = this.mailbox.rows();
    const k = rows.find(message.uid);
    return k >= 0 && rows.sizeAt(k) === message.size;
  }

  /** Throws if the message was expunged or changed size since login. */
  private checkUnchanged(message: MaildropMessage): void {
    const rows = this.mailbox.rows();
    const k = rows.find(message.uid);
    if (k < 0) throw new MessageExpungedError(`message UID ${message.uid} has been expunged`);
    if (rows.sizeAt(k) !== message.size) throw new MessageChangedError(`message UID ${message.uid} changed size since login`);
  }

  /** RSET: unmark everything. */
  reset(): void {
    this.deleted.clear();
  }

  /**
   * The UPDATE state (RFC 1939 6): remove the messages marked deleted
   * (IMAP sessions on the INBOX see them expunged). Returns how many were
   * removed.
   */
  async commit(_lockTimeoutMs: number): Promise<number> {
    if (this.deleted.size === 0) return 0;
    const uids = [...this.deleted].map((n) => this.messages[n - 1].uid);
    return (await this.mailbox.expunge(uids)).length;
  }

  /** End of session, whatever happened: release the mailbox and the maildrop lock. */
  async release(): Promise<void> {
    this.readAhead.clear();
    try {
      await this.mailbox.close();
    } finally {
      inUse.delete(this.account);
    }
  }
}

async function* failing(error: Error): AsyncGenerator<Buffer> {
  throw error;
}

/**
 * A message of up to 128 KiB (almost all mail) in one checked read
 * (Mailbox.readSmall), a larger one streamed; either way a changed file
 * throws at the first next(), before a byte is sent.
 */
async function* readChecked(mailbox: Mailbox, uid: number, record: MessageRecord): AsyncGenerator<Buffer> {
  const small = mailbox.readSmall(uid, record);
  if (small) yield small;
  else yield* mailbox.read(uid, record);
}
