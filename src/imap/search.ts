// Evaluating a SEARCH (RFC 3501 6.4.4) against one message, with what is
// known of it so far. search-command.ts looks at every message first with
// what the index knows (flags, sizes, dates, sequence numbers, UIDs,
// MODSEQ), then, for those still undecided, with the text the message
// cache keeps (FROM, TO, CC, BCC, SUBJECT, SENT*: search-text.ts), and
// reads a message (its header, or all of it for BODY and TEXT) only when
// that is not enough. So `decide` answers true, false, or null for "not
// known yet": an AND with one false key is false whatever the others say.
//
// Strings match as RFC 3501 asks: a case-insensitive substring, here of
// the decoded text (RFC 2047 words, quoted-printable and base64 bodies, the
// charsets of text parts), compared after mime/search-match.ts's folding.

import { splitHeaderFields, fieldValue } from '../mime/header.ts';
import type { HeaderField } from '../mime/header.ts';
import { parseAddressList, addressText } from '../mime/address.ts';
import { decodeHeaderText } from '../mime/encoded-words.ts';
import { parseMessageDate, messageDay } from '../mime/date.ts';
import { headerText, messageText } from '../mime/text.ts';
import { foldForSearch, textContains } from '../mime/search-match.ts';
import type { SeqRange } from './parser.ts';
import type { SearchKey } from './search-keys.ts';
import { inSearchText, searchTextMatches, sentDay } from './search-text.ts';

/** One message as SEARCH sees it, with what has been found out about it. */
export interface SearchCandidate {
  seq: number;
  uid: number;
  /** Octets on the wire: LARGER and SMALLER. */
  size: number;
  /** Internal date, seconds since the epoch. */
  internalDate: number;
  /** Its flags and keywords, in lower case. */
  flags: ReadonlySet<string>;
  /** \Recent in this session. */
  recent: boolean;
  modseq: number;
  /** The text the cache keeps for SEARCH (search-text.ts), once looked up. */
  searchText: string | null;
  /** Its header fields, once read. */
  fields: readonly HeaderField[] | null;
}

/** What the whole search knows: `*` in a sequence set, `*` in a UID set, the saved result ($). */
export interface SearchContext {
  lastSeq: number;
  lastUid: number;
  saved: ReadonlySet<number>;
}

const DAY_MS = 86_400_000;
const ADDRESS_FIELDS = new Set(['from', 'to', 'cc', 'bcc', 'sender', 'reply-to']);

/** What a search needs beyond the index: the cached text, the header, the text of the message. */
export interface SearchNeeds {
  searchText: boolean;
  header: boolean;
  body: boolean;
}

export function searchNeeds(key: SearchKey): SearchNeeds {
  const needs: SearchNeeds = { searchText: false, header: false, body: false };
  const visit = (k: SearchKey): void => {
    switch (k.kind) {
      case 'and':
        return k.keys.forEach(visit);
      case 'or':
        return [k.left, k.right].forEach(visit);
      case 'not':
        return visit(k.key);
      case 'header':
        if (inSearchText(k.field, k.value)) needs.searchText = true;
        else needs.header = true;
        return;
      case 'date':
        if (k.sent) needs.searchText = true;
        return;
      case 'text':
        needs.header = true;
        needs.body = true;
        return;
      case 'body':
        needs.body = true;
        return;
    }
  };
  visit(key);
  return needs;
}

/**
 * Does the message match, as far as `m` tells? null when a key needs what
 * `m` does not hold yet (the cached text or the header; BODY and TEXT
 * always: see matchesWithText).
 */
export function decide(key: SearchKey, m: SearchCandidate, context: SearchContext): boolean | null {
  switch (key.kind) {
    case 'all':
      return true;
    case 'and': {
      let result: boolean | null = true;
      for (const k of key.keys) {
        const one = decide(k, m, context);
        if (one === false) return false;
        if (one === null) result = null;
      }
      return result;
    }
    case 'or': {
      const left = decide(key.left, m, context);
      if (left === true) return true;
      const right = decide(key.right, m, context);
      return right === true ? true : left === false && right === false ? false : null;
    }
    case 'not': {
      const inner = decide(key.key, m, context);
      return inner === null ? null : !inner;
    }
    case 'flag':
      return m.flags.has(key.flag.toLowerCase()) === key.set;
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
      return key.modseq <= BigInt(Number.MAX_SAFE_INTEGER) && m.modseq >= Number(key.modseq);
    case 'date': {
      let day: number | null;
      if (!key.sent) day = Math.floor((m.internalDate * 1000) / DAY_MS); // RFC 3501 6.4.4: the date, not the time (ours are UTC)
      else if (m.searchText !== null) day = sentDay(m.searchText);
      else if (m.fields !== null) day = dayOf(m.fields);
      else return null;
      if (day === null) return false; // no Date field, or none that is a date
      // Days since 1970-01-01, as messageDay counts them.
      const wanted = Math.floor(key.day.getTime() / DAY_MS);
      return key.relation === 'before' ? day < wanted : key.relation === 'on' ? day === wanted : day >= wanted;
    }
    case 'header':
      if (m.searchText !== null && inSearchText(key.field, key.value)) return searchTextMatches(m.searchText, key.field, key.value);
      return m.fields === null ? null : headerMatches(m.fields, key.field, key.value);
    case 'body':
    case 'text':
      return null;
  }
}

/**
 * Does the message match? `m` holds its header fields; BODY and TEXT read
 * its text from `content()`, the whole message (once, and only if a key
 * still needs it).
 */
export async function matchesWithText(key: SearchKey, m: SearchCandidate, context: SearchContext, content: () => AsyncIterable<Buffer> | Iterable<Buffer>): Promise<boolean> {
  switch (key.kind) {
    case 'and':
      for (const k of key.keys) if (!(await matchesWithText(k, m, context, content))) return false;
      return true;
    case 'or':
      return (await matchesWithText(key.left, m, context, content)) || matchesWithText(key.right, m, context, content);
    case 'not':
      return !(await matchesWithText(key.key, m, context, content));
    case 'body':
      return textContains(messageText(content()), key.value);
    case 'text':
      return textContains(allText(m.fields ?? [], content), key.value);
    default:
      return decide(key, m, context) === true;
  }
}

/** The header fields of a header section (through its empty line, or without one), as search reads them. */
export function fieldsOf(header: Buffer): HeaderField[] {
  return splitHeaderFields(header.subarray(0, fieldsLength(header)));
}

// The bytes of header fields: up to the empty line that ends them (mime/header.ts HeaderEndFinder).
function fieldsLength(header: Buffer): number {
  for (let at = 0; ; ) {
    const lf = header.indexOf(0x0a, at);
    if (lf < 0) return header.length;
    if (lf === at) return at; // an empty line
    if (lf === at + 1 && header[at] === 0x0d) return at; // a line of only CR
    at = lf + 1;
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

/** SENT*: the day of the first Date field, in its own zone (RFC 3501 6.4.4), or null. */
function dayOf(fields: readonly HeaderField[]): number | null {
  const field = fields.find((f) => f.name.toLowerCase() === 'date');
  const date = parseMessageDate(field ? fieldValue(field) : '');
  return date ? messageDay(date) : null;
}

/**
 * HEADER name value (and FROM, TO, CC, BCC, SUBJECT): any field of that name
 * whose decoded value contains the string; an empty string matches any
 * message that has the field (RFC 3501 6.4.4). search-text.ts keeps the
 * same text for the five usual fields.
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

/** TEXT: the header and the body. */
async function* allText(fields: readonly HeaderField[], content: () => AsyncIterable<Buffer> | Iterable<Buffer>): AsyncIterable<string> {
  yield headerText(Buffer.concat(fields.map((f) => f.raw)));
  yield '\n';
  yield* messageText(content());
}
