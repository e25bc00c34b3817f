// Reads of messages for the shared mailbox (mailbox-state.ts), all from the
// mbox file opened with the index that locates them, all checked against
// what the index says (message-reader.ts), and all asking for a refresh
// when the file no longer matches:
//  - one message (readOne streams, readOneSmall reads a small one at once):
//    RETR, and FETCH of a body;
//  - many messages in file order with large reads (sequential-reader.ts),
//    and the values the message cache keeps (message-cache.ts), worked out
//    from the messages the cache does not have yet: FETCH 1:* (ENVELOPE)
//    and SEARCH.

import type { FileHandle } from 'node:fs/promises';
import type { MessageCache, RecordKey } from './message-cache.ts';
import { MessageChangedError, readMessage, readSmallMessage, readSmallText } from './message-reader.ts';
import type { MessageLocation } from './message-reader.ts';
import type { MessageRecord } from './message-table.ts';
import { MessageExpungedError } from './store-errors.ts';
import type { ReadLocation } from './sequential-reader.ts';
import type { OpenFile } from './mailbox-files.ts';
import type { MessageTable } from './message-table.ts';
import { SequentialReader } from './sequential-reader.ts';
import type { MessageContent, ReadExtent } from './sequential-reader.ts';

export type { MessageContent, ReadExtent };

/** How the caller works out the values the cache does not have. */
export interface CacheFill {
  /** What of a message the values are made from. */
  extent: ReadExtent;
  /** The values of the kinds asked for, in their order, from one message. */
  compute(content: MessageContent): string[] | Promise<string[]>;
}

/** What these reads need of the mailbox state. */
export interface ReadContext {
  /** The message table now. */
  table(): MessageTable;
  /** The mailbox's UIDVALIDITY now. */
  uidValidity(): number;
  /** The open mbox file the table describes. */
  file(): OpenFile | null;
  cache(): MessageCache;
  /** The file did not hold a message where the table says: look again (a refresh). */
  changed(): void;
}

/**
 * One message's content, checked against `expected` (default: the record
 * now). Expunged: MessageExpungedError; bytes that no longer match:
 * MessageChangedError, and a refresh is asked for so the sessions learn
 * what happened. Errors come at the first next(), before any byte.
 */
export function readOne(ctx: ReadContext, uid: number, expected?: MessageRecord): AsyncIterable<Buffer> {
  const location = locate(ctx.table(), uid, expected);
  const file = ctx.file(); // the file of this index, taken now
  return (async function* () {
    if (location instanceof Error) throw location;
    const open = checkOpen(file);
    open.users++;
    try {
      yield* readMessage(open.handle, location);
    } catch (err) {
      if (err instanceof MessageChangedError) ctx.changed();
      throw err;
    } finally {
      open.release();
    }
  })();
}

/** readOne() of a small message, in one buffer and at once (readSmallMessage); null for a larger one. Throws as readOne does. */
export function readOneSmall(ctx: ReadContext, uid: number, expected?: MessageRecord): Buffer | null {
  return readAtOnce(ctx, uid, expected, readSmallMessage);
}

/** readOneSmall() as text, one character per byte (readSmallText). */
export function readOneSmallText(ctx: ReadContext, uid: number, expected?: MessageRecord): string | null {
  return readAtOnce(ctx, uid, expected, readSmallText);
}

function readAtOnce<T>(ctx: ReadContext, uid: number, expected: MessageRecord | undefined, read: (file: FileHandle, m: MessageLocation) => T): T {
  const location = locate(ctx.table(), uid, expected);
  if (location instanceof Error) throw location;
  const file = checkOpen(ctx.file());
  try {
    return read(file.handle, location); // (no wait: the file stays open throughout)
  } catch (err) {
    if (err instanceof MessageChangedError) ctx.changed();
    throw err;
  }
}

// Where the message with this UID is, as the table says; or why it cannot
// be read: it was expunged, or it is not where `expected` says.
function locate(table: MessageTable, uid: number, expected: MessageRecord | undefined): MessageLocation | Error {
  const k = table.find(uid);
  if (k < 0) return new MessageExpungedError(`message UID ${uid} has been expunged`);
  const location = locationOf(table, k);
  const moved = expected !== undefined && (expected.offset !== location.offset || expected.length !== location.length || expected.size !== location.size);
  return moved ? new MessageChangedError(`the mailbox changed: message UID ${uid} is not what the caller saw`) : location;
}

// The mbox file, unless an expunge or another program replaced it since.
function checkOpen(file: OpenFile | null): OpenFile {
  if (!file || file.closed) throw new MessageChangedError('the mailbox changed: its file was replaced');
  return file;
}

/**
 * Visits the messages with these UIDs (ascending) still in the mailbox, in
 * file order: `visitor(uid, content)` (see sequential-reader.ts).
 */
export async function readInOrder(ctx: ReadContext, uids: readonly number[], extent: ReadExtent, visitor: (uid: number, content: MessageContent) => void | Promise<void>): Promise<void> {
  const table = ctx.table();
  const locations: ReadLocation[] = [];
  const found: number[] = [];
  for (const uid of uids) {
    const k = table.find(uid);
    if (k < 0) continue; // expunged: nothing to read
    locations.push(locationOf(table, k));
    found.push(uid);
  }
  await visit(ctx, locations, extent, (n, content) => visitor(found[n], content));
}

/**
 * The values of `kinds` for the messages with these UIDs (ascending), in
 * out[j * kinds.length + i] for uids[j] and kinds[i]; all null for a message
 * no longer there. Values the cache has are read from it (large reads, no
 * pause per message); the others are worked out by `fill` from the messages,
 * read in file order, and kept in the cache for next time.
 */
export async function cachedValues(ctx: ReadContext, uids: readonly number[], kinds: readonly number[], fill: CacheFill): Promise<(string | null)[]> {
  const cache = ctx.cache();
  await cache.ready();
  // From here to the reads below, nothing waits: the rows are the table's now.
  const table = ctx.table();
  const rows = new Int32Array(uids.length);
  for (let j = 0; j < uids.length; j++) rows[j] = table.find(uids[j]);
  const out: (string | null)[] = new Array(uids.length * kinds.length).fill(null);
  const missing = cache.lookup(rows, kinds, out);
  const locations: ReadLocation[] = [];
  const slots: number[] = [];
  for (let j = 0; j < uids.length; j++) {
    if (rows[j] < 0 || missing[j] === 0) continue;
    locations.push(locationOf(table, rows[j]));
    slots.push(j);
  }
  if (locations.length === 0) return out;
  // The values are keyed by the messages as they are now: they are made from these very bytes.
  const key: RecordKey = { uidValidity: ctx.uidValidity(), uid: 0, fingerprintHigh: 0, fingerprintLow: 0, size: 0, kind: 0 };
  const keep = (n: number, values: string[]) => {
    const j = slots[n];
    const m = locations[n];
    key.uid = uids[j];
    key.fingerprintHigh = m.fingerprintHigh;
    key.fingerprintLow = m.fingerprintLow;
    key.size = m.size;
    for (let i = 0; i < kinds.length; i++) {
      if ((missing[j] & (1 << i)) === 0) continue; // (the cache had it)
      out[j * kinds.length + i] = values[i];
      key.kind = kinds[i];
      cache.put(key, values[i]);
    }
  };
  try {
    await visit(ctx, locations, fill.extent, (n, content) => {
      const values = fill.compute(content);
      if (values instanceof Promise) return values.then((v) => keep(n, v));
      keep(n, values);
    });
  } finally {
    cache.writeSoon(); // (what was worked out is kept even if the reading stopped half-way)
  }
  return out;
}

async function visit(ctx: ReadContext, locations: ReadLocation[], extent: ReadExtent, visitor: (n: number, content: MessageContent) => void | Promise<void>): Promise<void> {
  if (locations.length === 0) return;
  const file = checkOpen(ctx.file());
  file.users++;
  try {
    await new SequentialReader(file.handle).visit(locations, extent, visitor);
  } catch (err) {
    if (err instanceof MessageChangedError) ctx.changed();
    throw err;
  } finally {
    file.release();
  }
}

const halves = new Uint32Array(2);

function locationOf(table: MessageTable, k: number): ReadLocation {
  table.fingerprintHalves(k, halves);
  return new Location(table.offsetAt(k), table.lengthAt(k), table.contentOffsetAt(k), table.sizeAt(k), halves[0], halves[1], table.crcAt(k));
}

// A message's place, with its fingerprint as numbers; as text (the exact
// check's form, message-reader.ts) only when asked for, which is rare.
class Location implements ReadLocation {
  readonly offset: number;
  readonly length: number;
  readonly contentOffset: number;
  readonly size: number;
  readonly fingerprintHigh: number;
  readonly fingerprintLow: number;
  readonly crc: number;
  constructor(offset: number, length: number, contentOffset: number, size: number, high: number, low: number, crc: number) {
    this.offset = offset;
    this.length = length;
    this.contentOffset = contentOffset;
    this.size = size;
    this.fingerprintHigh = high;
    this.fingerprintLow = low;
    this.crc = crc;
  }
  get fingerprint(): string {
    return this.fingerprintHigh.toString(16).padStart(8, '0') + this.fingerprintLow.toString(16).padStart(8, '0');
  }
}
