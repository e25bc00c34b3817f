// The header section of an Internet message (RFC 5322 2.2): fields of the form
// `Name: value`, where a line starting with a space or tab continues the field
// above it (folding, RFC 5322 2.2.3). Enough to read and drop fields, working
// on bytes so 8-bit headers pass through untouched.

/** One header field, with its raw lines (including continuation lines and their LFs). */
export interface HeaderField {
  name: string;
  raw: Buffer;
}

/**
 * Split a header section (LF line endings, without the blank line that ends
 * it) into fields. Lines before the first field or without a colon are kept
 * as fields with an empty name, so nothing is ever lost.
 */
export function splitHeaderFields(section: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  while (start < section.length) {
    // A field runs until a line that does not start with a space or tab.
    let end = section.indexOf(0x0a, start);
    while (end >= 0 && end + 1 < section.length && (section[end + 1] === 0x20 || section[end + 1] === 0x09)) {
      end = section.indexOf(0x0a, end + 1);
    }
    const stop = end < 0 ? section.length : end + 1;
    const raw = section.subarray(start, stop);
    const colon = raw.indexOf(0x3a);
    const firstLineEnd = raw.indexOf(0x0a);
    const hasName = colon > 0 && (firstLineEnd < 0 || colon < firstLineEnd);
    const name = hasName ? raw.subarray(0, colon).toString('latin1').trim() : '';
    fields.push({ name, raw });
    start = stop;
  }
  return fields;
}

/** The header section without the fields named in `names` (lower case). */
export function removeFields(section: Buffer, names: ReadonlySet<string>): Buffer {
  const kept = splitHeaderFields(section).filter((field) => !names.has(field.name.toLowerCase()));
  return Buffer.concat(kept.map((field) => field.raw));
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 3.3 date-time, in UTC: `Sun, 22 Nov 2026 03:05:51 +0000`. */
export function formatMessageDate(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}
