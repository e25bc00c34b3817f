// Reading the values in an IMAP server's responses (RFC 3501 4, 9): the same
// atoms, quoted strings, literals, numbers, NIL and parenthesised lists a
// client sends, so the server's own ArgReader (imap/parser.ts) walks them.
// What a server adds on top is only nesting: BODYSTRUCTURE and ENVELOPE are
// lists of lists of any depth, read here into plain values.
//
// Strings come back as byte strings (one character per byte, Node's
// 'latin1'), the form the MIME module takes header values in, so an 8-bit
// subject sent as a literal keeps its bytes until decodeHeaderText reads it.

import { MemoryLiteral } from '../../wire/command-reader.ts';
import { utf8ByteString } from '../../imap/imap-string.ts';
import { ParseError } from '../../imap/parser.ts';
import type { ArgReader } from '../../imap/parser.ts';

/** A value in a response: NIL, a number, a (byte) string, or a list of values. */
export type ImapValue = null | number | string | ImapValue[];

/**
 * Nesting allowed in one response. Deeper than the parser's limit for
 * commands (16): a message nested a few levels deep already needs more in
 * BODYSTRUCTURE, and this is what the server sends, not what a stranger does.
 */
const MAX_RESPONSE_DEPTH = 100;

/** A literal's bytes (responses are read into memory, in bounded sizes). */
export function literalBytes(r: ArgReader): Buffer {
  const literal = r.literal();
  if (!(literal instanceof MemoryLiteral)) throw new ParseError('unexpected literal sink');
  return literal.bytes();
}

/** A string (quoted or literal) as bytes, or null for NIL: the body of a FETCH BODY[...] item. */
export function nstringBytes(r: ArgReader): Buffer | null {
  if (r.peek() === '{') return literalBytes(r);
  if (r.peek() === '"') return Buffer.from(utf8ByteString(r.quoted()), 'latin1');
  if (r.keyword() !== 'NIL') throw new ParseError('expected a string or NIL');
  return null;
}

/** A string or atom as a byte string (mailbox names, quoted values). */
export function astringValue(r: ArgReader): string {
  if (r.peek() === '{') return literalBytes(r).toString('latin1');
  if (r.peek() === '"') return utf8ByteString(r.quoted());
  return r.token(/[^(){ \x00-\x1f\x7f"\\]/, 'a string');
}

/** Any value; lists are read recursively. */
export function readValue(r: ArgReader, depth = 0): ImapValue {
  const c = r.peek();
  if (c === '(') {
    if (depth >= MAX_RESPONSE_DEPTH) throw new ParseError('response nested too deeply');
    r.expect('(');
    const items: ImapValue[] = [];
    if (r.accept(')')) return items;
    for (;;) {
      items.push(readValue(r, depth + 1));
      if (r.accept(')')) return items;
      // RFC 3501 9 body-type-mpart: "1*body SP media-subtype", the parts of
      // a multipart follow each other with no space between them.
      if (r.peek() !== '(') r.sp();
    }
  }
  if (c === '"' || c === '{') return astringValue(r);
  if (c >= '0' && c <= '9') return r.number();
  if (c === '\\') return r.flag();
  const atom = r.token(/[^(){ \x00-\x1f\x7f"\\\]]/, 'a value');
  return atom.toUpperCase() === 'NIL' ? null : atom;
}

/** The value as a string, or null when it is NIL or not a string. */
export function asString(value: ImapValue | undefined): string | null {
  return typeof value === 'string' ? value : null;
}

export function asNumber(value: ImapValue | undefined): number {
  return typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : 0;
}

export function asList(value: ImapValue | undefined): ImapValue[] {
  return Array.isArray(value) ? value : [];
}
