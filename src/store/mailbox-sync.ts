// The disk side of an open mailbox (mailbox-state.ts): the index in memory
// kept in step with the files it describes: the mbox (read again when it
// changed), the side index and the flag journal (written when flags change
// or messages arrive), and the mbox file that messages are read from.
// mailbox-state.ts holds the operations and tells the sessions; this file
// only knows files.
//
// Every method that touches a file is called under the dot-lock, from the
// state's queue (one at a time): nothing here takes a lock or queues.
//
// A full disk loses nothing that is already known: a flag change that the
// journal cannot take is kept in memory (unsavedFlags) and written with the
// whole index at the next save that finds room.

import { statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import * as path from 'node:path';
import { isDiskFull } from './disk-full.ts';
import { appendFlagJournal, isJournalSmall, journalSize } from './flag-journal.ts';
import { emptyIndex, newUidValidity, openMbox, persistIndex, updateIndexLocked } from './mbox-index.ts';
import type { IndexUpdate, IndexUpdateOptions, MailboxIndex } from './mbox-index.ts';
import { OpenFile } from './mailbox-files.ts';
import type { MailboxOptions } from './mailbox-types.ts';
import { removeMessageCache } from './message-cache-file.ts';

export class MailboxSync {
  readonly path: string;
  readonly #opts: MailboxOptions;
  #index: MailboxIndex;
  #file: OpenFile | null = null;
  /** The mbox as of the last finished sync (see fileUnchanged). */
  #synced: { size: number; mtimeMs: number | undefined; ino: number } = { size: -1, mtimeMs: undefined, ino: -1 };
  #journalBytes = 0;
  #unsavedFlags = false; // flag changes only in memory (the journal could not be written)
  #reloadFromDisk = false;

  private constructor(mboxPath: string, opts: MailboxOptions, index: MailboxIndex) {
    this.path = mboxPath;
    this.#opts = opts;
    this.#index = index;
  }

  /** A mailbox whose account directory does not exist yet (no mail ever arrived): empty. */
  static empty(mboxPath: string, opts: MailboxOptions): MailboxSync {
    const sync = new MailboxSync(mboxPath, opts, emptyIndex(newUidValidity(mboxPath, opts.now ?? Date.now, null)));
    sync.markSynced();
    return sync;
  }

  /** Loads (and reconciles) the index, and opens the mbox with it. Under the lock. */
  static async loadLocked(mboxPath: string, opts: MailboxOptions): Promise<MailboxSync> {
    const { index, ino, change } = await updateIndexLocked(mboxPath, opts);
    if (change === 'rebuilt') removeMessageCache(mboxPath);
    const sync = new MailboxSync(mboxPath, opts, index);
    await sync.#openFile(ino);
    sync.#journalBytes = journalSize(mboxPath);
    sync.markSynced();
    return sync;
  }

  /** While open, the truth (see mailbox-state.ts's invariants). */
  get index(): MailboxIndex {
    return this.#index;
  }

  /** The mbox file opened with this index (null: there is no mbox). */
  get file(): OpenFile | null {
    return this.#file;
  }

  /** Flag changes that only memory holds (a full disk): dispose tries to save them. */
  get unsavedFlags(): boolean {
    return this.#unsavedFlags;
  }

  /** Whether the next refresh must read the files again, whatever stat says. */
  get reloadPending(): boolean {
    return this.#reloadFromDisk;
  }

  /** The file at this path was replaced (INBOX renamed): the next sync reads it from disk. */
  markReplaced(): void {
    this.#reloadFromDisk = true;
  }

  /** Whether the mbox is as the last finished sync saw it (one stat). */
  fileUnchanged(): boolean {
    // Compared with what the last finished sync saw, not with the index in
    // memory: a sync in progress updates the index before it tells the
    // sessions, and a refresh that looked in between would wrongly find
    // nothing new (and its caller would not wait for the news).
    const seen = this.#synced;
    let st: Stats;
    try {
      st = statSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      return seen.ino === 0 && seen.size === 0;
    }
    return st.size === seen.size && st.mtimeMs === seen.mtimeMs && st.ino === seen.ino;
  }

  /** Remembers the file as the index now describes it: the state sessions have been told about. */
  markSynced(): void {
    this.#synced = { size: this.#index.mboxSize, mtimeMs: this.#index.mboxMtimeMs, ino: this.#file?.ino ?? 0 };
  }

  /**
   * Brings the index up to date with the mbox. With save false the caller
   * saves the index (it changes it further first). `onRebuilt` runs when
   * another program rewrote the file, before the new index is used.
   */
  async sync(save: boolean, onRebuilt: () => void): Promise<IndexUpdate['change']> {
    const fromDisk = this.#reloadFromDisk;
    this.#reloadFromDisk = false;
    const options: IndexUpdateOptions = { ...this.#opts, save };
    const update = await updateIndexLocked(this.path, options, fromDisk ? null : this.#index);
    if (update.change === 'rebuilt') {
      onRebuilt();
      removeMessageCache(this.path);
    }
    this.#index = update.index;
    await this.#openFile(update.ino);
    this.#journalBytes = journalSize(this.path);
    return update.change;
  }

  /** After an expunge wrote `index` and renamed a new mbox into place. */
  async expunged(index: MailboxIndex): Promise<void> {
    this.#index = index;
    this.#journalBytes = journalSize(this.path);
    this.#unsavedFlags = false;
    await this.#openFile(statIno(this.path));
  }

  /** Closes the mbox (reads in progress finish first); with `forget`, the next refresh reopens it. */
  closeFile(forget: boolean): void {
    this.#file?.retire();
    this.#file = null;
    if (forget) this.#synced = { size: -1, mtimeMs: undefined, ino: -1 };
  }

  /** Appends lines to the flag journal; on a full disk they stay in memory (see the header). */
  async appendJournal(text: string): Promise<void> {
    try {
      this.#journalBytes = await (this.#opts.appendJournal ?? appendFlagJournal)(this.path, this.#index.uidValidity, text);
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // Kept in memory, written with the index when there is room (dispose, the next save).
      this.#unsavedFlags = true;
    }
  }

  /** Merges the journal into the index file once the journal is large (or holds less than memory). */
  async mergeJournalIfLarge(): Promise<void> {
    if (!isJournalSmall(this.#journalBytes, this.#index.messages.length) || this.#unsavedFlags) await this.save();
  }

  /** Writes the whole index. */
  async save(): Promise<void> {
    await this.persist(null);
  }

  /** Writes the index (or, for new rows from `appendedFrom` on, the journal). */
  async persist(appendedFrom: number | null): Promise<void> {
    const whole = appendedFrom === null || this.#unsavedFlags;
    if (await persistIndex(this.path, this.#index, this.#opts, whole ? null : appendedFrom)) {
      if (whole) this.#unsavedFlags = false;
    }
    this.#journalBytes = journalSize(this.path);
  }

  async #openFile(ino: number): Promise<void> {
    const previous = this.#file;
    if (previous && previous.ino === ino && ino !== 0) return;
    const handle = ino === 0 ? null : await openMbox(this.path);
    this.#file = handle ? new OpenFile(handle, (await handle.stat()).ino) : null;
    previous?.retire();
  }
}

/** The file's inode number; 0 if it does not exist. */
export function statIno(file: string): number {
  try {
    return statSync(file).ino;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Whether the account directory of `mboxPath` exists (else no mail ever arrived). */
export function accountDirExists(mboxPath: string): boolean {
  try {
    statSync(path.dirname(mboxPath));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return false;
  }
}
