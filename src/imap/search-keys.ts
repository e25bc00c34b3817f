// What a SEARCH asks for (RFC 3501 6.4.4 and 9 `search-key`; RFC 4731
// ESEARCH return options; RFC 5182 `$`; RFC 7162 MODSEQ), parsed into a
// tree the search code evaluates message by message:
//
//     SEARCH UNSEEN SINCE 1-Jan-2026 OR FROM ana TO ana
//       -> and(flag \Seen unset, date internal since, or(header from, header to))
//
// Keys side by side all have to match (AND); OR takes the next two keys,
// NOT the next one, parentheses group.

import { ParseError } from './parser.ts';
import type { ArgReader, SeqRange } from './parser.ts';

export type SearchKey =
  | { kind: 'all' }
  | { kind: 'and'; keys: SearchKey[] }
  | { kind: 'or'; left: SearchKey; right: SearchKey }
  | { kind: 'not'; key: SearchKey }
  /** A system flag or keyword: set or not set. \Recent is its own kind (not stored). */
  | { kind: 'flag'; flag: string; set: boolean }
  | { kind: 'recent'; set: boolean }
  | { kind: 'sequence'; set: SeqRange[] }
  | { kind: 'uid'; set: SeqRange[] }
  /** `$`: the result SAVEd by an earlier SEARCH (RFC 5182). */
  | { kind: 'saved' }
  | { kind: 'size'; larger: boolean; octets: number }
  /** Internal date (BEFORE, ON, SINCE) or the Date: header (SENTBEFORE, ...): days, not times (RFC 3501 6.4.4). */
  | { kind: 'date'; sent: boolean; relation: 'before' | 'on' | 'since'; day: Date }
  /** A header field containing a string (FROM, TO, CC, BCC, SUBJECT, HEADER name value). */
  | { kind: 'header'; field: string; value: string }
  | { kind: 'body' | 'text'; value: string }
  | { kind: 'modseq'; modseq: bigint };

/** What comes before the keys (RFC 4731 RETURN, RFC 3501 CHARSET). */
export interface SearchProgram {
  /** ESEARCH result options, or null for a classic `* SEARCH` answer. */
  returnOptions: string[] | null;
  charset: string | null;
  key: SearchKey;
}

const FLAG_KEYS: Record<string, [string, boolean]> = {
  ANSWERED: ['\\Answered', true],
  DELETED: ['\\Deleted', true],
  DRAFT: ['\\Draft', true],
  FLAGGED: ['\\Flagged', true],
  SEEN: ['\\Seen', true],
  UNANSWERED: ['\\Answered', false],
  UNDELETED: ['\\Deleted', false],
  UNDRAFT: ['\\Draft', false],
  UNFLAGGED: ['\\Flagged', false],
  UNSEEN: ['\\Seen', false],
};

const DATE_KEYS: Record<string, [boolean, 'before' | 'on' | 'since']> = {
  BEFORE: [false, 'before'],
  ON: [false, 'on'],
  SINCE: [false, 'since'],
  SENTBEFORE: [true, 'before'],
  SENTON: [true, 'on'],
  SENTSINCE: [true, 'since'],
};

const RETURN_OPTIONS = ['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE'];

/** Everything after `SEARCH `: [RETURN (...)] [CHARSET x] key *(SP key). */
export function readSearchProgram(r: ArgReader): SearchProgram {
  let returnOptions: string[] | null = null;
  let charset: string | null = null;
  if (/^RETURN \(/i.test(r.rest())) {
    r.keyword();
    returnOptions = r.sp().list((x) => {
      const option = x.keyword();
      if (!RETURN_OPTIONS.includes(option)) throw new ParseError(`unknown RETURN option ${option}`);
      return option;
    });
    r.sp();
  }
  if (/^CHARSET /i.test(r.rest())) {
    r.keyword();
    charset = r.sp().astring();
    r.sp();
  }
  const keys = [readKey(r, 0)];
  while (!r.atEnd()) keys.push(readKey(r.sp(), 0));
  return { returnOptions, charset, key: keys.length === 1 ? keys[0] : { kind: 'and', keys } };
}

function readKey(r: ArgReader, depth: number): SearchKey {
  if (depth > 16) throw new ParseError('search too deeply nested');
  if (r.peek() === '(') {
    const keys = r.list((x) => readKey(x, depth + 1), depth + 1);
    if (keys.length === 0) throw new ParseError('empty search group');
    return keys.length === 1 ? keys[0] : { kind: 'and', keys };
  }
  if (r.peek() === '$') {
    r.expect('$');
    return { kind: 'saved' };
  }
  if (/[\d*]/.test(r.peek())) return { kind: 'sequence', set: r.sequenceSet() };
  const name = r.keyword();
  if (FLAG_KEYS[name]) return { kind: 'flag', flag: FLAG_KEYS[name][0], set: FLAG_KEYS[name][1] };
  if (DATE_KEYS[name]) return { kind: 'date', sent: DATE_KEYS[name][0], relation: DATE_KEYS[name][1], day: r.sp().date() };
  switch (name) {
    case 'ALL':
      return { kind: 'all' };
    case 'NEW': // RFC 3501 6.4.4: RECENT and UNSEEN
      return { kind: 'and', keys: [{ kind: 'recent', set: true }, { kind: 'flag', flag: '\\Seen', set: false }] };
    case 'OLD':
      return { kind: 'recent', set: false };
    case 'RECENT':
      return { kind: 'recent', set: true };
    case 'KEYWORD':
    case 'UNKEYWORD':
      return { kind: 'flag', flag: r.sp().atom(), set: name === 'KEYWORD' };
    case 'LARGER':
    case 'SMALLER':
      return { kind: 'size', larger: name === 'LARGER', octets: r.sp().number() };
    case 'FROM':
    case 'TO':
    case 'CC':
    case 'BCC':
    case 'SUBJECT':
      return { kind: 'header', field: name.toLowerCase(), value: r.sp().astring() };
    case 'HEADER': {
      const field = r.sp().astring().toLowerCase();
      return { kind: 'header', field, value: r.sp().astring() };
    }
    case 'BODY':
    case 'TEXT':
      return { kind: name === 'BODY' ? 'body' : 'text', value: r.sp().astring() };
    case 'UID':
      return { kind: 'uid', set: readUidSet(r.sp()) };
    case 'NOT':
      return { kind: 'not', key: readKey(r.sp(), depth + 1) };
    case 'OR': {
      const left = readKey(r.sp(), depth + 1);
      return { kind: 'or', left, right: readKey(r.sp(), depth + 1) };
    }
    case 'MODSEQ': {
      // RFC 7162 3.1.5: an optional entry name and type, then the value.
      r.sp();
      if (r.peek() === '"') {
        r.quoted();
        r.sp().keyword(); // priv / shared / all
        r.sp();
      }
      return { kind: 'modseq', modseq: r.bigNumber() };
    }
    default:
      throw new ParseError(`unknown search key ${name}`);
  }
}

/** UID's argument: a sequence set, or `$` (RFC 5182). */
function readUidSet(r: ArgReader): SeqRange[] {
  return r.sequenceSet();
}
