// Address lists (RFC 5322 3.4): what From, To, Cc... hold, in the shape
// IMAP's ENVELOPE wants (RFC 3501 7.4.2): for each mailbox its display
// name, its source route (adl, obsolete since RFC 2822 but still parsed,
// RFC 5322 4.4), its local part and its domain; and groups
// (`Friends: a@x, b@y;`), which ENVELOPE writes as a start marker with the
// group name in the mailbox slot and an end marker of four NILs.
//
//   "Joe Q. Public" <john.q.public@example.com>, Mary <@route:mary@x.net>,
//   undisclosed-recipients:;, bob@example.org (Bob)
//
// Values are byte strings (header.ts), unquoted and unescaped but not
// decoded: IMAP sends names raw, as Dovecot does; `addressText` decodes
// them (RFC 2047, RFC 6532) for SEARCH and for people.
//
// Tolerance, for mail as it is: a comment after an address stands in for a
// missing display name (Dovecot does this too); `Joe joe@x.org` without angle brackets
// reads as name "Joe"; a missing ">" is forgiven; an address with no "@"
// gets the host MISSING_DOMAIN and a missing local part MISSING_MAILBOX,
// the placeholders Dovecot sends; empty list elements are skipped (RFC
// 5322 4.4 obs-addr-list); anything else unreadable is dropped up to the
// next comma. Nothing throws.

import { decodeHeaderText } from './encoded-words.ts';

export interface MailAddress {
  name: string | null;
  /** Source route, `@a.example,@b.example`, or null. */
  adl: string | null;
  mailbox: string;
  host: string;
}

export interface AddressGroup {
  group: string;
  members: MailAddress[];
}

export type AddressListItem = MailAddress | AddressGroup;

export const MISSING_MAILBOX = 'MISSING_MAILBOX';
export const MISSING_DOMAIN = 'MISSING_DOMAIN';

type TokenKind = 'atom' | 'quoted' | 'literal' | 'special';
interface Token {
  kind: TokenKind;
  text: string;
  /** White space or a comment came before it. */
  spaced: boolean;
  /** The comment just after this token, if any (for the name fallback). */
  comment: string | null;
}

const SPECIALS = '()<>[]:;@\\,."';
// An atom runs to the next special or white space (RFC 5322 3.2.3; 8-bit bytes are atext too, RFC 6532).
const ATOM = /[^()<>[\]:;@\\,."\s]+/y;

/** Cuts the value into atoms, quoted strings, domain literals and specials; comments are kept aside. */
function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let spaced = false;
  const push = (kind: TokenKind, value: string) => {
    tokens.push({ kind, text: value, spaced, comment: null });
    spaced = false;
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      spaced = true;
      i++;
    } else if (c === '(') {
      // RFC 5322 3.2.2: comments nest, and a backslash quotes one character.
      let depth = 0;
      let body = '';
      for (; i < text.length; i++) {
        const d = text[i];
        if (d === '\\' && i + 1 < text.length) body += text[++i];
        else if (d === '(' && depth++ === 0) continue;
        else if (d === ')' && --depth === 0) break;
        else body += d;
      }
      i++;
      // A comment belongs to the token it follows (`joe@x.org (Joe)`); one
      // that starts a list element is dropped, as Dovecot drops it.
      const last = tokens[tokens.length - 1];
      if (last && !(last.kind === 'special' && ',;:'.includes(last.text))) last.comment = body.trim();
      spaced = true;
    } else if (c === '"') {
      let value = '';
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
      }
      i++; // the closing quote, if there was one
      push('quoted', value);
    } else if (c === '[') {
      const end = text.indexOf(']', i);
      const stop = end < 0 ? text.length : end + 1;
      push('literal', text.slice(i, stop));
      i = stop;
    } else if (SPECIALS.includes(c)) {
      push('special', c);
      i++;
    } else {
      ATOM.lastIndex = i;
      ATOM.test(text);
      push('atom', text.slice(i, ATOM.lastIndex));
      i = ATOM.lastIndex;
    }
  }
  return tokens;
}

const isSpecial = (t: Token | undefined, c: string) => t !== undefined && t.kind === 'special' && t.text === c;

/** A display name: words joined by single spaces (RFC 5322 3.2.5 phrase, with obs-phrase's "."). */
function phrase(tokens: Token[]): string | null {
  let out = '';
  for (const t of tokens) {
    if (out !== '' && t.spaced) out += ' ';
    out += t.text;
  }
  return out === '' ? null : out;
}

class AddressParser {
  readonly tokens: Token[];
  at = 0;
  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  list(): AddressListItem[] {
    const items: AddressListItem[] = [];
    while (this.at < this.tokens.length) {
      if (isSpecial(this.tokens[this.at], ',')) {
        this.at++; // an empty element (RFC 5322 4.4)
        continue;
      }
      // Look ahead: a ":" before any "<", "@" or "," makes this a group.
      let k = this.at;
      while (k < this.tokens.length && !['<', '@', ',', ':', ';'].some((c) => isSpecial(this.tokens[k], c))) k++;
      if (isSpecial(this.tokens[k], ':')) {
        const group = phrase(this.tokens.slice(this.at, k)) ?? '';
        this.at = k + 1;
        const members: MailAddress[] = [];
        while (this.at < this.tokens.length && !isSpecial(this.tokens[this.at], ';')) {
          if (isSpecial(this.tokens[this.at], ',')) this.at++;
          else {
            const address = this.mailbox([',', ';']);
            if (address) members.push(address);
          }
        }
        this.at++; // the ";"
        items.push({ group, members });
      } else {
        const address = this.mailbox([',']);
        if (address) items.push(address);
      }
    }
    return items;
  }

  /** One mailbox, up to (not including) one of `stops` at the top level. */
  mailbox(stops: string[]): MailAddress | null {
    const start = this.at;
    let end = start;
    while (end < this.tokens.length && !stops.some((c) => isSpecial(this.tokens[end], c))) {
      if (isSpecial(this.tokens[end], '<')) {
        // Commas inside angle brackets belong to a route: skip to ">".
        while (end < this.tokens.length && !isSpecial(this.tokens[end], '>')) end++;
      }
      end++;
    }
    end = Math.min(end, this.tokens.length);
    const tokens = this.tokens.slice(start, end);
    this.at = end;
    if (tokens.length === 0) return null;
    const lastComment = [...tokens].reverse().find((t) => t.comment !== null)?.comment ?? null;
    const open = tokens.findIndex((t) => isSpecial(t, '<'));
    if (open >= 0) {
      // name-addr: [display-name] "<" [route ":"] addr-spec ">" (RFC 5322 3.4, 4.4 obs-angle-addr)
      let close = tokens.findIndex((t, k) => k > open && isSpecial(t, '>'));
      if (close < 0) close = tokens.length;
      let inner = tokens.slice(open + 1, close);
      let adl: string | null = null;
      const colon = inner.findIndex((t) => isSpecial(t, ':'));
      if (inner.length > 0 && isSpecial(inner[0], '@') && colon > 0) {
        adl = inner.slice(0, colon).map((t) => t.text).join('');
        inner = inner.slice(colon + 1);
      }
      const spec = addrSpec(inner);
      const name = phrase(tokens.slice(0, open)) ?? lastComment;
      return { name, adl, ...spec };
    }
    // A bare addr-spec, maybe with words before it that lost their angle brackets.
    const at = tokens.findIndex((t) => isSpecial(t, '@'));
    let localStart = at < 0 ? 0 : at;
    while (localStart > 0) {
      const t = tokens[--localStart];
      // White space with no "." on either side separates the local part from a name before it.
      if (t.spaced && localStart > 0 && !isSpecial(t, '.') && !isSpecial(tokens[localStart - 1], '.')) break;
    }
    const words = phrase(tokens.slice(0, localStart));
    const spec = addrSpec(tokens.slice(localStart));
    return { name: words ?? lastComment, adl: null, ...spec };
  }
}

/** local-part "@" domain, from tokens; missing pieces get Dovecot's placeholders. */
function addrSpec(tokens: Token[]): { mailbox: string; host: string } {
  const at = tokens.findIndex((t) => isSpecial(t, '@'));
  const localTokens = at < 0 ? tokens : tokens.slice(0, at);
  // The domain ends at the next "@" or anything that cannot be in it.
  const domainTokens: Token[] = [];
  if (at >= 0) {
    for (const t of tokens.slice(at + 1)) {
      if ((t.kind === 'special' && t.text !== '.') || (domainTokens.length > 0 && t.spaced)) break;
      domainTokens.push(t);
    }
  }
  const mailbox = localTokens.map((t) => t.text).join('');
  const host = domainTokens.map((t) => t.text).join('');
  return { mailbox: mailbox === '' ? MISSING_MAILBOX : mailbox, host: host === '' ? MISSING_DOMAIN : host };
}

/** Parses an address-list header value (a byte string). */
export function parseAddressList(value: string | null): AddressListItem[] {
  if (value === null) return [];
  return new AddressParser(tokenize(value)).list();
}

/** The mailboxes of a list, groups flattened. */
export function listMailboxes(items: readonly AddressListItem[]): MailAddress[] {
  return items.flatMap((item) => ('group' in item ? item.members : [item]));
}

/**
 * The list as text for people and for SEARCH FROM/TO/CC/BCC: decoded names
 * and `mailbox@host`, e.g. `Café Joe <joe@x.org>, bob@y.org`.
 */
export function addressText(items: readonly AddressListItem[]): string {
  const one = (a: MailAddress) => {
    const spec = `${a.mailbox}@${a.host}`;
    return a.name === null ? spec : `${decodeHeaderText(a.name)} <${spec}>`;
  };
  return items
    .map((item) => ('group' in item ? `${decodeHeaderText(item.group)}: ${item.members.map(one).join(', ')};` : one(item)))
    .join(', ');
}
