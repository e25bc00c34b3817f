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

/** ENVELOPE from a header section (the raw fields, as MimePart.header holds them). */
export function formatEnvelope(header: Buffer | string | readonly HeaderField[]): WireString {
  // One pass over the header, keeping the values ENVELOPE is made of, by field: a field seen once (almost
  // all) as its value, one seen more often as the list of its values. (Not a list each: for 50,000
  // messages the first time a folder is listed, the lists would be most of what this makes.)
  const values: (string | string[] | undefined)[] = new Array(FIELDS.length);
  const add = (slot: number, value: string) => {
    const seen = values[slot];
    if (seen === undefined) values[slot] = value;
    else if (typeof seen === 'string') values[slot] = [seen, value];
    else seen.push(value);
  };
  if (typeof header === 'string' || Buffer.isBuffer(header)) forEachField(header, ENVELOPE_FIELDS, add);
  else {
    for (const field of header) {
      const slot = FIELDS.indexOf(field.name.toLowerCase());
      if (slot >= 0) add(slot, fieldValue(field));
    }
  }
  const last = (slot: number) => {
    const seen = values[slot];
    return seen === undefined ? null : typeof seen === 'string' ? seen : seen[seen.length - 1];
  };
  const from = addresses(values[FROM]);
  const sender = addresses(values[SENDER]);
  const replyTo = addresses(values[REPLY_TO]);
  // Joined, not added up: one flat string, which is what the cache and the socket write anyway.
  return [
    `(${nstring(last(DATE))}`, nstring(forHumans(last(SUBJECT))), from, sender === NIL ? from : sender, replyTo === NIL ? from : replyTo,
    addresses(values[TO]), addresses(values[CC]), addresses(values[BCC]), nstring(last(IN_REPLY_TO)), `${nstring(last(MESSAGE_ID))})`,
  ].join(' ');
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
