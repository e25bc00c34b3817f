// BODYSTRUCTURE, read back (RFC 3501 7.4.2): the MIME tree of a message as
// the server parsed it, so the webmail can fetch just the part it shows
// (BODY[1.2]) instead of the whole message.
//
//   multipart:   (part part ... "mixed" ("boundary" "x") disposition language location)
//   basic:       ("image" "png" ("name" "a.png") id description "base64" size md5 disposition ...)
//   text:        ("text" "plain" ("charset" "utf-8") id description "7bit" size lines md5 ...)
//   message:     ("message" "rfc822" params id description encoding size envelope body lines ...)
//
// Each part gets its IMAP section number (RFC 3501 6.4.5): the parts of a
// multipart are 1, 2, ...; those of a part nested inside are 2.1, 2.2; a
// message that is not multipart has its body as part 1; the parts of an
// embedded message are numbered under the message/rfc822 part.

import type { Disposition, MimeParam } from '../../mime/params.ts';
import { parseEnvelope } from './envelope.ts';
import type { Envelope } from './envelope.ts';
import { asList, asNumber, asString } from './values.ts';
import type { ImapValue } from './values.ts';

export interface BodyPart {
  /** The IMAP section number, "" for a multipart message itself. */
  section: string;
  /** Lower case. */
  type: string;
  subtype: string;
  /** As the server sends them: byte strings, RFC 2231 continuations merged (mime/params.ts). */
  params: MimeParam[];
  id: string | null;
  description: string | null;
  /** Content-Transfer-Encoding, lower case; null when absent (7bit). */
  encoding: string | null;
  /** Encoded size in octets. */
  size: number;
  disposition: Disposition | null;
  /** The parts of a multipart. */
  children: BodyPart[];
  /** For message/rfc822: the embedded message's envelope and body. */
  envelope: Envelope | null;
  message: BodyPart | null;
}

export function parseBodyStructure(value: ImapValue | undefined): BodyPart {
  return body(asList(value), '', 'message-body');
}

const join = (section: string, n: number) => (section === '' ? String(n) : `${section}.${n}`);

/**
 * `role` says how the numbers work: a message body (the top, or inside a
 * message/rfc822 part) numbers a single part as `section.1`; a child of a
 * multipart is `section` itself.
 */
function body(v: ImapValue[], section: string, role: 'message-body' | 'child'): BodyPart {
  if (Array.isArray(v[0])) {
    // Multipart: the children first, then the subtype and the extension data.
    let n = 0;
    while (Array.isArray(v[n])) n++;
    const children = v.slice(0, n).map((child, i) => body(asList(child), join(section, i + 1), 'child'));
    return {
      ...emptyPart(section, 'multipart', (asString(v[n]) ?? 'mixed').toLowerCase()),
      params: params(v[n + 1]),
      disposition: disposition(v[n + 2]),
      children,
    };
  }
  const own = role === 'message-body' ? join(section, 1) : section;
  const type = (asString(v[0]) ?? 'text').toLowerCase();
  const subtype = (asString(v[1]) ?? 'plain').toLowerCase();
  const part: BodyPart = {
    ...emptyPart(own, type, subtype),
    params: params(v[2]),
    id: asString(v[3]),
    description: asString(v[4]),
    encoding: asString(v[5])?.toLowerCase() ?? null,
    size: asNumber(v[6]),
  };
  // Extension data starts after the type-specific fields (RFC 3501 7.4.2 body-ext-1part: md5 first).
  let extension = 7;
  if (type === 'text') extension = 8; // body-fld-lines
  if (type === 'message' && subtype === 'rfc822') {
    part.envelope = parseEnvelope(v[7]);
    part.message = body(asList(v[8]), own, 'message-body');
    extension = 10; // envelope, body, lines
  }
  part.disposition = disposition(v[extension + 1]);
  return part;
}

function emptyPart(section: string, type: string, subtype: string): BodyPart {
  return {
    section, type, subtype, params: [], id: null, description: null, encoding: null,
    size: 0, disposition: null, children: [], envelope: null, message: null,
  };
}

function params(value: ImapValue | undefined): MimeParam[] {
  const list = asList(value);
  const found: MimeParam[] = [];
  for (let i = 0; i + 1 < list.length; i += 2) {
    const name = asString(list[i]);
    const paramValue = asString(list[i + 1]);
    if (name !== null && paramValue !== null) found.push({ name, value: paramValue });
  }
  return found;
}

/** body-fld-dsp: ("attachment" ("filename" "a.pdf")) or NIL. */
function disposition(value: ImapValue | undefined): Disposition | null {
  const list = asList(value);
  const type = asString(list[0]);
  return type === null ? null : { type: type.toLowerCase(), params: params(list[1]) };
}
