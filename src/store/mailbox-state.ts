// The state of one open mailbox, shared by every session on it in this
// process (IMAP and POP3): the index in memory, the open mbox file, the
// snapshot sessions number their messages by, and the changes they must be
// told about. Sessions hold handles (mailbox.ts); the registry
// (mailbox-registry.ts) keeps one MailboxState per mbox path. Keeping the
// index in step with the files (sync, save, the flag journal) is
// mailbox-sync.ts's job; this file holds the operations and the news.
//
// Invariants:
//  - Operations run one at a time, in order (#enqueue), and each that
//    touches the mbox, the index or the flag journal holds the dot-lock.
//  - While open, the index in memory is the truth: it is what was last
//    written, plus the flag changes in the journal, plus (after a full
//    disk) what could not be written. The files are read again only when
//    the mbox changed (refresh) or the folder was replaced (INBOX renamed).
//  - A snapshot never changes. A new one is made when messages arrive or
//    leave; its UID array shares memory with the table until an expunge
//    (message-table.ts), so 1,000 sessions on one mailbox hold one array.
//  - Messages are read from the mbox file opened under the same lock as
//    the index it matches (an expunge or another program's rename replaces
//    the file; the old one stays open until its last reader is done).

import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import { withMailboxLock } from './dotlock.ts';
import { formatEntries } from './flag-journal.ts';
import type { FlagEntry } from './flag-journal.ts';
import { appendBatchLocked } from './mbox-append.ts';
import { expungeLocked } from './mbox-expunge.ts';
import type { IndexUpdate, MailboxIndex } from './mbox-index.ts';
import { LineEndNormalizer } from './line-ends.ts';
import type { MessageRecord } from './message-table.ts';
import { diffUids } from './mailbox-files.ts';
import { accountDirExists, MailboxSync, statIno } from './mailbox-sync.ts';
import { POLL_MS } from './mailbox-types.ts';
import type { AppendItem, FlagChange, FlagsEvent, Listener, MailboxChange, MailboxOptions, MailboxStatus, Snapshot } from './mailbox-types.ts';
import { NoSuchFolderError } from './store-errors.ts';
import { MessageCache } from './message-cache.ts';
import { readOne, readOneSmall, readOneSmallText } from './mailbox-reads.ts';
import type { ReadContext } from './mailbox-reads.ts';

export class MailboxState {
  readonly path: string;
  readonly handles = new Set<Listener>();
  readonly #opts: MailboxOptions;
  readonly #disk: MailboxSync;
  #snapshot: Snapshot;
  #tail: Promise<unknown> = Promise.resolve();
  #queuedRefresh: Promise<void> | null = null;
  readonly #watchers = new Set<Listener>();
  #poll: NodeJS.Timeout | null = null;
  #gone = false;
  #cache: MessageCache | null = null; // made on first use

  private constructor(opts: MailboxOptions, disk: MailboxSync) {
    this.path = disk.path;
    this.#opts = opts;
    this.#disk = disk;
    this.#snapshot = { uids: disk.index.messages.uidView(), version: 1 };
  }

  // The index in memory: read from the disk side each time, since a sync
  // or an expunge replaces it.
  get #index(): MailboxIndex {
    return this.#disk.index;
  }

  /** Loads (and reconciles) the index under the dot-lock, and opens the mbox with it. */
  static async load(mboxPath: string, opts: MailboxOptions): Promise<MailboxState> {
    // No account directory yet (no mail ever arrived): an empty mailbox.
    if (!accountDirExists(mboxPath)) return new MailboxState(opts, MailboxSync.empty(mboxPath, opts));
    const disk = await withMailboxLock(mboxPath, () => MailboxSync.loadLocked(mboxPath, opts), { timeoutMs: opts.lockTimeoutMs });
    return new MailboxState(opts, disk);
  }

  // ---- Reading (synchronous, from memory) ----

  get index(): MailboxIndex {
    return this.#index;
  }

  get gone(): boolean {
    return this.#gone;
  }

  snapshot(): Snapshot {
    return this.#snapshot;
  }

  message(uid: number): MessageRecord | undefined {
    const k = this.#index.messages.find(uid);
    return k < 0 ? undefined : this.#index.messages.record(k);
  }

  status(): MailboxStatus {
    const { messages: table, uidNext, uidValidity, highestModseq, recentUid } = this.#index;
    let unseen = 0;
    let recent = 0;
    const seenSets = new Map<number, boolean>(); // per flag set: does it hold \Seen?
    for (let k = 0; k < table.length; k++) {
      const id = table.flagIdAt(k);
      let seen = seenSets.get(id);
      if (seen === undefined) seenSets.set(id, (seen = table.flags.list(id).includes('\\Seen')));
      if (!seen) unseen++;
      if (table.uidAt(k) >= recentUid) recent++;
    }
    return { messages: table.length, recent, unseen, uidNext, uidValidity, highestModseq };
  }

  /**
   * The UIDs no session has had as \Recent, now given to the caller alone
   * (RFC 3501 2.3.2); the mark is written to the flag journal.
   */
  claimRecent(): number[] {
    const index = this.#index;
    if (index.recentUid >= index.uidNext) return [];
    const uids = this.#index.messages.uidView();
    let first = uids.length;
    while (first > 0 && uids[first - 1] >= index.recentUid) first--;
    index.recentUid = index.uidNext;
    const mark = index.recentUid;
    void this.#enqueue(() => this.#locked(() => this.#disk.appendJournal(`recent ${mark}\n`))).catch(() => {}); // lost on a crash: harmless
    return Array.from(uids.subarray(first));
  }

  // ---- Changes ----

  /**
   * Cheap check (one stat) whether the mbox changed; if it did, brings the
   * index up to date under the dot-lock and tells the sessions.
   */
  refresh(force = false): Promise<void> {
    if (this.#gone) return Promise.resolve();
    if (!force && !this.#disk.reloadPending && this.#disk.fileUnchanged()) return Promise.resolve();
    // One queued refresh serves everyone who asks before it starts.
    this.#queuedRefresh ??= this.#enqueue(async () => {
      this.#queuedRefresh = null;
      // Still no account directory (no mail ever arrived): nothing to read, and no place for a lock.
      if (this.#index.messages.length === 0 && !accountDirExists(this.#disk.path)) return this.#disk.markSynced();
      await this.#locked(async () => this.#sync());
    });
    return this.#queuedRefresh;
  }

  async setFlags(uids: Iterable<number>, op: 'set' | 'add' | 'remove', flags: readonly string[], unchangedSince: number | undefined, origin: Listener | null): Promise<FlagChange[]> {
    const changes = await this.#enqueue(() =>
      this.#locked(async () => {
        this.#checkNotGone();
        const table = this.#index.messages;
        const planned: { k: number; flagId: number }[] = [];
        for (const uid of uids) {
          const k = table.find(uid);
          if (k < 0) continue; // expunged meanwhile: nothing to change (RFC 3501 6.4.6)
          if (unchangedSince !== undefined && table.modseqAt(k) > unchangedSince) continue; // RFC 7162 3.1.3
          const flagId = table.flags.apply(table.flagIdAt(k), op, flags);
          if (flagId !== table.flagIdAt(k)) planned.push({ k, flagId });
        }
        if (planned.length === 0) return [];
        // One STORE is one change: one new mod-sequence for all its
        // messages, as Dovecot gives one per transaction.
        const modseq = this.#index.highestModseq + 1;
        const entries: FlagEntry[] = planned.map(({ k, flagId }) => ({ uid: table.uidAt(k), modseq, flags: table.flags.text(flagId) }));
        await this.#disk.appendJournal(formatEntries(entries)); // first on disk, then in memory
        this.#index.highestModseq = modseq;
        for (const { k, flagId } of planned) table.setFlagsAt(k, flagId, modseq);
        await this.#disk.mergeJournalIfLarge();
        return planned.map(({ k, flagId }): FlagChange => ({ uid: table.uidAt(k), flags: table.flags.list(flagId), modseq }));
      }),
    );
    if (changes.length > 0) this.#emit('flags', { changes, origin } satisfies FlagsEvent);
    return changes;
  }

  async append(items: readonly AppendItem[], origin: Listener | null): Promise<number[]> {
    if (path.basename(this.path) === 'INBOX') await mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 });
    else if (statIno(this.path) === 0) throw new NoSuchFolderError('no such folder'); // (checked again under the lock)
    const uids = await this.#enqueue(() =>
      this.#locked(async () => {
        this.#checkNotGone();
        const table = this.#index.messages;
        const flagIds = items.map((item) => table.flags.idOf(item.flags)); // refuse bad flags before writing
        const requests = items.map((item) => ({
          envelopeFrom: '', // IMAP has no envelope sender: "MAILER-DAEMON", as Dovecot writes
          date: item.internalDate,
          content: () => lfContent(item.content),
        }));
        const rowsBefore = table.length;
        // APPEND to a folder that does not exist is refused (RFC 3501 6.3.11
        // TRYCREATE); only INBOX is made on the way, as a delivery makes it.
        if (statIno(this.path) === 0 && path.basename(this.path) !== 'INBOX') throw new NoSuchFolderError('no such folder');
        const results = await appendBatchLocked(this.path, requests, { allOrNothing: true });
        const change = await this.#sync({ publish: false, save: false }); // indexes the new messages (and anything else new)
        const index = this.#index;
        const added = results.map((result, i) => {
          const k = findByOffset(index, (result as { offset: number }).offset);
          if (k < 0) throw new Error(`appended message at byte ${(result as { offset: number }).offset} not found in the index`);
          if (flagIds[i] !== 0) index.messages.setFlagsAt(k, flagIds[i], index.messages.modseqAt(k));
          return index.messages.uidAt(k);
        });
        await this.#disk.persist(change === 'extended' && index.messages === table ? rowsBefore : null);
        return added;
      }),
    );
    this.#publish(origin);
    return uids;
  }

  async expunge(uids: Iterable<number>, origin: Listener | null): Promise<number[]> {
    const removed = await this.#enqueue(() =>
      this.#locked(async () => {
        this.#checkNotGone();
        await this.#sync(); // mail delivered since: indexed under its own UIDs, never removed
        const result = await expungeLocked(this.path, this.#index, new Set(uids), this.#opts);
        if (result.removed.length === 0) return [];
        await this.#disk.expunged(result.index); // the expunge renamed a new file into place
        return result.removed;
      }),
    );
    this.#publish(origin);
    return removed;
  }

  /**
   * The message's content (see message-reader.ts), checked against
   * `expected` (default: the record now); readSmall() the same in one
   * buffer (readSmallText() as text), or null for a large message. All in
   * mailbox-reads.ts.
   */
  read(uid: number, expected?: MessageRecord): AsyncIterable<Buffer> {
    return readOne(this.reads, uid, expected);
  }

  readSmall(uid: number, expected?: MessageRecord): Buffer | null {
    return readOneSmall(this.reads, uid, expected);
  }

  readSmallText(uid: number, expected?: MessageRecord): string | null {
    return readOneSmallText(this.reads, uid, expected);
  }

  /** What reads of messages and the message cache need (mailbox-reads.ts). */
  readonly reads: ReadContext = {
    table: () => this.#index.messages,
    uidValidity: () => this.#index.uidValidity,
    file: () => this.#disk.file,
    // Its writes run in this queue, under the lock (message-cache.ts), never
    // for a folder gone: they would leave a cache file beside no mbox.
    cache: () =>
      (this.#cache ??= new MessageCache(this.path, {
        subject: () => ({ table: this.#index.messages, uidValidity: this.#index.uidValidity }),
        schedule: (job) =>
          void this.#enqueue(async () => {
            if (!this.#gone && statIno(this.path) !== 0) await this.#locked(job);
          }).catch(() => {}),
        write: this.#opts.writeCache,
      })),
    changed: () => void this.refresh(true).catch(() => {}),
  };

  // ---- Life cycle ----

  /** IDLE: while some handle watches, the mbox is checked every POLL_MS for other programs' changes. */
  watch(handle: Listener, on: boolean): void {
    if (on) this.#watchers.add(handle);
    else this.#watchers.delete(handle);
    if (this.#watchers.size > 0 && !this.#poll) {
      this.#poll = setInterval(() => void this.refresh().catch(() => {}), POLL_MS);
      this.#poll.unref();
    } else if (this.#watchers.size === 0 && this.#poll) {
      clearInterval(this.#poll);
      this.#poll = null;
    }
  }

  /** The folder was deleted or renamed away: tell the sessions, refuse further changes. */
  markGone(): void {
    if (this.#gone) return;
    this.#gone = true;
    this.#emit('gone', null);
  }

  /** The file at this path was replaced (INBOX renamed): read it again from disk. */
  markReplaced(): Promise<void> {
    this.#disk.markReplaced();
    return this.refresh();
  }

  /**
   * Nobody has it open (the registry keeps it a while): the file is closed,
   * so an idle mailbox holds no descriptor; the next refresh reopens it
   * under the lock.
   */
  suspend(): Promise<void> {
    return this.#enqueue(async () => {
      if (this.handles.size > 0) return;
      this.#disk.closeFile(true); // the next refresh reopens the file
      this.#cache?.close();
    });
  }

  /** After the last handle closed: flags kept only in memory are written if possible, the file closed. */
  async dispose(): Promise<void> {
    this.#watchers.clear();
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    await this.#enqueue(async () => {
      if (this.#disk.unsavedFlags && !this.#gone) await this.#locked(() => this.#disk.save()).catch(() => {});
      this.#disk.closeFile(false);
      this.#cache?.close();
      this.#cache = null;
    });
  }

  // ---- Inside ----

  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn, fn);
    this.#tail = run.catch(() => {});
    return run;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    return withMailboxLock(this.path, fn, { timeoutMs: this.#opts.lockTimeoutMs });
  }

  #checkNotGone(): void {
    if (this.#gone) throw new NoSuchFolderError('the folder was deleted or renamed');
  }

  // Brings the index up to date with the mbox (under the lock) and tells
  // the sessions. With publish false the caller tells them; with save
  // false the caller saves the index (it changes it further first).
  async #sync({ publish = true, save = true } = {}): Promise<IndexUpdate['change']> {
    const change = await this.#disk.sync(save, () => {
      this.#cache?.discard(); // (the file rewritten by another program: see removeMessageCache)
      this.#cache = null;
    });
    if (publish) this.#publish(null);
    return change;
  }

  // Compares the snapshot with the table and, if the message list changed,
  // makes a new snapshot and tells every handle what changed.
  #publish(origin: Listener | null): void {
    this.#disk.markSynced();
    const before = this.#snapshot.uids;
    const after = this.#index.messages.uidView();
    const { expunged, appended } = diffUids(before, after);
    if (expunged.length === 0 && appended.length === 0) return; // (a rescan may give equal UIDs in a new array: keep the old)
    const version = this.#snapshot.version + 1;
    this.#snapshot = { uids: after, version };
    this.#emit('changed', { version, expunged, appended, origin } satisfies MailboxChange);
  }

  #emit(event: string, payload: unknown): void {
    for (const handle of this.handles) handle.emit(event, payload);
  }
}

function findByOffset(index: MailboxIndex, offset: number): number {
  const table = index.messages;
  for (let k = table.length - 1; k >= 0; k--) {
    const here = table.offsetAt(k);
    if (here === offset) return k;
    if (here < offset) break;
  }
  return -1;
}

async function* lfContent(content: () => AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const normalizer = new LineEndNormalizer();
  for await (const chunk of content()) yield normalizer.push(chunk);
  yield normalizer.end();
}
