// A POP3 maildrop (RFC 1939): the user's INBOX as one session sees it.
//
// - A snapshot taken at login: the messages listed by the side index at that
//   moment, numbered 1..n. Mail that arrives during the session is neither
//   shown nor touched (RFC 1939 8: the maildrop is fixed for the session).
// - The mbox file is opened once at login, under the same dot-lock as the
//   index is read (an expunge by another session or program replaces the
//   file; the handle we hold keeps every indexed byte where the index says),
//   and read by byte range, so RETR and TOP never scan the file.
// - Reading needs no free space: on a full disk the index is served from
//   memory (store/mbox-index.ts), so a user can still log in and read mail.
// - DELE only marks. The marked messages are removed in the UPDATE state
//   after QUIT, by store/mbox-expunge.ts (under the dot-lock, crash-safe,
//   keeping mail that arrived meanwhile byte for byte). A session that ends
//   any other way removes nothing.
// - One session per maildrop: a second login gets [IN-USE] (RFC 2449 8.1.1),
//   as RFC 1939 8 asks for an exclusive lock on the maildrop.

import type { FileHandle } from 'node:fs/promises';
import { readRange } from '../store/file-io.ts';
import { openIndexed } from '../store/mbox-index.ts';
import type { IndexedMessage, MailboxIndex } from '../store/mbox-index.ts';
import { expungeMessages } from '../store/mbox-expunge.ts';
import { MboxrdUnquoter } from '../store/mboxrd.ts';
import { mailboxPath } from '../store/paths.ts';

/** Accounts with a POP3 session in the TRANSACTION state, in this process. */
const inUse = new Set<string>();

export class MaildropInUseError extends Error {}

export class Maildrop {
  readonly account: string;
  readonly messages: IndexedMessage[];
  readonly uidValidity: number;
  /** Message numbers (1-based) marked with DELE; only numbers get() returned. */
  readonly deleted = new Set<number>();
  private readonly path: string;
  /** Size of every message in the snapshot, deleted or not. */
  private readonly totalOctets: number;
  private file: FileHandle | null;

  private constructor(account: string, path: string, index: MailboxIndex, file: FileHandle | null) {
    this.account = account;
    this.path = path;
    this.messages = index.messages;
    this.uidValidity = index.uidValidity;
    this.totalOctets = index.messages.reduce((sum, m) => sum + m.size, 0);
    this.file = file;
  }

  /** Lock the maildrop for this session and take the snapshot. */
  static async open(dataDir: string, account: string, lockTimeoutMs: number): Promise<Maildrop> {
    if (inUse.has(account)) throw new MaildropInUseError(`maildrop of ${account} is in use`);
    inUse.add(account);
    try {
      const path = mailboxPath(dataDir, account, 'INBOX');
      // Opened under the lock that read the index: every indexed byte is in
      // the file we hold. Deliveries only append, so it stays a true snapshot.
      const { index, file } = await openIndexed(path, { lockTimeoutMs });
      return new Maildrop(account, path, index, file);
    } catch (err) {
      inUse.delete(account);
      throw err;
    }
  }

  /** The message numbered `n` (1-based), or null if there is none or it is marked deleted. */
  get(n: number): IndexedMessage | null {
    if (!Number.isInteger(n) || n < 1 || n > this.messages.length || this.deleted.has(n)) return null;
    return this.messages[n - 1];
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
  uniqueId(message: IndexedMessage): string {
    return `${this.uidValidity}.${message.uid}`;
  }

  /** The message's bytes as stored (LF line endings), mboxrd quoting undone. */
  async *read(message: IndexedMessage): AsyncIterable<Buffer> {
    const unquoter = new MboxrdUnquoter();
    const end = message.offset + message.length;
    for await (const chunk of readRange(this.file!, message.contentOffset, end - message.contentOffset)) yield unquoter.push(chunk);
    const rest = unquoter.end(); // a ">From" cut short by the end of the message
    if (rest.length > 0) yield rest;
  }

  /** RSET: unmark everything. */
  reset(): void {
    this.deleted.clear();
  }

  /**
   * The UPDATE state (RFC 1939 6): remove the messages marked deleted.
   * Returns how many were removed.
   */
  async commit(lockTimeoutMs: number): Promise<number> {
    if (this.deleted.size === 0) return 0;
    const uids = new Set([...this.deleted].map((n) => this.messages[n - 1].uid));
    await this.closeFile(); // the expunge replaces the file
    const result = await expungeMessages(this.path, uids, { lockTimeoutMs });
    return result.removed.length;
  }

  private async closeFile(): Promise<void> {
    await this.file?.close().catch(() => {});
    this.file = null;
  }

  /** End of session, whatever happened: release the file and the maildrop lock. */
  async release(): Promise<void> {
    await this.closeFile();
    inUse.delete(this.account);
  }
}
