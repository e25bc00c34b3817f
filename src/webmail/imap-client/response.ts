// One server response, read (RFC 3501 7: "Server Responses") from the lines
// and literals the shared command reader framed (wire/command-reader.ts):
//
//   + Ready for literal data                        continuation (7.5)
//   A1 OK [READ-WRITE] SELECT completed             tagged status (7.1)
//   * OK [UIDVALIDITY 3857529045] UIDs valid        untagged status (7.1)
//   * 18 EXISTS                                     message counts (7.3, 7.4.1)
//   * LIST (\HasNoChildren) "/" Sent                mailbox data (7.2)
//   * 12 FETCH (UID 7 FLAGS (\Seen) BODY[1] {42}    message data (7.4.2)
//
// Each kind becomes a small typed object; what the client did not ask for
// (and so cannot use) becomes `other`, never an error.

import { ArgReader, ParseError } from '../../imap/parser.ts';
import type { RawCommand } from '../../imap/parser.ts';
import { astringValue, nstringBytes, readValue } from './values.ts';
import type { ImapValue } from './values.ts';

export type StatusWord = 'OK' | 'NO' | 'BAD';

/** A FETCH item's value: a body section as bytes, anything else as a value. */
export type FetchValue = ImapValue | Buffer;

export type Untagged =
  | { type: 'status'; status: StatusWord | 'BYE' | 'PREAUTH'; code: string | null; text: string }
  | { type: 'EXISTS' | 'RECENT' | 'EXPUNGE'; number: number }
  | { type: 'FETCH'; seq: number; items: Map<string, FetchValue> }
  | { type: 'LIST' | 'LSUB'; attributes: string[]; delimiter: string | null; name: string }
  | { type: 'STATUS'; mailbox: string; values: Map<string, number> }
  | { type: 'SEARCH'; numbers: number[] }
  | { type: 'CAPABILITY'; capabilities: string[] }
  | { type: 'FLAGS'; flags: string[] }
  | { type: 'other'; name: string };

export type Response =
  | { kind: 'continuation'; text: string }
  | { kind: 'tagged'; tag: string; status: StatusWord; code: string | null; text: string }
  | { kind: 'untagged'; data: Untagged };

export function parseResponse(raw: RawCommand): Response {
  const r = new ArgReader(raw);
  if (r.accept('+')) return { kind: 'continuation', text: r.rest().trimStart() };
  if (r.accept('*')) return { kind: 'untagged', data: untagged(r.sp()) };
  const tag = r.tag();
  const status = r.sp().keyword();
  if (status !== 'OK' && status !== 'NO' && status !== 'BAD') throw new ParseError(`unexpected tagged status ${status}`);
  return { kind: 'tagged', tag, status, ...codeAndText(r) };
}

/** `[CODE args] text` after a status word (RFC 3501 7.1 resp-text). */
function codeAndText(r: ArgReader): { code: string | null; text: string } {
  const rest = r.accept(' ') ? r.rest() : '';
  if (!rest.startsWith('[')) return { code: null, text: rest };
  const end = rest.indexOf(']');
  if (end < 0) return { code: null, text: rest };
  return { code: rest.slice(1, end), text: rest.slice(end + 1).trimStart() };
}

function untagged(r: ArgReader): Untagged {
  if (/^\d/.test(r.peek())) {
    const number = r.number();
    const name = r.sp().keyword();
    if (name === 'FETCH') return { type: 'FETCH', seq: number, items: fetchItems(r.sp()) };
    if (name === 'EXISTS' || name === 'RECENT' || name === 'EXPUNGE') return { type: name, number };
    return { type: 'other', name };
  }
  const name = r.keyword();
  switch (name) {
    case 'OK':
    case 'NO':
    case 'BAD':
    case 'BYE':
    case 'PREAUTH':
      return { type: 'status', status: name, ...codeAndText(r) };
    case 'CAPABILITY':
      return { type: 'CAPABILITY', capabilities: r.rest().trim().split(/\s+/).filter(Boolean).map((c) => c.toUpperCase()) };
    case 'SEARCH':
      return { type: 'SEARCH', numbers: r.rest().trim().split(/\s+/).filter((n) => /^\d+$/.test(n)).map(Number) };
    case 'FLAGS':
      return { type: 'FLAGS', flags: r.sp().flagList() };
    case 'LIST':
    case 'LSUB': {
      // RFC 3501 7.2.2: (attributes) delimiter name
      const attributes = r.sp().flagList();
      r.sp();
      const delimiter = r.peek() === '"' ? r.quoted() : (r.keyword(), null);
      return { type: name, attributes, delimiter, name: astringValue(r.sp()) };
    }
    case 'STATUS': {
      // RFC 3501 7.2.4: name (MESSAGES 3 UNSEEN 1 ...)
      const mailbox = astringValue(r.sp());
      const pairs = r.sp().list((x) => readValue(x));
      const values = new Map<string, number>();
      for (let i = 0; i + 1 < pairs.length; i += 2) values.set(String(pairs[i]).toUpperCase(), Number(pairs[i + 1]));
      return { type: 'STATUS', mailbox, values };
    }
    default:
      return { type: 'other', name };
  }
}

/**
 * `(UID 7 FLAGS (\Seen) BODY[1]<0> {42}...)`: item names (upper case, with
 * their section and origin as the server wrote them) to values.
 */
function fetchItems(r: ArgReader): Map<string, FetchValue> {
  const items = new Map<string, FetchValue>();
  r.expect('(');
  if (r.accept(')')) return items;
  for (;;) {
    let name = r.token(/[A-Za-z0-9.]/, 'a fetch item').toUpperCase();
    if (r.accept('[')) {
      const section = r.peek() === ']' ? '' : r.token(/[^\]]/, 'a section');
      r.expect(']');
      name += `[${section.toUpperCase()}]`;
      if (r.accept('<')) {
        name += `<${r.number()}>`;
        r.expect('>');
      }
    }
    r.sp();
    const isBody = name.includes('[') || name === 'RFC822' || name === 'RFC822.HEADER' || name === 'RFC822.TEXT';
    items.set(name, isBody ? nstringBytes(r) : readValue(r));
    if (r.accept(')')) return items;
    r.sp();
  }
}
