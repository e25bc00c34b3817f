// A message as text: what SEARCH BODY/TEXT look in and what the webmail
// shows. The text parts (text/*, RFC 2046 4.1) are decoded from their
// transfer encoding (transfer-decode.ts) and their charset (charset.ts)
// while the message streams by, in the same pass that finds its structure.
// Header fields come unfolded and with their encoded-words decoded.
//
// Also here: a part's body bytes, decoded, for an attachment download, and
// any byte range of a message, for IMAP BODY[section] and partial fetches.

import { StreamTextDecoder } from './charset.ts';
import { decodeHeaderText } from './encoded-words.ts';
import { fieldValue, splitHeaderFields } from './header.ts';
import { paramValue } from './params.ts';
import type { MimePart } from './part.ts';
import { MimeStructureParser } from './structure.ts';
import type { StructureLimits } from './structure.ts';
import { transferDecoder } from './transfer-decode.ts';
import type { ByteDecoder } from './transfer-decode.ts';

/** Is this part text a person reads (and SEARCH looks in)? */
export function isTextPart(part: MimePart): boolean {
  return part.type.toLowerCase() === 'text';
}

/**
 * Yields the text of a message's text parts, in order, as strings: decoded
 * from base64 or quoted-printable and converted from the part's charset.
 * Attachments that are text count (SEARCH BODY finds words in a .txt
 * attachment, as in Dovecot). Between two parts comes a "\n", so a word
 * never runs from one part into the next.
 */
export async function* messageText(
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  limits: Partial<StructureLimits> = {},
): AsyncGenerator<string> {
  let pieces: string[] = [];
  let transfer: ByteDecoder | null = null;
  let charset: StreamTextDecoder | null = null;
  let parts = 0;
  const parser = new MimeStructureParser(limits, {
    partHeader(part) {
      if (!isTextPart(part)) return false;
      if (parts++ > 0) pieces.push('\n');
      transfer = transferDecoder(part.encoding);
      charset = new StreamTextDecoder(paramValue(part.params, 'charset'));
    },
    bodyData(_part, data) {
      const text = charset!.write(transfer!.write(data));
      if (text !== '') pieces.push(text);
    },
    partEnd() {
      const text = charset!.write(transfer!.end()) + charset!.end();
      if (text !== '') pieces.push(text);
    },
  });
  for await (const chunk of chunks) {
    parser.push(chunk);
    if (pieces.length > 0) {
      yield pieces.join('');
      pieces = [];
    }
  }
  parser.end();
  if (pieces.length > 0) yield pieces.join('');
}

/**
 * A header section as text: one `Name: value` line per field, unfolded,
 * encoded-words and 8-bit bytes decoded. For SEARCH TEXT and HEADER.
 */
export function headerText(header: Buffer): string {
  let out = '';
  for (const field of splitHeaderFields(header)) {
    const value = decodeHeaderText(fieldValue(field));
    out += field.name === '' ? `${value}\n` : `${field.name}: ${value}\n`;
  }
  return out;
}

/** The bytes at [start, end) of a message streamed as chunks. */
export async function* byteRange(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, start: number, end: number): AsyncGenerator<Buffer> {
  let position = 0;
  for await (const chunk of chunks) {
    const from = Math.max(start - position, 0);
    const to = Math.min(end - position, chunk.length);
    if (from < to) yield chunk.subarray(from, to);
    position += chunk.length;
    if (position >= end) return;
  }
}

/** A part's body with its transfer encoding undone: an attachment as the sender attached it. */
export async function* partContent(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, part: MimePart): AsyncGenerator<Buffer> {
  const decoder = transferDecoder(part.encoding);
  for await (const piece of byteRange(chunks, part.bodyStart, part.bodyEnd)) {
    const out = decoder.write(piece);
    if (out.length > 0) yield out;
  }
  const rest = decoder.end();
  if (rest.length > 0) yield rest;
}
