// Turning bytes in a named charset into text, for the webmail and SEARCH.
//
// Node's TextDecoder knows the WHATWG Encoding Standard's labels: UTF-8,
// the ISO-8859 family, the Windows code pages, KOI8, the CJK encodings. As
// browsers do, it reads ISO-8859-1 and US-ASCII as Windows-1252, a
// superset that also shows the "smart quotes" mislabelled mail is full of.
// Mail names charsets in many ways (RFC 2978 registry names, aliases,
// quoted, with an RFC 2231 language suffix), and often wrongly: nothing
// here ever throws. An unknown or missing charset is read as UTF-8 when
// the bytes are valid UTF-8, else as Windows-1252: every byte then gives a
// character, and UTF-8 mail that forgot its label still reads right. That
// is also how 8-bit header bytes are read (RFC 6532 3.1 allows UTF-8 there).

import { TextDecoder } from 'node:util';

const decoders = new Map<string, TextDecoder | null>();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const windows1252 = new TextDecoder('windows-1252');

/** The charset name as TextDecoder wants it: no quotes, no `*lang` suffix (RFC 2231 5). */
function cleanLabel(charset: string): string {
  return charset.trim().replace(/^"|"$/g, '').replace(/\*.*$/, '').trim().toLowerCase();
}

function decoderFor(charset: string): TextDecoder | null {
  const label = cleanLabel(charset);
  let decoder = decoders.get(label);
  if (decoder === undefined) {
    try {
      decoder = new TextDecoder(label);
    } catch {
      decoder = null; // not a label TextDecoder knows
    }
    if (decoders.size < 100) decoders.set(label, decoder); // bounded: labels come from mail
  }
  return decoder;
}

/** True when `charset` names an encoding we can decode (for SEARCH's BADCHARSET). */
export function isKnownCharset(charset: string): boolean {
  return decoderFor(charset) !== null;
}

/** UTF-8 if the bytes are valid UTF-8, else Windows-1252: for bytes of unknown charset. */
export function decodeUnlabelled(bytes: Uint8Array): string {
  // Pure ASCII is the same in both; latin1 is the fastest way to read it.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return windows1252.decode(bytes);
  }
}

/** Decodes `bytes` in `charset`; unknown or missing charsets as decodeUnlabelled. */
export function decodeCharset(bytes: Uint8Array, charset: string | null): string {
  const decoder = charset === null ? null : decoderFor(charset);
  if (decoder === null) return decodeUnlabelled(bytes);
  return decoder.decode(bytes);
}

/** A header value kept as a byte string (header.ts), read as text: RFC 6532 UTF-8 or Windows-1252. */
export function byteStringToText(value: string): string {
  if (!NOT_ASCII.test(value)) return value; // (ASCII reads the same in both: no bytes to make)
  return decodeUnlabelled(Buffer.from(value, 'latin1'));
}

const NOT_ASCII = /[^\x00-\x7f]/;

/**
 * A decoder for text that arrives in pieces: a character split between
 * chunks comes out whole. An unknown charset is read as UTF-8, with U+FFFD
 * for bytes that are not UTF-8 (a stream cannot be looked at in advance).
 */
export class StreamTextDecoder {
  readonly #decoder: TextDecoder;

  constructor(charset: string | null) {
    const known = charset === null ? null : decoderFor(charset);
    // A fresh decoder: a streaming one keeps state between calls.
    this.#decoder = new TextDecoder(known === null ? 'utf-8' : known.encoding);
  }

  write(bytes: Uint8Array): string {
    return this.#decoder.decode(bytes, { stream: true });
  }

  end(): string {
    return this.#decoder.decode();
  }
}
