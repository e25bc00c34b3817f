// What a FETCH asks for (RFC 3501 6.4.5 and 9 `fetch-att`; RFC 3516 BINARY;
// RFC 7162 MODSEQ and CHANGEDSINCE): the items parsed into data the fetch
// code can act on, before any message is read.
//
//     FETCH 1:* (UID FLAGS RFC822.SIZE)
//     FETCH 7 (BODY.PEEK[HEADER.FIELDS (From Subject)]<0.2048> INTERNALDATE)
//     FETCH 2:4 ALL            (a macro: FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)

import { ParseError } from './parser.ts';
import type { ArgReader } from './parser.ts';

/** A body section (RFC 3501 6.4.5): part numbers, then what of that part. */
export interface Section {
  /** `1.2` is [1, 2]; [] is the whole message. */
  part: number[];
  text: '' | 'HEADER' | 'TEXT' | 'MIME' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
  /** The field names of HEADER.FIELDS(.NOT), as the client wrote them. */
  fields: string[];
}

export type FetchItem =
  | { kind: 'uid' | 'flags' | 'internaldate' | 'size' | 'envelope' | 'bodystructure' | 'body' | 'modseq' }
  /** RFC822 (= BODY[]), RFC822.HEADER (= BODY.PEEK[HEADER]), RFC822.TEXT (= BODY[TEXT]), with their own names in the response. */
  | { kind: 'rfc822'; which: '' | 'HEADER' | 'TEXT' }
  /** BODY[...] / BODY.PEEK[...] / BINARY[...] / BINARY.PEEK[...], maybe with a partial <start.length>. */
  | { kind: 'section'; binary: boolean; peek: boolean; section: Section; partial: { start: number; length: number } | null }
  /** BINARY.SIZE[part] (RFC 3516). */
  | { kind: 'binary-size'; section: Section };

/** FETCH modifiers (RFC 7162 3.1.4): CHANGEDSINCE and VANISHED. */
export interface FetchModifiers {
  changedSince: bigint | null;
  vanished: boolean;
}

const SIMPLE: Record<string, FetchItem> = {
  UID: { kind: 'uid' },
  FLAGS: { kind: 'flags' },
  INTERNALDATE: { kind: 'internaldate' },
  'RFC822.SIZE': { kind: 'size' },
  ENVELOPE: { kind: 'envelope' },
  BODYSTRUCTURE: { kind: 'bodystructure' },
  BODY: { kind: 'body' },
  MODSEQ: { kind: 'modseq' },
  RFC822: { kind: 'rfc822', which: '' },
  'RFC822.HEADER': { kind: 'rfc822', which: 'HEADER' },
  'RFC822.TEXT': { kind: 'rfc822', which: 'TEXT' },
};

/** RFC 3501 6.4.5: the macros, which may only stand alone. */
const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};

/** The items after the sequence set: one item, a macro, or a parenthesised list. */
export function readFetchItems(r: ArgReader): FetchItem[] {
  if (r.peek() === '(') return r.list((x) => fetchItem(x));
  const start = r.rest();
  const macro = MACROS[/^[A-Za-z]+/.exec(start)?.[0].toUpperCase() ?? ''];
  if (macro && !/^[A-Za-z]+[.[]/.test(start)) {
    r.atom();
    return macro.map((name) => SIMPLE[name]);
  }
  return [fetchItem(r)];
}

/** One fetch-att. */
export function fetchItem(r: ArgReader): FetchItem {
  const name = readItemName(r);
  const simple = SIMPLE[name];
  if (simple && r.peek() !== '[') return simple;
  const sectioned = /^(BODY|BINARY)(\.PEEK)?$/.exec(name);
  if (sectioned && r.peek() === '[') {
    const binary = sectioned[1] === 'BINARY';
    const section = readSection(r, binary);
    return { kind: 'section', binary, peek: sectioned[2] !== undefined, section, partial: readPartial(r) };
  }
  if (name === 'BINARY.SIZE' && r.peek() === '[') return { kind: 'binary-size', section: readSection(r, true) };
  throw new ParseError(`unknown FETCH item ${name}`);
}

/** Letters, digits and dots up to `[`, a space or `)`. */
function readItemName(r: ArgReader): string {
  return r.token(/[A-Za-z0-9.]/, 'a FETCH item').toUpperCase();
}

/** `[` section `]` (RFC 3501 9 `section`); BINARY takes part numbers only (RFC 3516 4.2). */
function readSection(r: ArgReader, binary: boolean): Section {
  r.expect('[');
  const section: Section = { part: [], text: '', fields: [] };
  while (/\d/.test(r.peek())) {
    section.part.push(r.nzNumber());
    if (!r.accept('.')) break;
  }
  if (r.peek() !== ']') {
    if (binary) throw new ParseError('BINARY takes part numbers only');
    const text = readItemName(r);
    if (text === 'MIME' && section.part.length === 0) throw new ParseError('MIME needs a part number');
    if (!['HEADER', 'TEXT', 'MIME', 'HEADER.FIELDS', 'HEADER.FIELDS.NOT'].includes(text)) throw new ParseError(`unknown section ${text}`);
    section.text = text as Section['text'];
    if (text.startsWith('HEADER.FIELDS')) section.fields = r.sp().list((x) => x.astring());
    if (section.text.startsWith('HEADER.FIELDS') && section.fields.length === 0) throw new ParseError('HEADER.FIELDS needs field names');
  }
  r.expect(']');
  return section;
}

/** `<start.length>` (RFC 3501 6.4.5); length must be above zero. */
function readPartial(r: ArgReader): { start: number; length: number } | null {
  if (!r.accept('<')) return null;
  const start = r.number();
  r.expect('.');
  const length = r.nzNumber();
  r.expect('>');
  return { start, length };
}

/** The optional modifier list after the items (RFC 7162 3.1.4, 3.2.6). */
export function readFetchModifiers(r: ArgReader): FetchModifiers {
  const modifiers: FetchModifiers = { changedSince: null, vanished: false };
  if (r.atEnd()) return modifiers;
  r.sp().list((x) => {
    const name = x.keyword();
    if (name === 'CHANGEDSINCE') modifiers.changedSince = x.sp().bigNumber();
    else if (name === 'VANISHED') modifiers.vanished = true;
    else throw new ParseError(`unknown FETCH modifier ${name}`);
  });
  return modifiers;
}

/** How a section is named in the response: `BODY[1.2.HEADER.FIELDS (FROM)]<0>` (RFC 3501 7.4.2). */
export function sectionLabel(item: Extract<FetchItem, { kind: 'section' }>): string {
  const { part, text, fields } = item.section;
  const spec = [part.join('.'), text].filter((piece) => piece !== '').join('.');
  const list = fields.length > 0 ? ` (${fields.map((f) => f.toUpperCase()).join(' ')})` : '';
  const origin = item.partial ? `<${item.partial.start}>` : '';
  return `${item.binary ? 'BINARY' : 'BODY'}[${spec}${list}]${origin}`;
}
