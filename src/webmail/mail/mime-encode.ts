// The encodings a message the webmail writes needs, so that it is 7-bit
// clean for any server (RFC 6152 is then never needed) and any reader:
//
// - header text that is not plain ASCII as RFC 2047 encoded-words
//   (=?UTF-8?B?...?=, each at most 75 characters, split between characters);
// - display names quoted where RFC 5322 3.2.3 atoms do not reach;
// - file names as RFC 2231 parameters (filename*=UTF-8''%C3%A9t%C3%A9.pdf);
// - text bodies as quoted-printable (RFC 2045 6.7) when they are not short
//   ASCII lines;
// - attachments as base64 (RFC 2045 6.8) in lines of 76, streamed.
//
// The MIME module (src/mime/) reads all of these; this is its writing half.

const CRLF = '\r\n';

/** Printable ASCII and spaces only. */
export function isPlainAscii(text: string): boolean {
  return /^[\x20-\x7e]*$/.test(text);
}

/** No CR, LF or other control character can reach a header line. */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

/**
 * RFC 2047 encoded-words for `text`: B encoding of UTF-8, at most 39 bytes
 * (52 base64 characters, 64 with the =?UTF-8?B? and ?=) a word, so even
 * the first line, after "Subject: ", stays within 78 characters; never
 * splitting a character; joined by folding white space.
 */
export function encodedWords(text: string): string {
  const words: string[] = [];
  let chunk = '';
  for (const char of text) {
    if (Buffer.byteLength(chunk + char) > 39) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join(`${CRLF} `);
}

/**
 * An unstructured header field (Subject): as it is when ASCII (folded at
 * spaces to keep lines under 78 characters, RFC 5322 2.1.1), else as
 * encoded-words.
 */
export function unstructuredField(name: string, value: string): string {
  const clean = oneLine(value);
  if (!isPlainAscii(clean) || clean.split(' ').some((word) => word.length > 900)) return `${name}: ${encodedWords(clean)}${CRLF}`;
  let line = `${name}:`;
  let out = '';
  for (const word of clean.split(' ')) {
    if (line.length + 1 + word.length > 78 && line.length > name.length + 1) {
      out += line + CRLF;
      line = '';
    }
    line += ` ${word}`;
  }
  return out + line + CRLF;
}

// RFC 5322 3.2.3 atext, and the spaces between the words of a phrase.
const PHRASE_OF_ATOMS = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/;

/** A display name: as atoms, as a quoted string, or as encoded-words (RFC 2047 5 (3)). */
export function displayName(name: string): string {
  const clean = oneLine(name);
  if (PHRASE_OF_ATOMS.test(clean)) return clean;
  if (isPlainAscii(clean)) return `"${clean.replace(/["\\]/g, '\\$&')}"`;
  return encodedWords(clean);
}

/** An address header (From, To, Cc): one address a line, folded. */
export function addressField(name: string, addresses: readonly { name: string | null; address: string }[]): string {
  const items = addresses.map((a) => (a.name ? `${displayName(a.name)} <${a.address}>` : a.address));
  return `${name}: ${items.join(`,${CRLF} `)}${CRLF}`;
}

/** A MIME parameter (RFC 2045 5.1), RFC 2231 encoded when it is not plain ASCII. */
export function mimeParameter(name: string, value: string): string {
  const clean = oneLine(value);
  if (isPlainAscii(clean)) return `${name}="${clean.replace(/["\\]/g, '\\$&')}"`;
  const encoded = [...Buffer.from(clean)].map((b) => (/[A-Za-z0-9.!~*_-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
  return `${name}*=UTF-8''${encoded}`;
}

/** Lines of the text with CRLF ends. */
function crlfLines(text: string): string[] {
  return text.replace(/\r\n?/g, '\n').split('\n');
}

/** Whether a text body can go as 7bit: ASCII, no line longer than 78. */
export function needsQuotedPrintable(text: string): boolean {
  return crlfLines(text).some((line) => line.length > 78 || !/^[\x20-\x7e\t]*$/.test(line));
}

/** RFC 2045 6.7: quoted-printable of the UTF-8 text, lines of at most 76 characters, CRLF ends. */
export function quotedPrintable(text: string): string {
  return crlfLines(text).map(encodeLine).join(CRLF);
}

function encodeLine(line: string): string {
  const bytes = Buffer.from(line);
  let out = '';
  let current = '';
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i];
    const last = i === bytes.length - 1;
    // Rule 2: printable ASCII but "=" as itself; rule 3: white space too, except at a line's end.
    const literal = (byte >= 33 && byte <= 126 && byte !== 61) || ((byte === 32 || byte === 9) && !last);
    const piece = literal ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    // Rule 5: a soft line break ("=" at the end) keeps each line within 76 characters.
    if (current.length + piece.length > 75) {
      out += `${current}=${CRLF}`;
      current = '';
    }
    current += piece;
  }
  return out + current;
}

/** Base64 in lines of 76 (57 input bytes), for a stream of any size. */
export async function* base64Lines(chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let held = Buffer.alloc(0);
  for await (const chunk of chunks) {
    const data = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
    const whole = data.length - (data.length % 57);
    held = Buffer.from(data.subarray(whole));
    if (whole > 0) yield linesOf(data.subarray(0, whole));
  }
  if (held.length > 0) yield linesOf(held);
}

function linesOf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString('base64').replace(/.{1,76}/g, `$&${CRLF}`));
}
