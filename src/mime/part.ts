// One MIME entity (RFC 2045 2.4): a header and a body, found in a message
// by the structure parser (structure.ts), and what its header says about
// it: the Content-* fields of RFC 2045 5-8, RFC 2183 (disposition),
// RFC 3282 (language), RFC 2557 (location) and RFC 1864 (MD5).
//
// A message is a tree of parts. A multipart part (RFC 2046 5.1) has
// children; a message/rfc822 part (RFC 2046 5.2.1) has one embedded
// message, itself a part whose header is the embedded message's header.
// IMAP numbers parts as RFC 3501 6.4.5 says: `partAt` finds them.

import { fieldValue, splitHeaderFields } from './header.ts';
import { parseContentType, parseDisposition } from './params.ts';
import type { Disposition, MimeParam } from './params.ts';

export interface MimePart {
  // Where the part lies, as offsets into the message content (the bytes
  // the store yields: LF line ends, mboxrd quoting undone), [start, end).
  headerStart: number;
  /** Just after the empty line ending the header; equals bodyEnd when there is none. */
  bodyStart: number;
  /** The line end before a boundary belongs to the boundary (RFC 2046 5.1.1), not to the body. */
  bodyEnd: number;

  /** The header fields as written, without the empty line; at most maxHeaderBytes. */
  header: Buffer;
  /** True when the header was longer than the limit and `header` holds only its start. */
  headerTruncated: boolean;

  // Sizes as a client sees them on the wire, with CRLF line ends: every LF
  // that has no CR before it counts two octets (RFC 3501 7.4.2 body-fld-octets).
  /** The header section, with its empty line. */
  headerOctets: number;
  bodyOctets: number;
  /** Lines of the body: the number of line ends in it (what Dovecot counts). */
  bodyLines: number;

  // From the header. Strings are byte strings (header.ts), null when absent.
  /** Media type as written (case kept, as Dovecot sends it), or the default. */
  type: string;
  subtype: string;
  params: MimeParam[];
  /** False when Content-Type was missing or unreadable and the default applies (RFC 2045 5.2). */
  hasContentType: boolean;
  id: string | null;
  description: string | null;
  /** Content-Transfer-Encoding as written; null means 7bit (RFC 2045 6.1). */
  encoding: string | null;
  md5: string | null;
  disposition: Disposition | null;
  language: string[] | null;
  location: string | null;

  /** Multipart: the parts, in order. Empty when they could not be read (no boundary, a limit). */
  children: MimePart[];
  /** message/rfc822: the embedded message, or null when not parsed. */
  message: MimePart | null;
}

/** A part with nothing known yet, starting at `headerStart`. */
export function emptyPart(headerStart: number): MimePart {
  return {
    headerStart, bodyStart: headerStart, bodyEnd: headerStart,
    header: Buffer.alloc(0), headerTruncated: false,
    headerOctets: 0, bodyOctets: 0, bodyLines: 0,
    type: 'text', subtype: 'plain', params: [], hasContentType: false,
    id: null, description: null, encoding: null, md5: null,
    disposition: null, language: null, location: null,
    children: [], message: null,
  };
}

/**
 * Fills in what the header says. `inDigest`: the part is a child of
 * multipart/digest, whose default type is message/rfc822 (RFC 2046 5.1.5).
 */
export function describePart(part: MimePart, inDigest: boolean): void {
  // One pass over the fields; the first of each name counts.
  let contentType: string | null = null;
  let disposition: string | null = null;
  let language: string | null = null;
  for (const field of splitHeaderFields(part.header)) {
    const name = field.name;
    // Only Content-* fields matter here: skip the rest without lower-casing them.
    if (name.length < 10 || (name.charCodeAt(0) | 0x20) !== 0x63 || name[7] !== '-') continue;
    switch (name.toLowerCase()) {
      case 'content-type': contentType ??= fieldValue(field); break;
      case 'content-id': part.id ??= fieldValue(field); break;
      case 'content-description': part.description ??= fieldValue(field); break;
      case 'content-transfer-encoding': part.encoding ??= encodingToken(fieldValue(field)); break;
      case 'content-md5': part.md5 ??= fieldValue(field); break;
      case 'content-disposition': disposition ??= fieldValue(field); break;
      case 'content-language': language ??= fieldValue(field); break;
      case 'content-location': part.location ??= fieldValue(field); break;
    }
  }
  const parsed = parseContentType(contentType);
  if (parsed) {
    part.type = parsed.type;
    part.subtype = parsed.subtype;
    part.params = parsed.params;
    part.hasContentType = true;
  } else if (inDigest) {
    part.type = 'message';
    part.subtype = 'rfc822';
  } else {
    // RFC 2045 5.2: missing or invalid means text/plain; charset=us-ascii
    // (the charset is added when IMAP writes the parameters).
    part.type = 'text';
    part.subtype = 'plain';
  }
  part.disposition = parseDisposition(disposition);
  // RFC 3282 2: a comma-separated list of language tags.
  const tags = language === null ? [] : language.replace(/\([^)]*\)/g, '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  part.language = tags.length > 0 ? tags : null;
}

/**
 * RFC 2045 6.1: the encoding is one token (comments allowed around it).
 * Anything else is unreadable and counts as absent, that is 7bit, as
 * Dovecot treats it.
 */
function encodingToken(value: string): string | null {
  const token = value.replace(/\([^()]*\)/g, '').trim();
  return /^[^\x00-\x20\x7f()<>@,;:\\"/[\]?=]+$/.test(token) ? token : null;
}

export function isMultipart(part: MimePart): boolean {
  return part.type.toLowerCase() === 'multipart';
}

/**
 * message/rfc822: a part that holds a message. Not message/global (RFC
 * 6532 3.7): IMAP4rev1's grammar (RFC 3501 9, media-message) has only
 * RFC822, so a rev1 client would misread a global one written with an
 * envelope; Dovecot 2.3 also sends it as a basic part.
 */
export function isEmbeddedMessage(part: MimePart): boolean {
  return part.type.toLowerCase() === 'message' && part.subtype.toLowerCase() === 'rfc822';
}

/** The encoding in lower case, 7bit when absent (RFC 2045 6.1). */
export function transferEncoding(part: MimePart): string {
  return (part.encoding ?? '7bit').trim().toLowerCase();
}

/**
 * The part an IMAP section number names (RFC 3501 6.4.5), e.g. [1, 2] for
 * "1.2", or null. In a message that is not multipart, part 1 is its body;
 * the parts of an embedded message are numbered under the message/rfc822
 * part that holds it. `message` is the message's top part.
 */
export function partAt(message: MimePart, path: readonly number[]): MimePart | null {
  let current = message;
  for (let k = 0; k < path.length; k++) {
    const n = path[k];
    // Where the numbers of this level live: the message itself at the top,
    // the embedded message below a message/rfc822 part, else the part itself.
    const container = k === 0 ? message : isEmbeddedMessage(current) ? current.message : current;
    if (container === null) return null;
    if (isMultipart(container)) {
      const child = container.children[n - 1];
      if (!child) return null;
      current = child;
    } else if (n === 1 && (k === 0 || container !== current)) {
      current = container; // a single-part (embedded) message: part 1 is its body
    } else {
      return null;
    }
  }
  return current;
}
