// FETCH of what the index alone answers: UID, FLAGS, INTERNALDATE,
// RFC822.SIZE and MODSEQ (RFC 3501 6.4.5, RFC 7162 3.1.4). It is the
// request every client repeats to learn what changed, `FETCH 1:* (UID
// FLAGS)`, on folders of tens of thousands of messages, so it is written
// byte by byte: each response goes straight from the index's columns
// (store/message-table.ts) into a buffer of 64 KiB, one write each, and
// nothing is made per message. (Built as strings, 50,000 responses make
// a few megabytes of short-lived text, which a small young generation,
// the start command's --max-semi-space-size=1, pays for twice over.)
//
// The bytes are those fetch-batch.ts would write for the same items.

import { formatImapDateTime } from '../mime/date.ts';
import type { FetchItem } from './fetch-items.ts';
import type { Selected } from './selected.ts';
import type { MessageRows } from '../store/mailbox.ts';

const INDEX_ITEMS = new Set<FetchItem['kind']>(['uid', 'flags', 'internaldate', 'size', 'modseq']);

/** Can the index alone answer these items? */
export function isIndexOnly(items: readonly FetchItem[]): boolean {
  return items.every((item) => INDEX_ITEMS.has(item.kind));
}

/** Each buffer written holds about this many bytes of responses. */
const CHUNK_BYTES = 64 * 1024;
/** Room for a response's fixed parts: "* n FETCH (", the numbers, the names, an INTERNALDATE. */
const ROOM = 256;

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const STAR = ascii('* ');
const FETCH_OPEN = ascii(' FETCH (');
const UID = ascii('UID ');
const SIZE = ascii('RFC822.SIZE ');
const MODSEQ = ascii('MODSEQ (');
const END = ascii(')\r\n');
const SPACE = 0x20;
const CLOSE = 0x29;

/**
 * The responses for `uids` (ascending), as buffers to write. A message
 * expunged while the client was reading an earlier buffer is left out, as
 * fetch.ts does for the others.
 */
export async function* indexResponses(selected: Selected, uids: readonly number[], items: readonly FetchItem[], rev2: boolean): AsyncIterable<Buffer> {
  const writer = new IndexResponseWriter(selected, items, rev2);
  for (let next = 0; next < uids.length; ) {
    next = writer.fill(uids, next); // (the table is taken again for each buffer: an expunge makes a new one)
    if (writer.out.length > 0) yield writer.out.take();
  }
}

// The loop over the messages is a plain method, not the generator's own: V8
// optimizes a long-running loop while it runs (on-stack replacement), but
// not inside a generator, which would run its first 50,000 messages in the
// interpreter.
class IndexResponseWriter {
  readonly out = new ByteWriter();
  readonly #selected: Selected;
  readonly #kinds: FetchItem['kind'][];
  readonly #withFlags: boolean;
  readonly #rev2: boolean;
  readonly #flagTexts = new Map<number, Buffer>(); // flag set number -> "FLAGS (\Seen \Flagged)"
  #seq = 0;

  constructor(selected: Selected, items: readonly FetchItem[], rev2: boolean) {
    this.#selected = selected;
    this.#kinds = items.map((item) => item.kind);
    this.#withFlags = this.#kinds.includes('flags');
    this.#rev2 = rev2;
  }

  /** Writes the responses for uids[next...] until the buffer is full; returns where it stopped. */
  fill(uids: readonly number[], next: number): number {
    const { out } = this;
    const selected = this.#selected;
    const kinds = this.#kinds;
    const rows = selected.mailbox.rows();
    for (; next < uids.length; next++) {
      const uid = uids[next];
      const k = rows.find(uid);
      if (k < 0) continue; // expunged since the command began
      const flags = this.#flagsOf(rows, k, uid);
      const room = ROOM + (flags?.length ?? 0);
      if (!out.hasRoom(room)) {
        if (out.length > 0) return next;
        out.reserve(room); // (one response larger than a buffer: many keywords)
      }
      // Sequence numbers: the next one, almost always (1:* in order); else looked up.
      const seq = (this.#seq = selected.uidAt(this.#seq + 1) === uid ? this.#seq + 1 : selected.seqOf(uid));
      out.bytes(STAR);
      out.number(seq);
      out.bytes(FETCH_OPEN);
      for (let i = 0; i < kinds.length; i++) {
        if (i > 0) out.byte(SPACE);
        switch (kinds[i]) {
          case 'uid':
            out.bytes(UID);
            out.number(uid);
            break;
          case 'flags':
            out.bytes(flags!);
            break;
          case 'internaldate':
            out.text(`INTERNALDATE "${formatImapDateTime(new Date(rows.internalDateAt(k) * 1000))}"`);
            break;
          case 'size':
            out.bytes(SIZE);
            out.number(rows.sizeAt(k));
            break;
          case 'modseq':
            out.bytes(MODSEQ);
            out.number(rows.modseqAt(k));
            out.byte(CLOSE);
            break;
        }
      }
      out.bytes(END);
    }
    return next;
  }

  #flagsOf(rows: MessageRows, k: number, uid: number): Buffer | null {
    if (!this.#withFlags) return null;
    const id = rows.flagIdAt(k);
    // \Recent belongs to this session, not to the flag set (RFC 3501 2.3.2; gone in IMAP4rev2).
    if (!this.#rev2 && this.#selected.isRecent(uid)) return Buffer.from(`FLAGS (${[rows.flags.text(id), '\\Recent'].filter((t) => t !== '').join(' ')})`, 'latin1');
    let flags = this.#flagTexts.get(id);
    if (flags === undefined) this.#flagTexts.set(id, (flags = Buffer.from(`FLAGS (${rows.flags.text(id)})`, 'latin1')));
    return flags;
  }
}

/** Bytes written one after another into a buffer that is handed out whole. */
class ByteWriter {
  #buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  #at = 0;

  get length(): number {
    return this.#at;
  }

  hasRoom(bytes: number): boolean {
    return this.#at + bytes <= this.#buffer.length;
  }

  /** Makes room for `bytes` more (a response larger than a chunk: many keywords). */
  reserve(bytes: number): void {
    if (!this.hasRoom(bytes)) this.#buffer = Buffer.allocUnsafe(Math.max(CHUNK_BYTES, bytes));
  }

  /** What was written; the writer starts a new buffer (the one handed out is the socket's now). */
  take(): Buffer {
    const written = this.#buffer.subarray(0, this.#at);
    this.#buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    this.#at = 0;
    return written;
  }

  byte(value: number): void {
    this.#buffer[this.#at++] = value;
  }

  // A short constant: a loop costs less than a call into Buffer.copy.
  bytes(source: Uint8Array): void {
    const buffer = this.#buffer;
    let at = this.#at;
    for (let i = 0; i < source.length; i++) buffer[at++] = source[i];
    this.#at = at;
  }

  text(value: string): void {
    this.#at += this.#buffer.write(value, this.#at, 'latin1');
  }

  /** A non-negative integer in decimal. */
  number(value: number): void {
    if (value < 10) {
      this.#buffer[this.#at++] = 0x30 + value;
      return;
    }
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    const buffer = this.#buffer;
    let at = this.#at + digits;
    this.#at = at;
    for (let rest = value; digits > 0; digits--) {
      buffer[--at] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
  }
}
