// Evaluating a SEARCH (RFC 3501 6.4.4) against one message. The keys that
// the index answers (flags, sizes, dates, sequence numbers, UIDs, MODSEQ)
// are checked first; the message is read only when a key needs its header
// (FROM, SUBJECT, HEADER, SENT*) or its text (BODY, TEXT), and then once.
//
// Strings match as RFC 3501 asks: a case-insensitive substring, here of
// the decoded text (RFC 2047 words, quoted-printable and base64 bodies, the
// charsets of text parts), compared after mime/search-match.ts's folding.

import { HeaderEndFinder, splitHeaderFields, fieldValue } from '../mime/header.ts';
import { parseAddressList, addressText } from '../mime/address.ts';
import { decodeHeaderText } from '../mime/encoded-words.ts';
import { parseMessageDate, messageDay } from '../mime/date.ts';
import { headerText, messageText } from '../mime/text.ts';
import { foldForSearch, textContains } from '../mime/search-match.ts';
import type { HeaderField } from '../mime/header.ts';
import type { SeqRange } from './parser.ts';
import type { SearchKey } from './search-keys.ts';

/** One message as SEARCH sees it. */
export interface SearchCandidate {
  seq: number;
  uid: number;
  /** Octets on the wire: LARGER and SMALLER. */
  size: number;
  internalDate: Date;
  flags: readonly string[];
  /** \Recent in this session. */
  recent: boolean;
  modseq: number;
  read(): AsyncIterable<Buffer>;
}

/** What the whole search knows: `*` in a sequence set, `*` in a UID set, the saved result ($). */
export interface SearchContext {
  lastSeq: number;
  lastUid: number;
  saved: ReadonlySet<number>;
}

const DAY_MS = 86_400_000;

/** How much of the message a key needs: 0 nothing, 1 the header, 2 the text. */
export function contentNeeded(key: SearchKey): 0 | 1 | 2 {
  switch (key.kind) {
    case 'and':
      return Math.max(0, ...key.keys.map(contentNeeded)) as 0 | 1 | 2;
    case 'or':
      return Math.max(contentNeeded(key.left), contentNeeded(key.right)) as 0 | 1 | 2;
    case 'not':
      return contentNeeded(key.key);
    case 'header':
      return 1;
    case 'date':
      return key.sent ? 1 : 0;
    case 'body':
    case 'text':
      return 2;
    default:
      return 0;
  }
}

/** Does the message match? Reads it (once) only if a key needs its content. */
export async function matches(key: SearchKey, message: SearchCandidate, context: SearchContext): Promise<boolean> {
  let fields: HeaderField[] | null = null;
  const header = async (): Promise<HeaderField[]> => (fields ??= splitHeaderFields(await readHeader(message)));
  return evaluate(key, message, context, header);
}

async function evaluate(key: SearchKey, m: SearchCandidate, context: SearchContext, header: () => Promise<HeaderField[]>): Promise<boolean> {
  switch (key.kind) {
    case 'all':
      return true;
    case 'and':
      for (const k of key.keys) if (!(await evaluate(k, m, context, header))) return false;
      return true;
    case 'or':
      return (await evaluate(key.left, m, context, header)) || evaluate(key.right, m, context, header);
    case 'not':
      return !(await evaluate(key.key, m, context, header));
    case 'flag': {
      const wanted = key.flag.toLowerCase();
      return m.flags.some((f) => f.toLowerCase() === wanted) === key.set;
    }
    case 'recent':
      return m.recent === key.set;
    case 'sequence':
      return inSet(m.seq, key.set, context.lastSeq);
    case 'uid':
      return inSet(m.uid, key.set, context.lastUid);
    case 'saved':
      return context.saved.has(m.uid);
    case 'size':
      return key.larger ? m.size > key.octets : m.size < key.octets;
    case 'modseq':
      return BigInt(m.modseq) >= key.modseq;
    case 'date': {
      let day: number;
      if (key.sent) {
        const date = parseMessageDate(fieldOf(await header(), 'date') ?? '');
        if (!date) return false;
        day = messageDay(date);
      } else {
        // RFC 3501 6.4.4: the date, disregarding time and timezone (ours are kept in UTC).
        day = Math.floor(m.internalDate.getTime() / DAY_MS);
      }
      // Days since 1970-01-01, as messageDay counts them.
      const wanted = Math.floor(key.day.getTime() / DAY_MS);
      return key.relation === 'before' ? day < wanted : key.relation === 'on' ? day === wanted : day >= wanted;
    }
    case 'header':
      return headerMatches(await header(), key.field, key.value);
    case 'body':
      return textContains(bodyText(m), key.value);
    case 'text':
      return textContains(allText(m, await header()), key.value);
  }
}

/** A number in a set; `*` (Infinity) stands for `last`. */
function inSet(n: number, set: readonly SeqRange[], last: number): boolean {
  for (const range of set) {
    const from = range.from === Infinity ? last : range.from;
    const to = range.to === Infinity ? last : range.to;
    if (n >= Math.min(from, to) && n <= Math.max(from, to)) return true;
  }
  return false;
}

/** The first value of a field (a byte string), or null. */
function fieldOf(fields: readonly HeaderField[], name: string): string | null {
  const field = fields.find((f) => f.name.toLowerCase() === name);
  return field ? fieldValue(field) : null;
}

const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'sender', 'reply-to']);

/**
 * HEADER name value (and FROM, TO, CC, BCC, SUBJECT): any field of that name
 * whose decoded value contains the string; an empty string matches any
 * message that has the field (RFC 3501 6.4.4).
 */
function headerMatches(fields: readonly HeaderField[], name: string, value: string): boolean {
  const needle = foldForSearch(value);
  for (const field of fields) {
    if (field.name.toLowerCase() !== name) continue;
    if (needle === '') return true;
    const raw = fieldValue(field);
    const text = ADDRESS_FIELDS.has(name) ? `${decodeHeaderText(raw)} ${addressText(parseAddressList(raw))}` : decodeHeaderText(raw);
    if (foldForSearch(text).includes(needle)) return true;
  }
  return false;
}

/** BODY: the decoded text of the message's text parts. */
function bodyText(m: SearchCandidate): AsyncIterable<string> {
  return messageText(m.read());
}

/** TEXT: the header and the body. */
async function* allText(m: SearchCandidate, fields: readonly HeaderField[]): AsyncIterable<string> {
  yield headerText(Buffer.concat(fields.map((f) => f.raw)));
  yield '\n';
  yield* bodyText(m);
}

/** The header section of a message, read as far as its end. */
async function readHeader(m: SearchCandidate): Promise<Buffer> {
  const finder = new HeaderEndFinder();
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of m.read()) {
    const bodyStart = finder.push(chunk);
    parts.push(bodyStart >= 0 ? chunk.subarray(0, finder.headerLength - length) : chunk);
    length += chunk.length;
    if (bodyStart >= 0 || length > 1024 * 1024) break;
  }
  return Buffer.concat(parts);
}
