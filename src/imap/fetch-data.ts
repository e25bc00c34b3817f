// The data of one FETCH response (RFC 3501 6.4.5, 7.4.2): for one message
// and the items a client asked for, the text `* 12 FETCH (UID 7 FLAGS (\Seen)
// BODY[] {342}\r\n...)`, with the message's bytes streamed as literals.
//
// A message is read at most once per response, and only as far as needed:
// not at all for UID, FLAGS, INTERNALDATE, RFC822.SIZE and MODSEQ (the
// index has them); its header only for ENVELOPE and header sections; the
// whole of it for BODYSTRUCTURE, part numbers and BODY[].

import { findHeaderEnd, HeaderEndFinder, pickFields, removeFields } from '../mime/header.ts';
import { formatImapDateTime } from '../mime/date.ts';
import { parseStructure } from '../mime/structure.ts';
import { partAt, isEmbeddedMessage, transferEncoding } from '../mime/part.ts';
import { transferDecoder } from '../mime/transfer-decode.ts';
import type { MimePart } from '../mime/part.ts';
import { formatEnvelope } from './envelope.ts';
import { formatBody, formatBodyStructure } from './bodystructure.ts';
import { crlfBuffer, crlfLength, slice, toCrlf } from './crlf.ts';
import { sectionLabel } from './fetch-items.ts';
import { BufferPool, recycle } from '../buffer-pool.ts';
import type { FetchItem, Section } from './fetch-items.ts';

/** One message, as FETCH needs it. */
export interface FetchSource {
  seq: number;
  uid: number;
  /** Octets on the wire (CRLF line ends): RFC822.SIZE. */
  size: number;
  internalDate: Date;
  /** Its flags as this session sees them (with \Recent when it is recent here). */
  flags: readonly string[];
  modseq: number;
  /**
   * The message as stored: LF line ends, mboxrd quoting undone. Chunks are
   * handed over: once copied they may be recycled (buffer-pool.ts), so a
   * source must not keep them.
   */
  read(): AsyncIterable<Buffer>;
}

/** A literal inside a response: its size on the wire and its bytes. */
export interface StreamedLiteral {
  size: number;
  /**
   * Its bytes. With `pool`, as many as can be are written into the pool's
   * buffers (buffer-pool.ts): each chunk is then to be handed on, not kept.
   */
  bytes: (pool?: BufferPool) => AsyncIterable<Buffer>;
  /** Sent as literal8 (`~{n}`, RFC 3516 4.3): the bytes may hold NUL. */
  binary?: boolean;
}

/** The response as pieces: byte strings, and literals to stream. */
export type ResponsePiece = string | StreamedLiteral;

/** A header section is read at most this far looking for its end. */
const MAX_HEADER_READ = 1024 * 1024;
/** Literals up to this size are built in memory and sent with the response text. */
const SMALL_LITERAL = 256 * 1024;
/**
 * The buffers a large literal streams through (buffer-pool.ts): each takes
 * 128 KiB of stored text, CRLF added. The socket holds one or two of them
 * at a time, so a FETCH response needs three or so, whatever its size.
 */
const LITERAL_BUFFER_BYTES = 256 * 1024;

/** What the items need read before the response is built: the header, or the whole MIME structure. */
function needs(items: readonly FetchItem[]): { header: boolean; structure: boolean } {
  let header = false;
  let structure = false;
  for (const item of items) {
    if (item.kind === 'envelope' || (item.kind === 'rfc822' && item.which === 'HEADER')) header = true;
    else if (item.kind === 'body' || item.kind === 'bodystructure' || item.kind === 'binary-size') structure = true;
    else if (item.kind === 'section' && item.section.part.length > 0) structure = true;
    else if (item.kind === 'section' && item.section.text.startsWith('HEADER')) header = true;
  }
  return { header, structure };
}

/** The header section of a message (LF), with its empty line, and where its body starts. */
async function readHeader(source: FetchSource): Promise<{ header: Buffer; bodyStart: number }> {
  const finder = new HeaderEndFinder();
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of source.read()) {
    const bodyStart = finder.push(chunk);
    if (bodyStart >= 0) {
      parts.push(chunk.subarray(0, bodyStart));
      const header = Buffer.concat(parts);
      return { header, bodyStart: header.length };
    }
    parts.push(chunk);
    length += chunk.length;
    if (length >= MAX_HEADER_READ) break;
  }
  const all = Buffer.concat(parts);
  return { header: all, bodyStart: all.length }; // no empty line: all of it is header (RFC 5322 2.1)
}

/**
 * The pieces of `* seq FETCH (...)` for one message. `items` are in the
 * order the client asked; the caller adds UID for UID FETCH and FLAGS when
 * \Seen was just set.
 */
export async function fetchPieces(source: FetchSource, items: readonly FetchItem[]): Promise<ResponsePiece[]> {
  const need = needs(items);
  let header: Buffer | null = null;
  let headerBytes = 0; // where the body starts, in the stored bytes
  let structure: MimePart | null = null;
  if (need.structure) {
    structure = await parseStructure(source.read());
    // The parser keeps the fields without the empty line that ends them; sections want it.
    header = structure.bodyStart > structure.header.length ? Buffer.concat([structure.header, Buffer.from('\n')]) : structure.header;
    headerBytes = structure.bodyStart;
  } else if (need.header) {
    const read = await readHeader(source);
    header = read.header;
    headerBytes = read.bodyStart;
  }
  const pieces: ResponsePiece[] = [`* ${source.seq} FETCH (`];
  const add = (name: string, value: ResponsePiece) => {
    if (pieces.length > 1) pieces.push(' ');
    pieces.push(`${name} `, value);
  };
  for (const item of items) {
    switch (item.kind) {
      case 'uid':
        add('UID', String(source.uid));
        break;
      case 'flags':
        add('FLAGS', `(${source.flags.join(' ')})`);
        break;
      case 'internaldate':
        add('INTERNALDATE', `"${formatImapDateTime(source.internalDate)}"`);
        break;
      case 'size':
        add('RFC822.SIZE', String(source.size));
        break;
      case 'modseq':
        add('MODSEQ', `(${source.modseq})`);
        break;
      case 'envelope':
        add('ENVELOPE', formatEnvelope(header!));
        break;
      case 'bodystructure':
        add('BODYSTRUCTURE', formatBodyStructure(structure!));
        break;
      case 'body':
        add('BODY', formatBody(structure!));
        break;
      case 'rfc822': {
        const section: Section = { part: [], text: item.which, fields: [] };
        add(item.which === '' ? 'RFC822' : `RFC822.${item.which}`, await sectionData(source, section, header, headerBytes, structure));
        break;
      }
      case 'section': {
        let data = item.binary ? await binaryData(source, item.section, structure) : await sectionData(source, item.section, header, headerBytes, structure);
        if (item.partial && data !== 'NIL') data = partial(data, item.partial.start, item.partial.length);
        add(sectionLabel(item), data);
        break;
      }
      case 'binary-size': {
        const data = await binaryData(source, item.section, structure);
        add(`BINARY.SIZE[${item.section.part.join('.')}]`, typeof data === 'string' ? '0' : String(data.size));
        break;
      }
    }
  }
  pieces.push(')\r\n');
  return pieces;
}

/** The bytes of a body section (RFC 3501 6.4.5), on the wire (CRLF), or NIL for a part that does not exist. */
async function sectionData(source: FetchSource, section: Section, header: Buffer | null, headerBytes: number, structure: MimePart | null): Promise<ResponsePiece> {
  if (section.part.length === 0) {
    switch (section.text) {
      case '':
        return { size: source.size, bytes: (pool) => toCrlf(source.read(), pool) };
      case 'TEXT': {
        const read = header ? { header, bodyStart: headerBytes } : await readHeader(source);
        const size = Math.max(0, source.size - crlfLength(read.header));
        return { size, bytes: (pool) => toCrlf(slice(source.read(), read.bodyStart, Infinity), pool) };
      }
      default:
        return inMemory(headerSection(header!, section));
    }
  }
  const part = partAt(structure!, section.part);
  if (!part) return 'NIL';
  if (section.text === '') return range(source, part.bodyStart, part.bodyEnd, part.bodyOctets);
  if (section.text === 'MIME') return range(source, part.headerStart, part.bodyStart, part.headerOctets);
  // HEADER, TEXT, HEADER.FIELDS of a part: only a message/rfc822 part has them (RFC 3501 6.4.5).
  const embedded = isEmbeddedMessage(part) ? part.message : null;
  if (!embedded) return 'NIL';
  if (section.text === 'TEXT') return range(source, embedded.bodyStart, embedded.bodyEnd, embedded.bodyOctets);
  const bytes = await collect(slice(source.read(), embedded.headerStart, embedded.bodyStart - embedded.headerStart));
  return inMemory(headerSection(bytes, section));
}

/** The content-transfer-encodings BINARY can undo (RFC 3516 4.2). */
const KNOWN_ENCODINGS = ['7bit', '8bit', 'binary', 'base64', 'quoted-printable'];

/** A content-transfer-encoding the server cannot decode: FETCH BINARY answers NO [UNKNOWN-CTE]. */
export class UnknownEncodingError extends Error {}

/**
 * BINARY[part] (RFC 3516 4.2): the part's content with its
 * content-transfer-encoding undone. Its size is needed before its bytes, so
 * the part is decoded twice, streaming, rather than held in memory.
 */
async function binaryData(source: FetchSource, section: Section, structure: MimePart | null): Promise<ResponsePiece> {
  if (section.part.length === 0) return { size: source.size, bytes: (pool) => toCrlf(source.read(), pool), binary: true };
  const part = partAt(structure!, section.part);
  if (!part) return 'NIL';
  const encoding = transferEncoding(part);
  if (!KNOWN_ENCODINGS.includes(encoding)) throw new UnknownEncodingError(`unknown content-transfer-encoding ${encoding}`);
  // Unencoded parts keep their CRLF as on the wire; base64 and QP yield what was encoded.
  const raw = () => slice(source.read(), part.bodyStart, part.bodyEnd - part.bodyStart);
  const decoded = encoding === 'base64' || encoding === 'quoted-printable' ? () => decode(raw(), part.encoding) : (pool?: BufferPool) => toCrlf(raw(), pool);
  let size = 0;
  const counting = new BufferPool(LITERAL_BUFFER_BYTES, 1);
  for await (const chunk of decoded(counting)) {
    size += chunk.length;
    recycle(chunk); // only counted
  }
  return { size, bytes: decoded, binary: true };
}

async function* decode(source: AsyncIterable<Buffer>, encoding: string | null): AsyncIterable<Buffer> {
  const decoder = transferDecoder(encoding);
  for await (const chunk of source) yield decoder.write(chunk);
  yield decoder.end();
}

/** HEADER, HEADER.FIELDS or HEADER.FIELDS.NOT of a header section (with its empty line). */
function headerSection(header: Buffer, section: Section): Buffer {
  const fields = new Set(section.fields.map((f) => f.toLowerCase()));
  const end = findHeaderEnd(header);
  const fieldsOnly = end ? header.subarray(0, end.headerLength) : header;
  if (section.text === 'HEADER') return crlfBuffer(header);
  const picked = section.text === 'HEADER.FIELDS' ? pickFields(fieldsOnly, fields) : removeFields(fieldsOnly, fields);
  // RFC 3501 6.4.5: the result includes the empty line that ends a header.
  return crlfBuffer(Buffer.concat([picked, Buffer.from('\n')]));
}

function inMemory(bytes: Buffer): StreamedLiteral {
  return { size: bytes.length, bytes: async function* () { yield bytes; } };
}

/** The stored bytes [start, end), on the wire: `octets` long. */
function range(source: FetchSource, start: number, end: number, octets: number): StreamedLiteral {
  return { size: octets, bytes: (pool) => toCrlf(slice(source.read(), start, end - start), pool) };
}

/** `<start.length>` of a section: the octets the client asked for (RFC 3501 6.4.5). */
function partial(data: ResponsePiece, start: number, length: number): ResponsePiece {
  if (typeof data === 'string') return data;
  const size = Math.max(0, Math.min(length, data.size - start));
  return { size, bytes: (pool) => slice(data.bytes(pool), start, size), binary: data.binary };
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

/**
 * Responses as buffers to write: text and small literals gathered into
 * pieces of about `batch` bytes (many messages per write), large literals
 * streamed as they are read, through the buffers of `pool`. The consumer
 * hands each buffer to the connection, which recycles it once the socket
 * has written it (wire/reply-queue.ts); it must not keep one.
 */
export async function* serialize(responses: AsyncIterable<ResponsePiece[]>, batch = 64 * 1024, pool = new BufferPool(LITERAL_BUFFER_BYTES)): AsyncIterable<Buffer> {
  let pending = '';
  for await (const pieces of responses) {
    for (const piece of pieces) {
      if (typeof piece === 'string') {
        pending += piece;
        continue;
      }
      pending += `${piece.binary ? '~' : ''}{${piece.size}}\r\n`;
      if (piece.size <= SMALL_LITERAL) {
        const bytes = await collect(piece.bytes());
        if (bytes.length !== piece.size) throw new Error(`a literal of ${bytes.length} octets where ${piece.size} were announced`);
        pending += bytes.toString('latin1');
        continue;
      }
      yield Buffer.from(pending, 'latin1');
      pending = '';
      let sent = 0;
      for await (const chunk of piece.bytes(pool)) {
        sent += chunk.length;
        yield chunk;
      }
      if (sent !== piece.size) throw new Error(`a literal of ${sent} octets where ${piece.size} were announced`);
    }
    if (pending.length >= batch) {
      yield Buffer.from(pending, 'latin1');
      pending = '';
    }
  }
  if (pending.length > 0) yield Buffer.from(pending, 'latin1');
}
