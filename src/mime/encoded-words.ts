// RFC 2047 encoded-words: how non-ASCII text hides in ASCII headers.
//
//   Subject: =?ISO-8859-1?Q?Caf=E9?= =?UTF-8?B?4pyT?=
//
// An encoded-word is =?charset?encoding?text?= where encoding is B (base64)
// or Q (quoted-printable-like: "_" is a space, =XX a byte; RFC 2047 4.2).
// White space between two adjacent encoded-words is dropped (RFC 2047 6.2),
// and adjacent words in the same charset are joined as bytes before
// decoding, since mailers split a multi-byte character across two words.
//
// Tolerated mistakes, as Thunderbird and Dovecot tolerate them: encoded-words
// inside quoted strings or glued to other text, missing white space between
// words, lower-case or missing base64 padding, an RFC 2231 language
// (`=?UTF-8*en?Q?...?=`, RFC 2231 5), unknown charsets (charset.ts), and
// 8-bit bytes around them (RFC 6532).

import { byteStringToText, decodeCharset } from './charset.ts';

// charset, encoding, encoded text. No "?" or white space inside a word
// (RFC 2047 2); Q text may hold "=" and "_".
const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

/** The bytes an encoded-word's text stands for. */
function wordBytes(encoding: string, text: string): Buffer {
  if (encoding === 'b' || encoding === 'B') {
    // Buffer's base64 reader skips bad characters and missing padding.
    return Buffer.from(text, 'base64');
  }
  // Q: "_" is a space (RFC 2047 4.2 (2)), =XX a byte; a bad "=" stays as it is.
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5f) bytes.push(0x20);
    else if (c === 0x3d && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes);
}

/**
 * Decodes the encoded-words in `text`, a header value already read as
 * text. Everything else is left as it is.
 */
export function decodeEncodedWords(text: string): string {
  if (!text.includes('=?')) return text;
  let out = '';
  let last = 0; // end of the text already handled
  let pending: { charset: string; bytes: Buffer[] } | null = null;
  const flush = () => {
    if (pending) out += decodeCharset(Buffer.concat(pending.bytes), pending.charset);
    pending = null;
  };
  for (const m of text.matchAll(ENCODED_WORD)) {
    const between = text.slice(last, m.index);
    const charset = m[1].replace(/\*.*$/, '').toLowerCase();
    const bytes = wordBytes(m[2], m[3]);
    if (pending !== null && /^[ \t\r\n]*$/.test(between)) {
      // Adjacent words: the white space between them goes (RFC 2047 6.2).
      const open = pending as { charset: string; bytes: Buffer[] };
      if (open.charset === charset) open.bytes.push(bytes);
      else {
        flush();
        pending = { charset, bytes: [bytes] };
      }
    } else {
      flush();
      out += between;
      pending = { charset, bytes: [bytes] };
    }
    last = m.index + m[0].length;
  }
  flush();
  return out + text.slice(last);
}

/**
 * A raw header value (a byte string, header.ts) as a person should see it:
 * 8-bit bytes read as UTF-8 (or Windows-1252), encoded-words decoded.
 */
export function decodeHeaderText(value: string): string {
  return decodeEncodedWords(byteStringToText(value));
}
