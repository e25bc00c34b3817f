// The ENVELOPE of a message (RFC 3501 7.4.2, RFC 9051 7.5.2): the fields a
// client shows in the message list, parsed by the server so the client
// need not download the header:
//
//   (date subject from sender reply-to to cc bcc in-reply-to message-id)
//
// Date, subject, in-reply-to and message-id are nstrings; the six address
// fields are a list of addresses (name adl mailbox host) or NIL; a group
// is a start marker (NIL NIL "group name" NIL), its members, and an end
// marker (NIL NIL NIL NIL). RFC 3501: when Sender or Reply-To is absent or
// empty, the server sets it to the From value.
//
// Subjects and names are sent as they are in the header (unfolded, not
// RFC 2047-decoded, 8-bit bytes as they are, in a literal): RFC 3501 7.4.2
// and RFC 9051 7.5.2 describe the envelope as the header's fields, and
// clients decode encoded-words themselves. Dovecot does the same, and we
// follow it in three details: in subjects and names, runs of white space
// (folding included) become one space, trimmed at both ends; when a field
// appears twice, the last Subject, Date, In-Reply-To or Message-ID counts
// while the address fields add up. An absent field is NIL; an empty one "".

import { fieldValue } from '../mime/header.ts';
import { FieldNames, forEachField } from './header-values.ts';
import type { HeaderField } from '../mime/header.ts';
import { parseAddressList } from '../mime/address.ts';
import type { AddressListItem, MailAddress } from '../mime/address.ts';
import { NIL, nstring } from './imap-string.ts';
import type { WireString } from './imap-string.ts';

const FIELDS = ['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id'];
const ENVELOPE_FIELDS = new FieldNames(FIELDS);
const [DATE, SUBJECT, FROM, SENDER, REPLY_TO, TO, CC, BCC, IN_REPLY_TO, MESSAGE_ID] = FIELDS.map((_, i) => i);

/** Text for people: white space runs as one space, no white space at the ends. */
function forHumans(value: string | null): string | null {
  if (value === null) return null;
  return /[\t\r\n]| {2}/.test(value) ? value.replace(/[ \t\r\n]+/g, ' ').trim() : value.trim(); // (testing is cheaper than replacing)
}

function address(a: MailAddress): WireString {
  return `(${nstring(forHumans(a.name))} ${nstring(a.adl)} ${nstring(a.mailbox)} ${nstring(a.host)})`;
}

/** An address list as ENVELOPE writes it: "(" 1*address ")" or NIL. */
export function formatAddressList(items: readonly AddressListItem[]): WireString {
  let out = '';
  for (const item of items) {
    if ('group' in item) {
      out += `(NIL NIL ${nstring(item.group)} NIL)`;
      for (const member of item.members) out += address(member);
      out += '(NIL NIL NIL NIL)';
    } else out += address(item);
  }
  return out === '' ? NIL : `(${out})`;
}

// The values ENVELOPE is made of, by field, while one is made: a field seen once (almost all) as its value, one
// seen more often as the list of its values. One array for every ENVELOPE (formatEnvelope runs to its end
// without waiting): for 50,000 messages the first time a folder is listed, an array and a list per field each
// time would be most of what this makes.
const seen: (string | string[] | undefined)[] = new Array(FIELDS.length);

function see(slot: number, value: string): void {
  const before = seen[slot];
  if (before === undefined) seen[slot] = value;
  else if (typeof before === 'string') seen[slot] = [before, value];
  else before.push(value);
}

function last(slot: number): string | null {
  const values = seen[slot];
  return values === undefined ? null : typeof values === 'string' ? values : values[values.length - 1];
}

/** ENVELOPE from a header section (the raw fields, as MimePart.header holds them). */
export function formatEnvelope(header: Buffer | string | readonly HeaderField[]): WireString {
  seen.fill(undefined);
  if (typeof header === 'string' || Buffer.isBuffer(header)) forEachField(header, ENVELOPE_FIELDS, see);
  else {
    for (const field of header) {
      const slot = FIELDS.indexOf(field.name.toLowerCase());
      if (slot >= 0) see(slot, fieldValue(field));
    }
  }
  const from = addresses(seen[FROM]);
  const sender = addresses(seen[SENDER]);
  const replyTo = addresses(seen[REPLY_TO]);
  // Joined, not added up: one flat string, which is what the cache and the socket write anyway.
  const envelope = [
    `(${nstring(last(DATE))}`, nstring(forHumans(last(SUBJECT))), from, sender === NIL ? from : sender, replyTo === NIL ? from : replyTo,
    addresses(seen[TO]), addresses(seen[CC]), addresses(seen[BCC]), nstring(last(IN_REPLY_TO)), `${nstring(last(MESSAGE_ID))})`,
  ].join(' ');
  seen.fill(undefined); // (nothing of this header kept alive until the next one)
  return envelope;
}

// Address fields repeat from message to message (the owner's address in
// To, the people who write most in From), so the ENVELOPEs of a folder
// parse each value once: a small map of field values to their address
// lists as written, emptied when full.
const formattedLists = new Map<string, WireString>();
const REMEMBERED_LISTS = 1000;

/** The address list of a field's values (all of them: the lists add up), as ENVELOPE writes it. */
function addresses(values: string | readonly string[] | undefined): WireString {
  if (values === undefined) return NIL;
  if (typeof values !== 'string') return formatAddressList(values.flatMap((v) => parseAddressList(v)));
  let text = formattedLists.get(values);
  if (text === undefined) {
    if (formattedLists.size >= REMEMBERED_LISTS) formattedLists.clear();
    text = formatAddressList(parseAddressList(values));
    formattedLists.set(values, text);
  }
  return text;
}
