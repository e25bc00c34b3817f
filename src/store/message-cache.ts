// A cache of what is expensive to work out from a message, kept beside its
// index: ".<name>.cache" (paths.ts reserves names starting with "."). The
// IMAP layer keeps there each message's parsed ENVELOPE and BODYSTRUCTURE
// and the text SEARCH looks in, so that listing a folder twice does not
// parse it twice. To the store these are opaque byte strings by kind
// (a small number the caller gives meaning to).
//
// The file (message-cache-file.ts) is a list of records, one value each,
// appended as values are worked out; each record names its message (UIDVALIDITY,
// UID) and what the message looked like (fingerprint, size), with a CRC.
// In memory only where each value is (message-cache-directory.ts, typed
// arrays); values are read back from the file when asked for, many at once,
// in large reads.
// Values worked out and not written yet wait, encoded, in
// message-cache-pending.ts.
//
// Never wrong: a value is used only if its record is whole, its CRC holds and
// it names the message as the index has it now. Anything else (a record torn
// by a crash, a rewritten mbox, a new UIDVALIDITY, another program's file)
// is a miss: the caller works the value out again and it is stored anew.
//
// Written without fsync (it is a cache), after the answer, in one write
// per reading (or per megabyte of values), by a job the
// mailbox runs in its operation queue under the mailbox's dot-lock
// (mailbox-state.ts): the queue orders writes with the expunge and the
// rescans that rebuild the message table, and the dot-lock with any other
// process of this server. Reading needs no lock: records check themselves.
// Bounded: MAX_FILE_BYTES; values above MAX_VALUE_BYTES are not kept. When
// more than half of the file is dead (values replaced, messages expunged),
// it is compacted: the live records copied to a new file renamed over it.
// A full disk (or any other write error) turns writing off for a while;
// reading goes on, and a FETCH or SEARCH never fails because of the cache.

import { closeSync, constants, fstatSync, ftruncateSync, openSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { CacheDirectory, MAX_KINDS } from './message-cache-directory.ts';
import { BufferedWriter, cachePathFor, FILE_HEADER, readRecord, readRecords, recordHeaderAt, scanRecords, writeAt } from './message-cache-file.ts';
import { PendingRecords } from './message-cache-pending.ts';
import type { CacheRecordRef, CacheWriter, RecordHeader, RecordKey } from './message-cache-file.ts';
import type { MessageTable } from './message-table.ts';

export { MAX_KINDS };
export type { CacheWriter, RecordKey };

export const MAX_FILE_BYTES = 256 * 1024 * 1024;
export const MAX_VALUE_BYTES = 64 * 1024;
/**
 * Past this much waiting, a write is queued at once; below it, when the
 * reader is done (writeSoon). Each write takes the mailbox's dot-lock (a few
 * system calls): one per megabyte, not one per message, while FETCH 1:*
 * works out 50,000 values.
 */
const WRITE_AT_BYTES = 1024 * 1024;
/** Below this, dead records are left alone. */
const MIN_COMPACT_BYTES = 1024 * 1024;
/** After a write failed (a full disk), values are not written for this long. */
const WRITE_PAUSE_MS = 60_000;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** What the mailbox is now: the message table and UIDVALIDITY the values must match. */
export interface CacheSubject {
  table: MessageTable;
  uidValidity: number;
}

export interface MessageCacheOptions {
  /** Runs a job in the mailbox's operation queue, holding its lock (mailbox-state.ts). */
  schedule: (job: () => Promise<void>) => void;
  /** The mailbox as it is when a job runs. */
  subject: () => CacheSubject;
  write?: CacheWriter;
  now?: () => number;
}

export class MessageCache {
  readonly path: string;
  readonly #opts: MessageCacheOptions;
  readonly #directory = new CacheDirectory();
  #fd: number | null = null;
  #generation = 0; // counts closes: a load that sees it move stops
  #ino = 0; // of the file the directory describes (0: none yet)
  #end = 0; // where the next record goes: the end of the good records
  #loaded: Promise<void> | null = null;
  #uidValidity = 0;
  readonly #pending = new PendingRecords(); // records put() made, not written yet
  #writePausedUntil = 0;
  #writeQueued = false;
  #compactionQueued = false;
  #discarded = false;
  #key: RecordKey = { uidValidity: 0, uid: 0, fingerprintHigh: 0, fingerprintLow: 0, size: 0, kind: 0 };
  readonly #halves = new Uint32Array(2);

  constructor(mboxPath: string, opts: MessageCacheOptions) {
    this.path = cachePathFor(mboxPath);
    this.#opts = opts;
  }

  /** Loads where the values are (once: it reads the file through), and follows the mailbox as it is now. */
  async ready(): Promise<void> {
    this.#loaded ??= this.#load().catch(() => this.#forget());
    await this.#loaded;
    this.#follow();
    // Messages expunged since: their records are dead; past half the file, it is compacted.
    if (this.#mostlyDead() && !this.#compactionQueued) {
      this.#compactionQueued = true;
      this.#opts.schedule(async () => {
        this.#compactionQueued = false;
        this.#follow();
        if (this.#mostlyDead() && this.#fd !== null) this.#compact();
      });
    }
  }

  /**
   * The values of `kinds` of the rows `rows` (-1: none) into
   * out[j * kinds.length + i]; returns per row a bit mask of the kinds (bit
   * i for kinds[i]) it did not find. Synchronous: call it right after
   * ready(), with the table as it is then.
   */
  lookup(rows: ArrayLike<number>, kinds: readonly number[], out: (string | null)[]): Uint8Array {
    const missing = new Uint8Array(rows.length).fill((1 << kinds.length) - 1);
    this.#follow(); // (the table may have changed since ready())
    if (!this.#reopen()) return missing;
    const { table } = this.#opts.subject();
    const records: CacheRecordRef[] = [];
    for (let j = 0; j < rows.length; j++) {
      const k = rows[j];
      if (k < 0) continue;
      for (let i = 0; i < kinds.length; i++) {
        const offset = this.#directory.offsetAt(kinds[i], k);
        if (offset !== 0) records.push({ offset, length: this.#directory.lengthAt(kinds[i], k), kind: kinds[i], k, slot: j * kinds.length + i });
      }
    }
    readRecords(this.#fd!, records, (bytes, at, record) => {
      const checked = this.#directory.checkedAt(record.kind, record.k);
      const value = readRecord(bytes, at, this.#keyOf(table, record.k, record.kind), !checked);
      const j = Math.floor(record.slot / kinds.length);
      if (value === null) {
        this.#directory.drop(record.kind, record.k); // torn, damaged or stale: worked out again
        return;
      }
      if (!checked) this.#directory.markChecked(record.kind, record.k);
      out[record.slot] = value;
      missing[j] &= ~(1 << record.slot % kinds.length);
    });
    return missing;
  }

  /**
   * Keeps `value` as the value `key` names (written later, by a job in the
   * mailbox's queue). The key is the message as it was when the value was
   * worked out from it (the row may be another message's by now); it is
   * copied at once. Call writeSoon() when done putting.
   */
  put(key: RecordKey, value: string): void {
    if (value.length > MAX_VALUE_BYTES || key.kind < 0 || key.kind >= MAX_KINDS || this.#discarded) return;
    if ((this.#opts.now ?? Date.now)() < this.#writePausedUntil) return;
    if (!this.#pending.add(key, value)) return;
    if (this.#pending.length >= WRITE_AT_BYTES) this.writeSoon();
  }

  /** Queues the write of what put() kept, unless one is queued already. */
  writeSoon(): void {
    if (this.#pending.length === 0 || this.#writeQueued) return;
    this.#writeQueued = true;
    this.#opts.schedule(() => this.flush());
  }

  /** Writes the values kept by put() (the mailbox runs it in its queue, holding its lock). */
  async flush(): Promise<void> {
    this.#writeQueued = false; // (values put from here on queue another write)
    try {
      await this.ready(); // (the file's records known before any is written)
    } catch {
      // (ready() does not fail: a file it cannot read is no cache)
    }
    // From here on synchronous: nothing else touches the file or the directory meanwhile.
    const written = this.#pending.take();
    if (written.length === 0 || this.#discarded) return;
    try {
      this.#openForWriting();
      if (this.#end + written.length > MAX_FILE_BYTES) this.#compact();
      if (this.#end + written.length > MAX_FILE_BYTES) return; // full: no more values this time
      if (fstatSync(this.#fd!).size !== this.#end) ftruncateSync(this.#fd!, this.#end); // a torn tail, or another writer's records
      (this.#opts.write ?? writeAt)(this.#fd!, written, this.#end);
      // Now the directory, from the records' own headers.
      const { table } = this.#opts.subject();
      for (let at = 0; at < written.length; ) {
        const record = recordHeaderAt(written, at, MAX_VALUE_BYTES) as RecordHeader; // (written just now by put())
        const k = table.find(record.uid);
        if (k >= 0 && this.#matches(table, k, record)) this.#directory.set(record.kind, k, this.#end + at, record.length, true); // (written just now)
        else this.#directory.deadBytes += record.length;
        at += record.length;
      }
      this.#end += written.length;
      if (this.#mostlyDead()) this.#compact();
    } catch {
      // A full disk, or anything else: drop what did not go out, pause writing. Reading goes on.
      this.#writePausedUntil = (this.#opts.now ?? Date.now)() + WRITE_PAUSE_MS;
      if (this.#fd !== null) {
        try {
          ftruncateSync(this.#fd, this.#end);
        } catch {
          // the next write tries again
        }
      }
    }
  }

  /** No session has the mailbox open: close the file (an idle mailbox holds no descriptor); the directory stays. */
  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    this.#generation++;
  }

  /** Closes the file for good: values put or queued now are not written (the file was removed: removeMessageCache). */
  discard(): void {
    this.#discarded = true;
    this.#pending.clear();
    this.close();
  }

  /** Memory the directory takes (for the benchmark). */
  get byteLength(): number {
    return this.#directory.byteLength;
  }

  // ---- Inside ----

  #keyOf(table: MessageTable, k: number, kind: number): RecordKey {
    const key = this.#key;
    table.fingerprintHalves(k, this.#halves);
    key.uidValidity = this.#uidValidity;
    key.uid = table.uidAt(k);
    key.fingerprintHigh = this.#halves[0];
    key.fingerprintLow = this.#halves[1];
    key.size = table.sizeAt(k);
    key.kind = kind;
    return key;
  }

  #matches(table: MessageTable, k: number, key: RecordKey): boolean {
    table.fingerprintHalves(k, this.#halves);
    return (
      key.uidValidity === this.#uidValidity && this.#halves[0] === key.fingerprintHigh >>> 0 &&
      this.#halves[1] === key.fingerprintLow >>> 0 && table.sizeAt(k) === key.size
    );
  }

  #mostlyDead(): boolean {
    const used = this.#end - FILE_HEADER.length;
    return used > MIN_COMPACT_BYTES && this.#directory.deadBytes * 2 > used;
  }

  // Follows the table's rows, and forgets everything if UIDVALIDITY changed.
  #follow(): void {
    const { table, uidValidity } = this.#opts.subject();
    if (uidValidity !== this.#uidValidity) {
      this.#directory.clear();
      this.#uidValidity = uidValidity;
    }
    this.#directory.align(table.uidView());
  }

  // Reads the file through once, noting where each value of a message that
  // is still there (as it is now) lies; a torn or damaged tail ends it.
  async #load(): Promise<void> {
    const { table, uidValidity } = this.#opts.subject();
    this.#uidValidity = uidValidity;
    this.#directory.align(table.uidView());
    this.#directory.clear();
    this.#directory.deadBytes = 0;
    if (!this.#reopen()) return;
    const generation = this.#generation;
    const end = await scanRecords(this.#fd!, MAX_VALUE_BYTES, () => this.#generation === generation, (record, offset) => {
      const k = table.find(record.uid);
      if (k >= 0 && record.kind < MAX_KINDS && this.#matches(table, k, record)) this.#directory.set(record.kind, k, offset, record.length);
      else this.#directory.deadBytes += record.length;
    });
    if (end === null) this.#loaded = null; // closed meanwhile (the mailbox went idle): loaded again next time
    else this.#end = end;
  }

  // The file open (for reading) if it exists and is the one the directory
  // describes; a file that is not (replaced, or gone) empties the directory.
  #reopen(): boolean {
    if (this.#fd !== null) return true;
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDWR | O_NOFOLLOW);
    } catch {
      if (this.#ino !== 0) this.#forget();
      return false;
    }
    const { ino, size } = fstatSync(fd);
    if (this.#ino !== 0 && (ino !== this.#ino || size < this.#end)) this.#forget();
    this.#fd = fd;
    this.#ino = ino;
    return true;
  }

  // Open for writing: the file at the path must be ours; a missing or
  // replaced one is started afresh (the directory forgotten).
  #openForWriting(): void {
    if (this.#fd !== null) {
      let sameFile = false;
      try {
        sameFile = statSync(this.path).ino === this.#ino;
      } catch {
        // gone (the folder was deleted or renamed): start a new one
      }
      if (!sameFile) this.#forget();
    }
    if (!this.#reopen()) {
      const fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT | O_NOFOLLOW, 0o600);
      this.#fd = fd;
      this.#ino = fstatSync(fd).ino;
      this.#end = 0;
    }
    if (this.#end < FILE_HEADER.length) {
      ftruncateSync(this.#fd!, 0);
      (this.#opts.write ?? writeAt)(this.#fd!, FILE_HEADER, 0);
      this.#end = FILE_HEADER.length;
      this.#directory.clear();
      this.#directory.deadBytes = 0;
    }
  }

  // Forgets the file: no descriptor, no entries.
  #forget(): void {
    this.close();
    this.#directory.clear();
    this.#directory.deadBytes = 0;
    this.#ino = 0;
    this.#end = 0;
  }

  // Copies the live records, in file order, to a new file renamed over
  // this one; records that no longer check out are left behind.
  #compact(): void {
    const { table } = this.#opts.subject();
    const records: CacheRecordRef[] = [];
    this.#directory.forEach((kind, k, offset, length) => records.push({ offset, length, kind, k, slot: 0 }));
    const temporary = `${this.path}.new`;
    const out = openSync(temporary, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | O_NOFOLLOW, 0o600);
    try {
      const write = this.#opts.write ?? writeAt;
      const copy = new BufferedWriter(out, write);
      copy.add(FILE_HEADER);
      readRecords(this.#fd!, records, (bytes, at, record) => {
        if (readRecord(bytes, at, this.#keyOf(table, record.k, record.kind)) === null) return; // left behind
        record.slot = copy.position;
        copy.add(bytes.subarray(at, at + record.length));
      });
      copy.end();
      renameSync(temporary, this.path);
      closeSync(this.#fd!);
      this.#fd = out;
      this.#generation++;
      this.#ino = fstatSync(out).ino;
      this.#end = copy.position;
      for (const record of records) {
        if (record.slot === 0) this.#directory.drop(record.kind, record.k);
        else this.#directory.set(record.kind, record.k, record.slot, record.length, true); // (checked as it was copied)
      }
      this.#directory.deadBytes = 0;
    } catch (err) {
      closeSync(out);
      try {
        unlinkSync(temporary);
      } catch {
        // (a folder DELETE removes it too: folder-changes.ts)
      }
      throw err;
    }
  }
}

