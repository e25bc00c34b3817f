// What the IMAP layer keeps in the store's message cache (store/
// message-cache.ts), and how each value is worked out from a message when
// the cache does not have it: the parsed ENVELOPE, BODY and BODYSTRUCTURE
// (RFC 3501 7.4.2), exactly as fetch-data.ts writes them, and the text
// SEARCH looks in (search-text.ts). The store keeps them as opaque byte
// strings by kind; the numbers below are their kinds, fixed: they are in
// the cache files.

import { HeaderEndFinder } from '../mime/header.ts';
import { MimeStructureParser, parseStructure } from '../mime/structure.ts';
import type { MimePart } from '../mime/part.ts';
import type { CacheFill, MessageContent } from '../store/mailbox.ts';
import { formatBody, formatBodyStructure } from './bodystructure.ts';
import { formatEnvelope } from './envelope.ts';
import { searchText } from './search-text.ts';

export const ENVELOPE = 0;
export const BODYSTRUCTURE = 1;
export const BODY = 2;
export const SEARCH_TEXT = 3;

/** A header section is read at most this far looking for its end (as fetch-data.ts reads it). */
const MAX_HEADER_READ = 1024 * 1024;

/**
 * How FETCH's cached items are worked out: from the header alone for
 * ENVELOPE; from the whole message for BODY and BODYSTRUCTURE, which are
 * then both made, from the one parse.
 */
export function fetchFill(kinds: readonly number[]): CacheFill {
  const structure = kinds.includes(BODY) || kinds.includes(BODYSTRUCTURE);
  return {
    extent: structure ? 'message' : 'header',
    compute: (content) => (structure ? fromMessage(content, kinds) : fromHeader(content, kinds)),
  };
}

/** How SEARCH's text is worked out: from the header. */
export const searchFill: CacheFill = { extent: 'header', compute: (content) => fromHeader(content, [SEARCH_TEXT]) };

function fromHeader(content: MessageContent, kinds: readonly number[]): string[] | Promise<string[]> {
  if (content.bytes) return headerValues(content.text ?? content.bytes, kinds);
  return headerOfStream(content.stream).then((header) => headerValues(header, kinds));
}

function headerValues(header: Buffer | string, kinds: readonly number[]): string[] {
  return kinds.map((kind) => (kind === ENVELOPE ? formatEnvelope(header) : kind === SEARCH_TEXT ? searchText(header) : ''));
}

async function fromMessage(content: MessageContent, kinds: readonly number[]): Promise<string[]> {
  let structure: MimePart;
  let header: Buffer;
  if (content.bytes) {
    const parser = new MimeStructureParser();
    parser.push(content.bytes);
    structure = parser.end();
    header = headerOfBytes(content.bytes);
  } else {
    // A large message: its header (as ENVELOPE reads it) is collected as the parse goes by.
    const collector = new HeaderCollector();
    structure = await parseStructure(tee(content.stream, collector));
    header = collector.header();
  }
  return kinds.map((kind) => {
    if (kind === ENVELOPE) return formatEnvelope(header);
    if (kind === BODYSTRUCTURE) return formatBodyStructure(structure);
    if (kind === BODY) return formatBody(structure);
    return searchText(header);
  });
}

/** The header section through its empty line, or all of it if it has none (a small message). */
function headerOfBytes(bytes: Buffer): Buffer {
  const bodyStart = new HeaderEndFinder().push(bytes);
  return bodyStart < 0 ? bytes : bytes.subarray(0, bodyStart);
}

/** The header of a streamed message, read no further than needed (as fetch-data.ts's readHeader). */
export async function headerOfStream(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const collector = new HeaderCollector();
  for await (const chunk of stream) if (collector.push(chunk)) break;
  return collector.header();
}

async function* tee(stream: AsyncIterable<Buffer>, collector: HeaderCollector): AsyncIterable<Buffer> {
  for await (const chunk of stream) {
    collector.push(chunk);
    yield chunk;
  }
}

/**
 * Collects a header section from chunks: through the empty line that ends
 * it, or, without one, the chunks until MAX_HEADER_READ (RFC 5322 2.1: all
 * of it is then header). The same bytes as fetch-data.ts's readHeader.
 */
class HeaderCollector {
  readonly #finder = new HeaderEndFinder();
  readonly #parts: Buffer[] = [];
  #length = 0;
  #done = false;

  /** Takes the next chunk; true once the header is complete. */
  push(chunk: Buffer): boolean {
    if (this.#done) return true;
    const bodyStart = this.#finder.push(chunk);
    if (bodyStart >= 0) {
      this.#parts.push(chunk.subarray(0, bodyStart));
      return (this.#done = true);
    }
    this.#parts.push(chunk);
    this.#length += chunk.length;
    return (this.#done = this.#length >= MAX_HEADER_READ);
  }

  header(): Buffer {
    return Buffer.concat(this.#parts);
  }
}
