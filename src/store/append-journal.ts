// The append journal: what makes "never half a message" hold across a crash.
//
// The appender (mbox-append.ts) cuts a failed batch off with ftruncate, but
// a process that is killed (SIGKILL, the OOM killer, a power cut) runs no
// more code: half a message would stay in the mbox for good, POP3 would
// serve it as an ordinary message, and the sender's retry would add a whole
// second copy. So before each batch the appender writes down, durably,
// where the batch starts; whoever takes the lock next and finds a batch
// that never finished cuts the file back there.
//
// The journal is one small file per mbox, "<dir>/.<name>.append" (a hidden
// name, reserved by paths.ts), holding one fixed-size 512-byte record that
// is rewritten in place:
//   jjordan-append 1 ino=I start=N end=- ctime=- sum=...    a batch is being written at N
//   jjordan-append 1 ino=I start=N end=E ctime=T sum=...    the batch [N, E) is complete
//   jjordan-append 1 ino=I start=N end=E pages=C,C,.. sum=...  the batch [N, E) is planned
// I is the mbox's inode, T its ctime (ns) right after the batch was written,
// C the CRC-32 of the batch's bytes in each page (4 KiB of the file) they
// fall in, and sum a checksum of the rest, so a torn record reads as no record.
//
// Per batch, under the dot-lock, one of two ways:
// - A batch that fits in 64 KiB (a message or a few: mail to many
//   mailboxes comes one message per batch) is gathered whole first, so its
//   bytes are known before any is written:
//   1. write "end=E pages=..." and fdatasync it;
//   2. write the batch into the mbox and fsync it.
//   One small fsync more per batch than without a journal. A "planned"
//   record says by itself whether its batch is whole: the file reaches E,
//   or it is shorter and what it has of the batch is whole pages, each
//   matching its CRC. (A crash keeps a prefix of an append that ends on a
//   page boundary: the kernel copies and writes a file page by page, and
//   ext4, xfs and btrfs put the pages of an append on disk before the size
//   that covers them.) So no completion record and no second fsync: each
//   small fsync costs about 100 us of CPU here, and the two records had
//   cost a fifth of the rate of mail to many mailboxes.
// - A larger batch streams: its end is not known until it is written.
//   1. write "start=N" and fdatasync it, before any byte of the batch;
//   2. write the batch into the mbox;
//   3. write "start=N end=E ctime=T", and fdatasync it at the same time as
//      the mbox's fsync (both must finish before any request is answered).
// Why not a marker file created per batch and removed after it? Removing a
// file is durable only after an fsync of its directory; without one, a
// power cut can bring the marker back and recovery would cut mail that was
// already acknowledged. A file created once and rewritten in place needs no
// directory fsync after its creation, and fdatasync of an overwrite that
// keeps the size is cheap.
//
// Recovery (recoverTornTail), under the lock, before the mbox is read or
// changed: by the appender, the index load and the expunge, so a torn tail
// is never indexed or served.
//  - "start=N" without an end: a batch died (the lock is ours, so no batch
//    is running). If the file is still the same inode and longer than N,
//    cut it back to N. Then record the file as settled.
//  - "end=E ctime=T": the batch was complete when written. Only a power cut
//    in step 3 can leave the mbox shorter than E (the journal reached the
//    disk, the mbox's last bytes did not; nothing was acknowledged). Cut back
//    to N only if the file is that same inode, shorter than E (but longer
//    than N), and its ctime is not later than T. A file another program
//    changed since (mutt rewriting it in place after deleting a message) has
//    a later ctime, which no program can set back, so bytes another program
//    wrote after a completed batch are never cut. A file replaced by a
//    rename (our expunge) has another inode, and the record no longer applies.
//  - "end=E pages=...": the same inode, longer than N but shorter than E,
//    and what it holds from N on is whole pages of the batch, each matching
//    its CRC: the batch was torn, cut back to N. Anything else (the file
//    reaches E, or holds other bytes: another program rewrote it since) is
//    left alone.
// One case remains: after a crash mid-batch, a program that breaks our
// abandoned lock and appends before any of ours takes the lock again loses
// that append to the cut (after a planned record, the torn part stays
// instead: the file no longer holds only the batch's pages). Mutt and
// procmail break a lock only by age (minutes), and a restarted server
// recovers at its first lock.

import { hash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { closeSync, constants, fdatasync, fstatSync, lstatSync, openSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { readAt, readIntoSync } from './file-io.ts';
import { fsyncDirectory } from './safeio.ts';

const fdatasyncAsync = promisify(fdatasync);

/** The mbox as recovery sees it. */
export interface MboxState {
  size: number;
  ino: bigint;
  ctimeNs: bigint;
}

export interface JournalRecord {
  ino: bigint;
  start: number;
  /** null while the batch is being written. */
  end: number | null;
  /** The mbox's ctime when the batch was complete; null while pending, and in a planned record. */
  ctimeNs: bigint | null;
  /** A planned record's CRC-32 of the batch's bytes in each page of the file (pageChecksums). */
  pages?: readonly number[];
}

const RECORD_BYTES = 512;
const RECORD = /^jjordan-append 1 ino=(\d{1,20}) start=(\d{1,15}) end=(-|\d{1,15}) ctime=(-|\d{1,25}) sum=([0-9a-f]{8})$/;
const PLANNED = /^jjordan-append 1 ino=(\d{1,20}) start=(\d{1,15}) end=(\d{1,15}) pages=([0-9a-f]{8}(?:,[0-9a-f]{8}){0,16}) sum=([0-9a-f]{8})$/;
const { O_RDWR, O_CREAT, O_EXCL } = constants;
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** The page size a crash tears a file's tail at (the kernel writes files back page by page). */
const PAGE_BYTES = 4096;
/** The largest batch written with a planned record (at most 17 pages: the record stays small). */
export const PLANNED_MAX_BYTES = 64 * 1024;

/** `<dir>/.<name>.append`, next to the mbox. */
export function journalPathFor(mboxPath: string): string {
  return path.join(path.dirname(mboxPath), `.${path.basename(mboxPath)}.append`);
}

/** The record as its fixed-size line. */
export function formatRecord(record: JournalRecord): Buffer {
  const end = record.end === null ? '-' : String(record.end);
  const fields = record.pages
    ? `jjordan-append 1 ino=${record.ino} start=${record.start} end=${end} pages=${record.pages.map(hex8).join(',')}`
    : `jjordan-append 1 ino=${record.ino} start=${record.start} end=${end} ctime=${record.ctimeNs === null ? '-' : String(record.ctimeNs)}`;
  const line = `${fields} sum=${checksum(fields)}`;
  return Buffer.from(line.padEnd(RECORD_BYTES - 1, ' ') + '\n');
}

/** The record in `bytes`; null if there is none or it is torn. */
export function parseRecord(bytes: Buffer): JournalRecord | null {
  const line = bytes.toString('latin1').trimEnd();
  const planned = PLANNED.exec(line);
  if (planned) {
    const [, ino, start, end, pages, sum] = planned;
    if (sum !== checksum(line.slice(0, line.lastIndexOf(' sum=')))) return null;
    return { ino: BigInt(ino), start: Number(start), end: Number(end), ctimeNs: null, pages: pages.split(',').map((c) => parseInt(c, 16)) };
  }
  const match = RECORD.exec(line);
  if (!match) return null;
  const [, ino, start, end, ctime, sum] = match;
  if (sum !== checksum(`jjordan-append 1 ino=${ino} start=${start} end=${end} ctime=${ctime}`)) return null;
  if ((end === '-') !== (ctime === '-')) return null;
  return { ino: BigInt(ino), start: Number(start), end: end === '-' ? null : Number(end), ctimeNs: ctime === '-' ? null : BigInt(ctime) };
}

const hex8 = (n: number): string => n.toString(16).padStart(8, '0');

/**
 * The CRC-32 of `bytes`, to be written at file offset `start`, in each page
 * of the file: the first and last pieces may be short, the others are whole
 * pages, so a tail torn at any page boundary is a run of whole pieces.
 */
export function pageChecksums(start: number, bytes: Buffer): number[] {
  const sums: number[] = [];
  for (let at = 0; at < bytes.length; ) {
    const to = Math.min(bytes.length, at + PAGE_BYTES - ((start + at) % PAGE_BYTES));
    sums.push(crc32(bytes.subarray(at, to)));
    at = to;
  }
  return sums;
}

/** True if `present` (the file's bytes from the record's start on) is whole pieces of the planned batch, each matching. */
function isTornPlannedBatch(record: JournalRecord, present: Buffer): boolean {
  const sums = pageChecksums(record.start, present);
  if (sums.length > record.pages!.length) return false;
  const lastWhole = (record.start + present.length) % PAGE_BYTES === 0;
  return lastWhole && sums.every((sum, i) => sum === record.pages![i]);
}

function checksum(text: string): string {
  return hash('sha1', text, 'hex').slice(0, 8);
}

/**
 * The part of the mbox recovery must read before planRecovery can decide:
 * for a planned record, the bytes from its start to the end of a file that
 * stops short of the batch's end. null: nothing to read.
 */
export function rangeToCheck(record: JournalRecord | null, mbox: MboxState): { from: number; to: number } | null {
  if (!record?.pages || record.ino !== mbox.ino) return null;
  return mbox.size > record.start && mbox.size < record.end! ? { from: record.start, to: mbox.size } : null;
}

/**
 * What recovery does with this record and this mbox (see the header):
 * `cutTo` is the size to cut the mbox back to (null: cut nothing), and
 * `settle` says whether to record the mbox as settled afterwards.
 * `present` is the bytes rangeToCheck asked for, if it asked.
 */
export function planRecovery(record: JournalRecord | null, mbox: MboxState, present: Buffer | null = null): { cutTo: number | null; settle: boolean } {
  if (!record) return { cutTo: null, settle: false };
  const sameFile = record.ino === mbox.ino;
  if (record.pages) {
    if (!rangeToCheck(record, mbox)) return { cutTo: null, settle: false }; // whole, or not this file
    // Settled either way: the bytes need not be read again at every lock.
    return { cutTo: present && isTornPlannedBatch(record, present) ? record.start : null, settle: true };
  }
  if (record.end === null) {
    return { cutTo: sameFile && mbox.size > record.start ? record.start : null, settle: true };
  }
  const tornByPowerCut = sameFile && mbox.size < record.end && mbox.size > record.start && mbox.ctimeNs <= record.ctimeNs!;
  return tornByPowerCut ? { cutTo: record.start, settle: true } : { cutTo: null, settle: false };
}

/** The mbox operations recovery needs: the appender's own fd, or a handle of the reader's. */
export interface RecoverableMbox {
  state(): Promise<MboxState>;
  /** `length` bytes from `offset` (fewer only at the end of the file). */
  read(offset: number, length: number): Promise<Buffer>;
  truncate(size: number): Promise<void>;
  sync(): Promise<void>;
}

/** One mbox's journal file, open for reading and rewriting. */
export class AppendJournal {
  readonly #fd: number;
  /** The record found when the journal was opened (null: none). */
  readonly found: JournalRecord | null;

  private constructor(fd: number) {
    this.#fd = fd;
    const bytes = Buffer.alloc(RECORD_BYTES);
    this.found = parseRecord(bytes.subarray(0, readIntoSync(fd, bytes, RECORD_BYTES, 0)));
  }

  /** Opens the journal, creating it (durably) if this mbox has none yet. */
  static async open(mboxPath: string): Promise<AppendJournal> {
    const existing = AppendJournal.openExisting(mboxPath);
    if (existing) return existing;
    let fd: number;
    try {
      fd = openSync(journalPathFor(mboxPath), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return AppendJournal.open(mboxPath); // raced: use theirs
      throw err;
    }
    const journal = new AppendJournal(fd);
    try {
      // Its name must be on disk before any batch relies on it.
      await fsyncDirectory(path.dirname(mboxPath));
    } catch (err) {
      journal.close();
      throw err;
    }
    return journal;
  }

  /** Opens the journal if there is one; null if this mbox never had one. */
  static openExisting(mboxPath: string): AppendJournal | null {
    try {
      return new AppendJournal(openSync(journalPathFor(mboxPath), O_RDWR | O_NOFOLLOW));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /** Step 1: a batch starts at `start` of the mbox with inode `ino`. Durable when it resolves. */
  async begin(ino: bigint, start: number): Promise<void> {
    await this.#write({ ino, start, end: null, ctimeNs: null });
  }

  /** A batch that fits in PLANNED_MAX_BYTES: `bytes` will be written at `start`. Durable when it resolves. */
  async plan(ino: bigint, start: number, bytes: Buffer): Promise<void> {
    // More pages would not fit the record: it would read back as none, and a torn batch would stay.
    if (bytes.length > PLANNED_MAX_BYTES) throw new RangeError(`a planned batch is at most ${PLANNED_MAX_BYTES} bytes, not ${bytes.length}`);
    await this.#write({ ino, start, end: start + bytes.length, ctimeNs: null, pages: pageChecksums(start, bytes) });
  }

  /** Step 3: the batch [start, end) is written; `ctimeNs` is the mbox's ctime now. */
  async complete(ino: bigint, start: number, end: number, ctimeNs: bigint): Promise<void> {
    await this.#write({ ino, start, end, ctimeNs });
  }

  /** After a cut or a rollback: the mbox as it is now is whole. */
  async settle(mbox: MboxState): Promise<void> {
    await this.#write({ ino: mbox.ino, start: mbox.size, end: mbox.size, ctimeNs: mbox.ctimeNs });
  }

  async #write(record: JournalRecord): Promise<void> {
    const bytes = formatRecord(record);
    // One small write at offset 0, in place: the size never changes.
    if (writeSync(this.#fd, bytes, 0, bytes.length, 0) !== bytes.length) throw new Error('short write to the append journal');
    await fdatasyncAsync(this.#fd);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/**
 * Cuts a torn tail off the mbox if the journal shows one (see the header)
 * and settles the journal. Call it holding the dot-lock. Returns the mbox's
 * state afterwards.
 */
export async function recoverTornTail(journal: AppendJournal, mbox: RecoverableMbox): Promise<MboxState> {
  let state = await mbox.state();
  const range = rangeToCheck(journal.found, state);
  const present = range ? await mbox.read(range.from, range.to - range.from) : null;
  const plan = planRecovery(journal.found, state, present);
  if (plan.cutTo !== null) {
    await mbox.truncate(plan.cutTo);
    await mbox.sync();
    state = await mbox.state();
  }
  if (plan.settle) await journal.settle(state);
  return state;
}

/**
 * recoverTornTail for readers (the index load, the expunge), by path: does
 * nothing, and opens nothing for writing, unless there is a tail to cut or
 * a pending record to settle. Call it holding the dot-lock.
 */
export async function recoverTornAppend(mboxPath: string): Promise<void> {
  const journal = AppendJournal.openExisting(mboxPath);
  if (!journal) return;
  try {
    let stat: BigIntStats;
    try {
      stat = lstatSync(mboxPath, { bigint: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    if (!stat.isFile()) return;
    const plan = planRecovery(journal.found, stateOf(stat)); // (a tail it must read first says settle: true)
    if (plan.cutTo === null && !plan.settle) return; // the usual case: nothing to do
    const handle = await open(mboxPath, O_RDWR | O_NOFOLLOW);
    try {
      await recoverTornTail(journal, {
        state: async () => stateOf(fstatSync(handle.fd, { bigint: true })),
        read: (offset, length) => readAt(handle, offset, length),
        truncate: (size) => handle.truncate(size),
        sync: () => handle.sync(),
      });
    } finally {
      await handle.close();
    }
  } finally {
    journal.close();
  }
}

export function stateOf(stat: BigIntStats): MboxState {
  return { size: Number(stat.size), ino: stat.ino, ctimeNs: stat.ctimeNs };
}
