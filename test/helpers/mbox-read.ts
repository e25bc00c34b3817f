// A plain mbox reader for tests: the simple, independent reference that
// the server's own scanner (IndexScanner, src/store/mbox-index-scan.ts) is
// checked against, and what tests use to see what a mailbox holds. The
// server itself reads mail only through the side index.
//
// RFC 4155: a message starts at a line beginning "From " and runs until the
// next such line; the blank line just before the next "From " line is the
// separator, not part of the message. We write mboxrd (see mboxrd.ts), where
// a "From " line inside a message is always quoted as ">From ", so every
// line starting "From " is a message boundary and no further heuristics
// (such as checking the date) are needed. Bytes before the first "From "
// line are not part of any message and are skipped. `offset` and `length`
// mean the same as in AppendResult (mbox-append.ts) and IndexedMessage.

import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { readRange } from '../../src/store/file-io.ts';
import { parseFromLineSender } from '../../src/store/from-line.ts';
import { MboxrdUnquoter } from '../../src/store/mboxrd.ts';

export interface MboxEntry {
  /** Byte offset of the message's "From " line. */
  offset: number;
  /** Bytes from `offset` through the message's final LF (separator excluded). */
  length: number;
  /** First byte after the From line: where the message itself starts. */
  contentOffset: number;
  /** Envelope sender from the From line ("MAILER-DAEMON" for bounces). */
  envelopeFrom: string;
}

export interface ScanOptions {
  /** Where to start: 0, or the offset of a message or of its separator. */
  start?: number;
}

const LF = 0x0a;
const FROM_ = Buffer.from('From ');
const READ_CHUNK = 256 * 1024;
// Only the start of a From line is kept, to find the sender; the rest
// (date, and anything a long line holds) is not needed.
const MAX_FROM_LINE = 1024;

/**
 * Finds message boundaries in a stream of chunks. Pure: bytes in, entries
 * out, so the boundary logic can be tested at every chunk split without a
 * file. A chunk may end anywhere, even in the middle of "From ".
 */
export class MboxScanner {
  #position: number; // absolute offset of the next byte pushed
  #lineStart: number; // absolute offset where the current line began
  #previousLineEmpty = false; // was the line before the current one blank?
  #matched = 0; // bytes of "From " matched at the line start; -1 = no match
  #fromLine: Buffer[] | null = null; // collecting a From line, if in one
  #fromLineBytes = 0;
  #current: { offset: number; contentOffset: number; envelopeFrom: string } | null = null;

  constructor(start = 0) {
    this.#position = start;
    this.#lineStart = start;
  }

  /** Feeds the next chunk; returns the messages it completed. */
  push(chunk: Buffer): MboxEntry[] {
    const done: MboxEntry[] = [];
    const base = this.#position;
    let i = 0;
    while (i < chunk.length) {
      if (this.#matched >= 0 && this.#matched < FROM_.length) {
        if (chunk[i] === FROM_[this.#matched]) {
          i++;
          if (++this.#matched === FROM_.length) this.#startMessage(done);
          continue;
        }
        this.#matched = -1; // an ordinary line; look at this byte again below
      }
      const nl = chunk.indexOf(LF, i);
      const lineEnd = nl === -1 ? chunk.length : nl;
      if (this.#fromLine) this.#collectFromLine(chunk.subarray(i, lineEnd));
      if (nl === -1) break;
      const lfOffset = base + nl;
      if (this.#fromLine) this.#endFromLine(lfOffset + 1);
      this.#previousLineEmpty = lfOffset === this.#lineStart;
      this.#lineStart = lfOffset + 1;
      this.#matched = 0;
      i = nl + 1;
    }
    this.#position = base + chunk.length;
    return done;
  }

  /** Ends the input; returns the last message, if any. */
  end(): MboxEntry[] {
    if (this.#fromLine) this.#endFromLine(this.#position);
    const done: MboxEntry[] = [];
    // The file's final blank line is the last message's separator.
    const endsWithBlankLine = this.#lineStart === this.#position && this.#previousLineEmpty;
    this.#finishMessage(endsWithBlankLine ? this.#position - 1 : this.#position, done);
    return done;
  }

  // A "From " line starts at #lineStart: the previous message ends there,
  // minus the blank separator line if there is one.
  #startMessage(done: MboxEntry[]): void {
    const start = this.#lineStart;
    this.#finishMessage(this.#previousLineEmpty ? start - 1 : start, done);
    this.#current = { offset: start, contentOffset: -1, envelopeFrom: '' };
    this.#fromLine = [];
    this.#fromLineBytes = 0;
  }

  #finishMessage(end: number, done: MboxEntry[]): void {
    if (!this.#current) return;
    const { offset, contentOffset, envelopeFrom } = this.#current;
    done.push({ offset, length: end - offset, contentOffset, envelopeFrom });
    this.#current = null;
  }

  #collectFromLine(piece: Buffer): void {
    const room = MAX_FROM_LINE - this.#fromLineBytes;
    if (room <= 0 || piece.length === 0) return;
    const kept = Buffer.from(piece.subarray(0, room)); // copy: chunks get reused
    this.#fromLine!.push(kept);
    this.#fromLineBytes += kept.length;
  }

  #endFromLine(contentOffset: number): void {
    // UTF-8, as written: an SMTPUTF8 sender (RFC 6531) must read back unchanged.
    const text = Buffer.concat(this.#fromLine!).toString('utf8');
    this.#current!.envelopeFrom = parseFromLineSender(text);
    this.#current!.contentOffset = contentOffset;
    this.#fromLine = null;
  }
}

/**
 * Lists the messages of an mbox file in order. A missing file is an empty
 * mailbox. `start` must be a line start (0, or a previous entry's offset or
 * its end); bytes there before the next "From " line are skipped.
 */
export async function* scanMbox(mboxPath: string, opts: ScanOptions = {}): AsyncGenerator<MboxEntry> {
  const start = opts.start ?? 0;
  let handle: FileHandle;
  try {
    handle = await open(mboxPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const scanner = new MboxScanner(start);
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    let position = start;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      yield* scanner.push(buffer.subarray(0, bytesRead));
    }
    yield* scanner.end();
  } finally {
    await handle.close();
  }
}

/** Streams a message's content (after its From line), unquoted. */
export async function* readMessage(mboxPath: string, entry: MboxEntry): AsyncGenerator<Buffer> {
  const end = entry.offset + entry.length; // exclusive
  if (end <= entry.contentOffset) return; // an empty message
  const unquoter = new MboxrdUnquoter();
  const file = await open(mboxPath, 'r');
  try {
    for await (const chunk of readRange(file, entry.contentOffset, end - entry.contentOffset)) {
      const out = unquoter.push(chunk);
      if (out.length > 0) yield out;
    }
  } finally {
    await file.close();
  }
  const rest = unquoter.end();
  if (rest.length > 0) yield rest;
}

/** A message's content in one buffer: for tests and small messages. */
export async function readMessageBuffer(mboxPath: string, entry: MboxEntry): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readMessage(mboxPath, entry)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
