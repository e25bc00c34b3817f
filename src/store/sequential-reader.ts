// Reading many messages of one mbox in file order, with large reads: what
// FETCH 1:* (ENVELOPE) and SEARCH need the first time, when every message's
// header (or all of it) has to be looked at.
//
// Reading message by message (message-reader.ts) costs one positioned read
// per message: 50,000 reads for a folder of 50,000 messages. Here the file
// is read in blocks of up to a megabyte that hold many messages each, and
// each message is cut out of its block. A message is checked against the
// index before anything of it is handed out, as message-reader.ts checks
// one (never other bytes: a changed file gives MessageChangedError):
//  - read whole (up to WHOLE_CHECK_BYTES, almost all mail): the exact check,
//    the message scanned as the index scan did (checkWholeMessage);
//  - only its header wanted: its start is checked (its From line, no other
//    From line, its fingerprint over the Message-ID and the first 512 bytes
//    of its body: checkMessageStart) and what follows it must be a message
//    boundary. Scanning the whole message only to hand out its header would
//    cost as much as building the index again.
// Larger messages are handed out as a stream, read and checked by
// message-reader.ts (they stream: a 25 MiB message is never held).
//
// What is handed out is as Mailbox.read() gives it: mboxrd quoting undone
// (RFC 4155, mboxrd.ts), LF line ends as stored. Memory: one block, reused.

import type { FileHandle } from 'node:fs/promises';
import { HeaderEndFinder } from '../mime/header.ts';
import { readInto } from './file-io.ts';
import { MboxrdUnquoter } from './mboxrd.ts';
import { BOUNDARY_BYTES, checkMessageStart, checkWholeMessage, matchesScan, readMessage, separatorLength, WHOLE_CHECK_BYTES } from './message-reader.ts';
import type { MessageLocation } from './message-reader.ts';
import type { ReadLocation } from './message-start.ts';
import { knownStart } from './message-start.ts';

/** What is read of each message: its header section, or all of it. */
export type ReadExtent = 'header' | 'message';

/**
 * One message as the reader hands it out: `bytes` for a message of up to
 * WHOLE_CHECK_BYTES (all of it, or with 'header' its header section through
 * the empty line that ends it, or all of it if it has none), else `stream`.
 * `bytes` may share memory with the reader's block: valid during the visit
 * only (copy what must be kept). `text`, when there, is `bytes` as a string
 * ('latin1'), made by the check already: what header parsers read.
 */
export type MessageContent = { bytes: Buffer; stream: null; text?: string } | { bytes: null; stream: AsyncIterable<Buffer>; text?: undefined };

export type { ReadLocation };

/** Called once per message, in file order; a promise returned is waited for before the next one. */
export type MessageVisitor = (at: number, content: MessageContent) => void | Promise<void>;

/** Bytes per read: large enough that reads cost little, small enough for a small board. */
export const BLOCK_BYTES = 1024 * 1024;
/** Past this gap between two wanted messages, the next block starts at the next message rather than reading the gap. */
const MAX_GAP = 64 * 1024;
/** The header and this much of the body are what the fingerprint covers (mbox-index-scan.ts). */
const FINGERPRINT_BODY = 512;
const CR = 0x0d;
const GT = 0x3e;
const EMPTY_LINE = Buffer.from('\n\n');
const LF_GT = Buffer.from('\n>');

// A new block costs a page fault per page on the first read into it (a
// megabyte freed is given back to the system, and the next one is fresh
// memory): FETCH 1:* of 50,000 messages, in batches of a thousand, would
// make a hundred. Readers done with theirs leave them here for the next
// one; a second without a reader lets them go, so a server at rest holds
// none.
const spareBlocks: Buffer[] = [];
const KEPT_BLOCKS = 2;
const KEEP_MS = 1000;
let letGo: NodeJS.Timeout | null = null;

function takeBlock(bytes: number): Buffer {
  const kept = bytes === BLOCK_BYTES ? spareBlocks.pop() : undefined;
  return kept ?? Buffer.allocUnsafe(bytes);
}

function keepBlock(block: Buffer | null): void {
  if (block === null || block.length !== BLOCK_BYTES || spareBlocks.length >= KEPT_BLOCKS) return;
  spareBlocks.push(block);
  letGo ??= setTimeout(() => {
    letGo = null;
    spareBlocks.length = 0;
  }, KEEP_MS).unref();
  letGo.refresh();
}

export class SequentialReader {
  readonly #file: FileHandle;
  readonly #blockBytes: number;
  #block: Buffer = Buffer.alloc(0);
  #start = 0; // file offset of #block[0]
  #length = 0; // valid bytes in #block
  #atEof = false; // the block reaches the end of the file
  #hasCR: boolean | null = null; // does the block hold a CR anywhere?
  #spare: Buffer | null = null; // the other block buffer
  #ahead: { start: number; length: number; buffer: Buffer; done: Promise<number> } | null = null;
  /** Bytes read from the file so far. */
  bytesRead = 0;

  constructor(file: FileHandle, blockBytes = BLOCK_BYTES) {
    this.#file = file;
    this.#blockBytes = blockBytes;
  }

  /**
   * Visits `messages` (in file order: ascending offsets) with what `extent`
   * asks for. Throws MessageChangedError, before visiting it, at the first
   * message the file no longer holds where the index says.
   */
  async visit(messages: readonly ReadLocation[], extent: ReadExtent, visitor: MessageVisitor): Promise<void> {
    this.#block = takeBlock(this.#blockBytes);
    this.#length = 0;
    try {
      await this.#visitAll(messages, extent, visitor);
    } finally {
      // Blocks no read is filling any more go to the next reader.
      keepBlock(this.#block);
      if (this.#ahead === null) keepBlock(this.#spare);
      this.#block = Buffer.alloc(0);
      this.#spare = null;
      this.#ahead = null; // (a read still filling its buffer keeps that buffer: it is not kept)
      this.#length = 0;
    }
  }

  async #visitAll(messages: readonly ReadLocation[], extent: ReadExtent, visitor: MessageVisitor): Promise<void> {
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i];
      if (m.length > WHOLE_CHECK_BYTES) {
        // Large: streamed from its own reads, checked by its first 128 KiB.
        const done = visitor(i, { bytes: null, stream: readMessage(this.#file, m) });
        if (done) await done;
        continue;
      }
      if (!this.#holds(m.offset, m.offset + m.length + BOUNDARY_BYTES)) await this.#fill(messages, i);
      const done = visitor(i, extent === 'header' ? this.#headerOf(m) : { bytes: wholeOf(this.#bytesOf(m), m), stream: null });
      if (done) await done;
    }
  }

  /**
   * The header section of a small message (through its empty line), its
   * start checked (message-start.ts, else the exact check); a message whose
   * body is too short for the fingerprint to be known from its start is
   * checked whole (it is small).
   */
  #headerOf(m: ReadLocation): MessageContent {
    this.#hasCR ??= this.#block.subarray(0, this.#length).indexOf(CR) >= 0;
    const scanned = this.#scannedHeaderOf(m);
    if (scanned) return scanned;
    const known = knownStart(this.#block, this.#start, this.#hasCR, m);
    if (known) {
      const header = this.#block.subarray(m.contentOffset - this.#start, known.bodyStart - this.#start);
      if (known.headerText !== null) return { bytes: header, stream: null, text: known.headerText };
      return { bytes: unquote(header), stream: null };
    }
    // Not sure: the exact check decides (it throws if the file changed).
    const bytes = this.#bytesOf(m);
    const contentStart = m.contentOffset - m.offset;
    const content = bytes.subarray(contentStart, Math.min(bytes.length, m.length));
    const bodyStart = bodyStartOf(content);
    const headerEnd = contentStart + (bodyStart < 0 ? content.length : bodyStart);
    if (bodyStart < 0 || headerEnd + FINGERPRINT_BODY > m.length || bytes.length < m.length) checkWholeMessage(bytes, m);
    else checkMessageStart(bytes.subarray(0, headerEnd + FINGERPRINT_BODY), bytes.subarray(m.length, m.length + BOUNDARY_BYTES), m);
    return { bytes: unquote(bytes.subarray(contentStart, headerEnd)), stream: null };
  }

  // The header section of a message whose bytes are the very ones the index
  // scan saw (message-reader.ts matchesScan: its CRC), which need no other
  // check; null where the CRC is not known or differs.
  #scannedHeaderOf(m: ReadLocation): MessageContent | null {
    if (m.crc === undefined || m.crc < 0) return null; // (no CRC: nothing to look at here)
    const bytes = this.#bytesOf(m);
    if (separatorLength(bytes, m.length) < 0 || !matchesScan(bytes, m)) return null;
    const contentStart = m.contentOffset - m.offset;
    let headerEnd: number; // (through the empty line)
    if (this.#hasCR) {
      const bodyStart = bodyStartOf(bytes.subarray(contentStart, m.length));
      headerEnd = bodyStart < 0 ? m.length : contentStart + bodyStart;
    } else {
      // Without a CR, the empty line is "\n\n" (from the From line's LF: a header may be empty).
      const emptyLine = bytes.indexOf(EMPTY_LINE, contentStart - 1);
      headerEnd = emptyLine < 0 || emptyLine + 2 > m.length ? m.length : emptyLine + 2;
    }
    const header = bytes.subarray(contentStart, headerEnd);
    if (header[0] === GT || header.indexOf(LF_GT) >= 0) return { bytes: unquote(header), stream: null }; // (mboxrd quoting: a line may start with ">From")
    return { bytes: header, stream: null, text: header.toString('latin1') };
  }

  // The message in the block, with the bytes that follow it (as many of BOUNDARY_BYTES as the block has).
  #bytesOf(m: ReadLocation): Buffer {
    const at = m.offset - this.#start;
    return this.#block.subarray(at, Math.min(this.#length, at + m.length + BOUNDARY_BYTES));
  }

  // Does the block hold [from, to), or all of it the file has?
  #holds(from: number, to: number): boolean {
    const end = this.#start + this.#length;
    return from >= this.#start && (to <= end || (this.#atEof && from <= end));
  }

  // Makes the block start at message i. It was usually read already, while
  // the block before was being looked at (#readAhead); else it is read now.
  async #fill(messages: readonly MessageLocation[], i: number): Promise<void> {
    const { start, length } = this.#plan(messages, i);
    const ahead = this.#ahead;
    this.#ahead = null;
    let got: number;
    if (ahead && ahead.start === start && ahead.length === length) {
      got = await ahead.done;
      [this.#spare, this.#block] = [this.#block, ahead.buffer];
    } else {
      if (ahead) await ahead.done.catch(() => 0); // (its buffer is free only once the read is over)
      if (length > this.#block.length) this.#block = Buffer.allocUnsafe(length); // (only a block size below 128 KiB needs this)
      got = await this.#read(this.#block, start, length);
    }
    this.#start = start;
    this.#length = got;
    this.#atEof = got < length;
    this.#hasCR = null; // looked at when a header is first wanted
    this.#readAhead(messages, i);
  }

  // A block starting at message i, reaching as far along the next messages
  // as fits (but not across a large gap: a search may want only a few
  // messages of a big folder).
  #plan(messages: readonly MessageLocation[], i: number): { start: number; length: number } {
    const start = messages[i].offset;
    let end = start + messages[i].length + BOUNDARY_BYTES;
    for (let j = i + 1; j < messages.length; j++) {
      const next = messages[j];
      const nextEnd = next.offset + Math.min(next.length, WHOLE_CHECK_BYTES) + BOUNDARY_BYTES;
      if (next.offset - end > MAX_GAP || nextEnd - start > this.#block.length) break;
      end = Math.max(end, nextEnd);
    }
    return { start, length: end - start };
  }

  // Starts reading the block after this one, so that the next #fill finds
  // it read: reading and looking at messages overlap.
  #readAhead(messages: readonly MessageLocation[], i: number): void {
    let next = i + 1;
    while (next < messages.length && (messages[next].length > WHOLE_CHECK_BYTES || this.#holds(messages[next].offset, messages[next].offset + messages[next].length + BOUNDARY_BYTES))) next++;
    if (next >= messages.length) return;
    const { start, length } = this.#plan(messages, next);
    const buffer = this.#spare && this.#spare.length >= length ? this.#spare : length <= BLOCK_BYTES && this.#block.length === BLOCK_BYTES ? takeBlock(BLOCK_BYTES) : Buffer.allocUnsafe(Math.max(this.#block.length, length));
    this.#spare = null;
    const done = this.#read(buffer, start, length);
    done.catch(() => {}); // (a reader given up on: nobody waits for it)
    this.#ahead = { start, length, buffer, done };
  }

  async #read(buffer: Buffer, start: number, length: number): Promise<number> {
    const got = await readInto(this.#file, buffer, length, start);
    this.bytesRead += got;
    return got;
  }
}

/** All of a small message, checked exactly; its content unquoted. */
function wholeOf(bytes: Buffer, m: MessageLocation): Buffer {
  checkWholeMessage(bytes, m);
  return unquote(bytes.subarray(m.contentOffset - m.offset, m.length));
}

function unquote(stored: Buffer): Buffer {
  const unquoter = new MboxrdUnquoter();
  const out = unquoter.push(stored);
  const rest = unquoter.end();
  return rest.length === 0 ? out : Buffer.concat([out, rest]);
}

/**
 * Where the body of `content` (a message after its From line) starts: after
 * the first empty line, or line of only a CR (RFC 5322 2.1, as mime/header.ts
 * HeaderEndFinder finds it); -1 if none.
 */
function bodyStartOf(content: Buffer): number {
  const finder = new HeaderEndFinder();
  return finder.push(content);
}
