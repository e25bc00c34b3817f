// The header section of an Internet message (RFC 5322 2.2): fields of the form
// `Name: value`, where a line starting with a space or tab continues the field
// above it (folding, RFC 5322 2.2.3), ended by the first empty line (2.1).
//
// Everything here works on bytes, so 8-bit and UTF-8 headers (RFC 6532) pass
// through untouched. Field values are handed out as "byte strings": a JS
// string with one character per byte (Node's 'latin1' encoding), so that
// `Buffer.from(value, 'latin1')` gives back exactly the bytes of the header.
// IMAP sends header values raw (ENVELOPE, BODYSTRUCTURE); code that shows
// them to a person decodes them with `decodeHeaderText` (encoded-words.ts).
// Lines may end in LF (the store's form) or CRLF.

export { formatMessageDate } from './date.ts';

const LF = 0x0a;
const CR = 0x0d;

/** One header field, with its raw lines (including continuation lines and their line ends). */
export interface HeaderField {
  name: string;
  raw: Buffer;
}

/**
 * Split a header section (without the blank line that ends it) into fields.
 * Lines before the first field or without a colon are kept as fields with
 * an empty name, so nothing is ever lost.
 */
export function splitHeaderFields(section: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < section.length) {
    // A field runs until a line that does not start with a space or tab.
    let end = section.indexOf(LF, start);
    while (end >= 0 && end + 1 < section.length && (section[end + 1] === 0x20 || section[end + 1] === 0x09)) {
      end = section.indexOf(LF, end + 1);
    }
    const stop = end < 0 ? section.length : end + 1;
    const raw = section.subarray(start, stop);
    const colon = raw.indexOf(0x3a);
    const firstLineEnd = raw.indexOf(LF);
    const hasName = colon > 0 && (firstLineEnd < 0 || colon < firstLineEnd);
    const name = hasName ? raw.subarray(0, colon).toString('latin1').trim() : '';
    fields.push({ name, raw });
    start = stop;
  }
  return fields;
}

/** The header section without the fields named in `names` (lower case): IMAP HEADER.FIELDS.NOT. */
export function removeFields(section: Buffer, names: ReadonlySet<string>): Buffer {
  const kept = splitHeaderFields(section).filter((field) => !names.has(field.name.toLowerCase()));
  return Buffer.concat(kept.map((field) => field.raw));
}

/** Only the fields named in `names` (lower case), in header order: IMAP HEADER.FIELDS (RFC 3501 6.4.5). */
export function pickFields(section: Buffer, names: ReadonlySet<string>): Buffer {
  const kept = splitHeaderFields(section).filter((field) => names.has(field.name.toLowerCase()));
  return Buffer.concat(kept.map((field) => field.raw));
}

/**
 * A field's value as a byte string: what follows the colon, unfolded (RFC
 * 5322 2.2.3: a line end followed by white space is removed, the white
 * space stays) and without the white space around it, as Dovecot does.
 */
export function fieldValue(field: HeaderField): string {
  const colon = field.name === '' ? -1 : field.raw.indexOf(0x3a);
  let start = colon + 1;
  let end = field.raw.length;
  const raw = field.raw;
  while (start < end && (raw[start] === 0x20 || raw[start] === 0x09)) start++;
  while (end > start && (raw[end - 1] === 0x20 || raw[end - 1] === 0x09 || raw[end - 1] === LF || raw[end - 1] === CR)) end--;
  const text = raw.toString('latin1', start, end);
  if (!text.includes('\n')) return text;
  // A value may start on a continuation line: trim again after unfolding.
  return text.replace(/\r?\n/g, '').replace(/^[ \t]+/, '');
}

/** The value of the first field called `name` (any case), or null. */
export function headerValue(fields: readonly HeaderField[], name: string): string | null {
  const lower = name.toLowerCase();
  for (const field of fields) {
    if (field.name.length === name.length && field.name.toLowerCase() === lower) return fieldValue(field);
  }
  return null;
}

/** Where the header section of a message ends (see findHeaderEnd). */
export interface HeaderEnd {
  /** Bytes of header fields, through the line end of the last field. */
  headerLength: number;
  /** Where the body starts: just after the empty line. */
  bodyStart: number;
}

/**
 * Finds the empty line that ends the header section (RFC 5322 2.1), in LF
 * or CRLF text: the first line that is empty or holds only a CR. Returns
 * null when there is none (the whole buffer is header). A message that
 * starts with an empty line has an empty header. Offsets count from 0
 * even when `start` is given.
 */
export function findHeaderEnd(buffer: Buffer, start = 0): HeaderEnd | null {
  const finder = new HeaderEndFinder();
  const found = finder.push(buffer.subarray(start));
  return found < 0 ? null : { headerLength: start + finder.headerLength, bodyStart: start + found };
}

/**
 * The same search over a stream of chunks: `push` returns the offset in
 * the chunk where the body starts, or -1 while the header goes on (and 0
 * for every chunk after that: they are all body). The empty line may be
 * split between chunks anywhere. Once it is found, `headerLength` is the
 * header's length in bytes, as in findHeaderEnd.
 */
export class HeaderEndFinder {
  // At the start of a line (0), after a CR at a line start (1), or inside a line (2).
  #state: 0 | 1 | 2 = 0;
  #seen = 0;
  headerLength = -1;

  push(chunk: Buffer): number {
    if (this.headerLength >= 0) return 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 2) {
        const lf = chunk.indexOf(LF, i);
        if (lf < 0) break;
        i = lf + 1;
        this.#state = 0;
        continue;
      }
      const byte = chunk[i];
      if (byte === LF) {
        // An empty line: the header is what came before it.
        this.headerLength = this.#seen + i - (this.#state === 1 ? 1 : 0);
        this.#seen += i + 1;
        return i + 1;
      }
      this.#state = this.#state === 0 && byte === CR ? 1 : 2;
      i++;
    }
    this.#seen += chunk.length;
    return -1;
  }
}
