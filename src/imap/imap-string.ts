// How values are written in IMAP responses (RFC 3501 4.3, 4.5; RFC 9051
// 4.3, 4.5): an atom, a quoted string "...", a literal {n}CRLF followed by
// n bytes, or NIL.
//
// Values are byte strings: one character per byte (Node's 'latin1'), the
// form the MIME modules hand header values out in (mime/header.ts), so a
// literal's {n} is the string's length and `toWire` gives the exact bytes.
// Text held as ordinary JS strings becomes a byte string with
// `utf8ByteString`.
//
// Quoted or literal: TEXT-CHAR excludes CR and LF, and 8-bit bytes are not
// CHARs at all, so those need a literal; so does NUL, which not even a
// literal may hold (CHAR8 is %x01-ff): it becomes U+FFFD in UTF-8, the
// replacement character, as Dovecot sends it. A quote or a
// backslash could be escaped inside a quoted string; we send a literal
// instead, as Dovecot does (simpler, and nothing to get wrong in escaping).

/** An IMAP response piece: a byte string (one character per byte). */
export type WireString = string;

export const NIL = 'NIL';

/** Text (UTF-16 JS string) as a byte string of its UTF-8 bytes. */
export function utf8ByteString(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** The bytes of a wire string, to write to the socket. */
export function toWire(wire: WireString): Buffer {
  return Buffer.from(wire, 'latin1');
}

function asByteString(value: string | Buffer): string {
  return typeof value === 'string' ? value : value.toString('latin1');
}

/** True when the value needs a literal: CR, LF, NUL, '"', '\' or an 8-bit byte. */
export function needsLiteral(value: string): boolean {
  return /[\r\n\0"\\\x80-\xff]/.test(value);
}

const REPLACEMENT_CHARACTER = '\xef\xbf\xbd'; // U+FFFD in UTF-8, as a byte string

/** A literal: {n}CRLF then the bytes (a NUL becomes U+FFFD, RFC 3501 9 CHAR8). */
export function literal(value: string | Buffer): WireString {
  const bytes = asByteString(value).replace(/\0/g, REPLACEMENT_CHARACTER);
  return `{${bytes.length}}\r\n${bytes}`;
}

/** A string: quoted when it can be, else a literal. */
export function imapString(value: string | Buffer): WireString {
  const bytes = asByteString(value);
  return needsLiteral(bytes) ? literal(bytes) : `"${bytes}"`;
}

/** A string or NIL (RFC 3501 nstring). */
export function nstring(value: string | Buffer | null | undefined): WireString {
  return value === null || value === undefined ? NIL : imapString(value);
}

// RFC 3501 9: ATOM-CHAR is any CHAR except atom-specials ( ) { SP CTL % * " \ ]
// and ASTRING-CHAR adds "]".
const ASTRING_ATOM = /^[^(){ \x00-\x1f\x7f%*"\\\x80-\xff]+$/;

/** An atom when the value is one, else a string (RFC 3501 astring). */
export function astring(value: string | Buffer): WireString {
  const bytes = asByteString(value);
  return ASTRING_ATOM.test(bytes) && bytes.toUpperCase() !== 'NIL' ? bytes : imapString(bytes);
}

/** A parenthesized list of already written items, or NIL when empty. */
export function listOrNil(items: readonly WireString[]): WireString {
  return items.length === 0 ? NIL : `(${items.join(' ')})`;
}
