// Content-Type and Content-Disposition: a value and its parameters.
//
//   Content-Type: text/plain; charset="utf-8" (a comment)
//   Content-Disposition: attachment; filename*0*=utf-8''%C3%A9t%C3%A9;
//                        filename*1=.pdf
//
// RFC 2045 5.1: type "/" subtype, then `; attribute=value` where value is a
// token or a quoted-string, with comments allowed between. RFC 2183 2: the
// same shape for dispositions. RFC 2231 3-4: a long value split into
// `name*0`, `name*1`...; a trailing `*` marks a segment as
// charset'language'%XX-encoded.
//
// What IMAP sends is the parameters as Dovecot sends them: names and values
// as written (byte strings, header.ts), comments and quotes removed,
// RFC 2231 continuations merged into one parameter, still encoded, named
// `name*` when any segment was encoded. `paramText` gives the decoded text
// for people (the webmail's attachment name).
//
// Real mail breaks all of this: unquoted values with spaces, a missing
// closing quote, missing semicolons, encoded-words inside quotes (RFC 2047
// says never, mailers do it anyway). The parser takes what it can and never
// throws.

import { decodeCharset } from './charset.ts';
import { decodeHeaderText } from './encoded-words.ts';

/** A parameter as IMAP sends it: byte strings, continuations merged. */
export interface MimeParam {
  name: string;
  value: string;
}

export interface ContentType {
  /** As written (IMAP sends it so); compare with toLowerCase(). */
  type: string;
  subtype: string;
  params: MimeParam[];
}

export interface Disposition {
  type: string;
  params: MimeParam[];
}

// RFC 2045 5.1 tspecials, plus white space and controls: what ends a token.
// Bytes >= 0x80 are allowed in tokens, for 8-bit headers.
function isTokenChar(code: number): boolean {
  return code > 0x20 && code !== 0x7f && !'()<>@,;:\\"/[]?='.includes(String.fromCharCode(code));
}

/** A small cursor over a header value. */
class Scanner {
  readonly text: string;
  at = 0;
  constructor(text: string) {
    this.text = text;
  }
  get done(): boolean {
    return this.at >= this.text.length;
  }
  peek(): string {
    return this.text[this.at] ?? '';
  }
  /** Skips white space and (nested) comments, RFC 5322 3.2.2 CFWS. */
  skipSpace(): void {
    while (!this.done) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r' || c === '\n') this.at++;
      else if (c === '(') this.skipComment();
      else break;
    }
  }
  skipComment(): void {
    let depth = 0;
    while (!this.done) {
      const c = this.text[this.at++];
      if (c === '\\') this.at++;
      else if (c === '(') depth++;
      else if (c === ')' && --depth === 0) return;
    }
  }
  token(): string {
    const start = this.at;
    while (!this.done && isTokenChar(this.text.charCodeAt(this.at))) this.at++;
    return this.text.slice(start, this.at);
  }
  /** A quoted-string without its quotes, backslash escapes undone; a missing end quote ends at the end. */
  quoted(): string {
    let value = '';
    this.at++; // the opening quote
    while (!this.done) {
      const c = this.text[this.at++];
      if (c === '"') return value;
      if (c === '\\' && !this.done) value += this.text[this.at++];
      else value += c;
    }
    return value;
  }
  skipTo(char: string): void {
    while (!this.done && this.peek() !== char) {
      if (this.peek() === '"') this.quoted();
      else if (this.peek() === '(') this.skipComment();
      else this.at++;
    }
  }
}

/** Reads `; name=value` pairs until the end; raw, not merged. */
function readParams(s: Scanner): MimeParam[] {
  const params: MimeParam[] = [];
  while (!s.done) {
    s.skipSpace();
    if (s.peek() === ';') {
      s.at++;
      continue;
    }
    const name = s.token();
    s.skipSpace();
    if (name === '' || s.peek() !== '=') {
      s.at++; // garbage: step over it, the next ";" may start a good parameter
      s.skipTo(';');
      continue;
    }
    s.at++;
    s.skipSpace();
    let value: string;
    if (s.peek() === '"') {
      value = s.quoted();
      s.skipTo(';'); // anything after the closing quote is noise
    } else {
      // A token; if text other than a comment follows before the ";", the
      // sender forgot the quotes ("name=my file.pdf"): take it all.
      const start = s.at;
      value = s.token();
      const afterToken = s.at;
      s.skipSpace();
      if (!s.done && s.peek() !== ';') {
        s.skipTo(';');
        value = s.text.slice(start, s.at).replace(/\s*\([^()]*\)\s*$/, '').trim(); // a trailing comment goes
      } else if (afterToken === start) value = '';
    }
    params.push({ name, value });
  }
  return mergeContinuations(params);
}

// RFC 2231 7: attribute-char; anything else is %XX-encoded in an extended value.
function escapeExtended(value: string): string {
  return value.replace(/[^!#$&+\-.0-9A-Z^_`a-z{|}~]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

/**
 * RFC 2231 3: `name*0`, `name*1*`... become one parameter, in order of
 * their numbers. As Dovecot does, the plain parameters come first, in the
 * order written, then the RFC 2231 ones (`name*` too), sorted by name.
 */
function mergeContinuations(params: MimeParam[]): MimeParam[] {
  const out: MimeParam[] = [];
  const groups = new Map<string, { base: string; segments: { n: number; extended: boolean; value: string }[] }>();
  for (const p of params) {
    const m = /^(.+?)\*(?:(\d{1,3})(\*?))?$/.exec(p.name);
    if (!m) {
      out.push(p);
      continue;
    }
    const key = m[1].toLowerCase();
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { base: m[1], segments: [] }));
    // `name*` alone is one encoded segment.
    group.segments.push({ n: m[2] === undefined ? 0 : Number(m[2]), extended: m[2] === undefined || m[3] === '*', value: p.value });
  }
  for (const key of [...groups.keys()].sort()) {
    const group = groups.get(key)!;
    group.segments.sort((a, b) => a.n - b.n);
    const extended = group.segments.some((seg) => seg.extended);
    const value = group.segments.map((seg) => (extended && !seg.extended ? escapeExtended(seg.value) : seg.value)).join('');
    out.push({ name: extended ? `${group.base}*` : group.base, value });
  }
  return out;
}

/** Parses a Content-Type value; null when missing or not `type/subtype` (the caller defaults, RFC 2045 5.2). */
export function parseContentType(value: string | null): ContentType | null {
  if (value === null) return null;
  const s = new Scanner(value);
  s.skipSpace();
  const type = s.token();
  s.skipSpace();
  if (type === '' || s.peek() !== '/') return null;
  s.at++;
  s.skipSpace();
  const subtype = s.token();
  if (subtype === '') return null;
  s.skipTo(';');
  return { type, subtype, params: readParams(s) };
}

/** Parses a Content-Disposition value (RFC 2183 2); null when missing or empty. */
export function parseDisposition(value: string | null): Disposition | null {
  if (value === null) return null;
  const s = new Scanner(value);
  s.skipSpace();
  const type = s.token();
  if (type === '') return null;
  s.skipTo(';');
  return { type, params: readParams(s) };
}

/** Parses a bare parameter list (`; a=b; c="d"`). */
export function parseParams(text: string): MimeParam[] {
  return readParams(new Scanner(text));
}

/** The raw value of a parameter (any case; RFC 2045 5.1: names are case-insensitive), or null. */
export function paramValue(params: readonly MimeParam[], name: string): string | null {
  const lower = name.toLowerCase();
  return params.find((p) => p.name.toLowerCase() === lower)?.value ?? null;
}

/**
 * A parameter as text for people: an RFC 2231 `name*` (charset'lang'%XX)
 * is decoded in its charset; a plain value gets RFC 2047 and RFC 6532
 * treatment (decodeHeaderText). Null when absent.
 */
export function paramText(params: readonly MimeParam[], name: string): string | null {
  const extended = paramValue(params, `${name}*`);
  if (extended !== null) {
    const m = /^([^']*)'[^']*'(.*)$/s.exec(extended);
    const [charset, encoded] = m ? [m[1], m[2]] : [null, extended];
    const bytes = Buffer.from(encoded.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1');
    return decodeCharset(bytes, charset === '' ? null : charset);
  }
  const plain = paramValue(params, name);
  return plain === null ? null : decodeHeaderText(plain);
}
