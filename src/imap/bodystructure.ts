// BODY and BODYSTRUCTURE (RFC 3501 7.4.2, RFC 9051 7.5.2): a message's MIME
// structure as a parenthesized list, written from the tree the structure
// parser found (mime/structure.ts).
//
// A single part:
//   ("text" "plain" ("charset" "utf-8") id description encoding octets lines
//    md5 disposition language location)
// where text parts carry their line count, message/rfc822 parts carry the
// embedded message's ENVELOPE, BODYSTRUCTURE and line count, and the last
// four items (the extension data) are only in BODYSTRUCTURE. A multipart:
//   ((part 1)(part 2) "mixed" ("boundary" "x") disposition language location)
// with the parameters and what follows them only in BODYSTRUCTURE.
//
// Choices, each as Dovecot makes it: types, subtypes and parameters are
// sent as written (case kept); a text part without a charset gets
// ("charset" "us-ascii") (RFC 2045 5.2); a missing encoding is "7bit"; a
// multipart whose parts could not be read (no boundary, a limit) gets one
// empty text/plain part, since the grammar needs at least one; languages
// are always a list, even of one. Where Dovecot sends an invalid
// Content-Type as it is, we send the RFC 2045 5.2 default, text/plain.

import type { MimePart } from '../mime/part.ts';
import { isEmbeddedMessage, isMultipart } from '../mime/part.ts';
import type { MimeParam } from '../mime/params.ts';
import { formatEnvelope } from './envelope.ts';
import { imapString, listOrNil, NIL, nstring } from './imap-string.ts';
import type { WireString } from './imap-string.ts';

const EMPTY_PART = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)';
const EMPTY_PART_EXTENDED = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)';
const EMPTY_ENVELOPE = '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)';

function params(list: readonly MimeParam[]): WireString {
  return listOrNil(list.flatMap((p) => [imapString(p.name), imapString(p.value)]));
}

function typeParams(part: MimePart): WireString {
  const list = [...part.params];
  // RFC 2045 5.2: text without a charset is us-ascii; say so.
  if (part.type.toLowerCase() === 'text' && !list.some((p) => /^charset\*?$/i.test(p.name))) {
    list.push({ name: 'charset', value: 'us-ascii' });
  }
  return params(list);
}

/** Extension data of any part: disposition, language, location (RFC 3501 body-ext-1part tail). */
function dispositionLanguageLocation(part: MimePart): WireString {
  const disposition = part.disposition === null ? NIL : `(${imapString(part.disposition.type)} ${params(part.disposition.params)})`;
  const language = part.language === null ? NIL : listOrNil(part.language.map((l) => imapString(l)));
  return `${disposition} ${language} ${nstring(part.location)}`;
}

function singlePart(part: MimePart, extended: boolean): WireString {
  let out =
    `(${imapString(part.type)} ${imapString(part.subtype)} ${typeParams(part)} ` +
    `${nstring(part.id)} ${nstring(part.description)} ${imapString(part.encoding ?? '7bit')} ${part.bodyOctets}`;
  if (isEmbeddedMessage(part)) {
    const inner = part.message;
    const envelope = inner === null ? EMPTY_ENVELOPE : formatEnvelope(inner.header);
    const body = inner === null ? (extended ? EMPTY_PART_EXTENDED : EMPTY_PART) : format(inner, extended);
    out += ` ${envelope} ${body} ${part.bodyLines}`;
  } else if (part.type.toLowerCase() === 'text') {
    out += ` ${part.bodyLines}`;
  }
  if (extended) out += ` ${nstring(part.md5)} ${dispositionLanguageLocation(part)}`;
  return out + ')';
}

function multiPart(part: MimePart, extended: boolean): WireString {
  let out = '(';
  if (part.children.length === 0) out += extended ? EMPTY_PART_EXTENDED : EMPTY_PART;
  for (const child of part.children) out += format(child, extended);
  out += ` ${imapString(part.subtype)}`;
  if (extended) out += ` ${params(part.params)} ${dispositionLanguageLocation(part)}`;
  return out + ')';
}

function format(part: MimePart, extended: boolean): WireString {
  return isMultipart(part) ? multiPart(part, extended) : singlePart(part, extended);
}

/** BODYSTRUCTURE of a message (its top part), with extension data. */
export function formatBodyStructure(message: MimePart): WireString {
  return format(message, true);
}

/** BODY of a message: the same without extension data. */
export function formatBody(message: MimePart): WireString {
  return format(message, false);
}
