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

import { fieldValue, splitHeaderFields } from '../mime/header.ts';
import type { HeaderField } from '../mime/header.ts';
import { parseAddressList } from '../mime/address.ts';
import type { AddressListItem, MailAddress } from '../mime/address.ts';
import { NIL, nstring } from './imap-string.ts';
import type { WireString } from './imap-string.ts';

const ENVELOPE_FIELDS = new Set(['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id']);

/** Text for people: white space runs as one space, no white space at the ends. */
function forHumans(value: string | null): string | null {
  return value === null ? null : value.replace(/[ \t\r\n]+/g, ' ').trim();
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
export function formatEnvelope(header: Buffer | readonly HeaderField[]): WireString {
  const fields = Buffer.isBuffer(header) ? splitHeaderFields(header) : header;
  // One pass over the header, keeping the fields ENVELOPE is made of.
  const byName = new Map<string, HeaderField[]>();
  for (const field of fields) {
    if (field.name.length > 11) continue; // longer than "In-Reply-To"
    const lower = field.name.toLowerCase();
    if (!ENVELOPE_FIELDS.has(lower)) continue;
    const list = byName.get(lower);
    if (list) list.push(field);
    else byName.set(lower, [field]);
  }
  const named = (name: string) => byName.get(name) ?? [];
  const value = (name: string) => {
    const all = named(name);
    return all.length === 0 ? null : fieldValue(all[all.length - 1]);
  };
  const list = (name: string) => named(name).flatMap((f) => parseAddressList(fieldValue(f)));
  const from = list('from');
  const sender = list('sender');
  const replyTo = list('reply-to');
  return (
    '(' +
    [
      nstring(value('date')),
      nstring(forHumans(value('subject'))),
      formatAddressList(from),
      formatAddressList(sender.length > 0 ? sender : from),
      formatAddressList(replyTo.length > 0 ? replyTo : from),
      formatAddressList(list('to')),
      formatAddressList(list('cc')),
      formatAddressList(list('bcc')),
      nstring(value('in-reply-to')),
      nstring(value('message-id')),
    ].join(' ') +
    ')'
  );
}
