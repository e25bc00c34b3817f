// What SEARCH keeps of a message in the message cache: the text its most
// used keys look in (FROM, TO, CC, BCC, SUBJECT: RFC 3501 6.4.4) and the
// day of its Date field (SENTBEFORE, SENTON, SENTSINCE), so a search run
// again reads a few bytes per message instead of its header.
//
// The text is exactly what search.ts compares with: each field's value
// decoded (RFC 2047 encoded-words, 8-bit bytes), for address fields
// followed by its addresses as text (mime/address.ts addressText), then
// folded (mime/search-match.ts foldForSearch). A message may have a field
// more than once; each occurrence is kept apart, since a match must lie
// within one. Written as a byte string (UTF-8, one character per byte):
//
//   \0d<n>:<date> \0f<from text> \0t<to> \0c<cc> \0b<bcc> \0s<subject> ...
//
// a NUL and a tag before each piece, the first Date field's value first (as
// it is: parsing 50,000 dates when nobody may ask costs more than reading
// them; <n> is its length), absent without a Date field. A NUL inside a
// piece is written as NUL and its tag again, so the tag before any
// position says which field it is in. A needle without NUL (the IMAP
// grammar allows none: RFC 3501 9 CHAR8) is then found with one indexOf
// over the record.

import { decodeHeaderText } from '../mime/encoded-words.ts';
import { parseAddressList, addressText } from '../mime/address.ts';
import { messageDay, parseMessageDate } from '../mime/date.ts';
import { foldForSearch } from '../mime/search-match.ts';
import { FieldNames, forEachField } from './header-values.ts';
import { utf8ByteString } from './imap-string.ts';

const TAGS: Record<string, string> = { from: 'f', to: 't', cc: 'c', bcc: 'b', subject: 's' };
const FIELDS = new FieldNames([...Object.keys(TAGS), 'date']);
const DATE_SLOT = FIELDS.names.indexOf('date');
const DATE_TAG = '\0d';

/** Can the record answer HEADER `field` `value` (FROM, TO, CC, BCC and SUBJECT are HEADER keys)? */
export function inSearchText(field: string, value: string): boolean {
  return field in TAGS && !value.includes('\0');
}

// Address fields repeat from message to message; each value is decoded and
// parsed once per REMEMBERED of them (the map is emptied when full).
const addressTexts = new Map<string, string>();
const REMEMBERED = 1000;

/** The record of a header section (see the header). */
export function searchText(header: Buffer | string): string {
  let date = '';
  let dateSeen = false;
  let out = '';
  forEachField(header, FIELDS, (slot, raw) => {
    const name = FIELDS.names[slot];
    if (slot === DATE_SLOT) {
      // SENT* look at the first Date field only (search.ts).
      if (!dateSeen) {
        const escaped = escapeNul(raw, DATE_TAG);
        date = `${DATE_TAG}${escaped.length}:${escaped}`;
      }
      dateSeen = true;
      return;
    }
    const tag = `\0${TAGS[name]}`;
    out += tag + escapeNul(name === 'subject' ? folded(decodeHeaderText(raw)) : addressFieldText(raw), tag);
  });
  return date + out;
}

function escapeNul(text: string, tag: string): string {
  return text.includes('\0') ? text.replaceAll('\0', tag) : text;
}

function addressFieldText(raw: string): string {
  let text = addressTexts.get(raw);
  if (text === undefined) {
    if (addressTexts.size >= REMEMBERED) addressTexts.clear();
    text = folded(`${decodeHeaderText(raw)} ${addressText(parseAddressList(raw))}`);
    addressTexts.set(raw, text);
  }
  return text;
}

/** Folded (search-match.ts), as UTF-8 bytes in a byte string. */
function folded(text: string): string {
  const f = foldForSearch(text);
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(f) ? f : utf8ByteString(f);
}

/**
 * Does a `field` of the record contain `value` (search.ts's HEADER rule: an
 * empty value matches any message that has the field)? Only for what
 * inSearchText accepts.
 */
export function searchTextMatches(record: string, field: string, value: string): boolean {
  const tag = TAGS[field];
  const needle = folded(value);
  if (needle === '') return record.includes(`\0${tag}`);
  for (let at = record.indexOf(needle); at >= 0; at = record.indexOf(needle, at + 1)) {
    const piece = record.lastIndexOf('\0', at);
    if (piece >= 0 && at >= piece + 2 && record[piece + 1] === tag) return true;
  }
  return false;
}

/** The day of the first Date field (days since 1970-01-01, in its own zone), or null without one that is a date. */
export function sentDay(record: string): number | null {
  if (!record.startsWith(DATE_TAG)) return null;
  const colon = record.indexOf(':', DATE_TAG.length);
  const length = Number(record.slice(DATE_TAG.length, colon));
  const date = parseMessageDate(record.slice(colon + 1, colon + 1 + length).replaceAll(DATE_TAG, '\0'));
  return date ? messageDay(date) : null;
}
