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
// clients decode encoded-words themselves. Dovecot does the same. An absent
// field is NIL; an empty one is "".

import { headerValue, splitHeaderFields } from '../mime/header.ts';
import type { HeaderField } from '../mime/header.ts';
import { parseAddressList } from '../mime/address.ts';
import type { AddressListItem, MailAddress } from '../mime/address.ts';
import { NIL, nstring } from './imap-string.ts';
import type { WireString } from './imap-string.ts';

function address(a: MailAddress): WireString {
  return `(${nstring(a.name)} ${nstring(a.adl)} ${nstring(a.mailbox)} ${nstring(a.host)})`;
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
  const value = (name: string) => headerValue(fields, name);
  const list = (name: string) => parseAddressList(value(name));
  const from = list('From');
  const sender = list('Sender');
  const replyTo = list('Reply-To');
  return (
    '(' +
    [
      nstring(value('Date')),
      nstring(value('Subject')),
      formatAddressList(from),
      formatAddressList(sender.length > 0 ? sender : from),
      formatAddressList(replyTo.length > 0 ? replyTo : from),
      formatAddressList(list('To')),
      formatAddressList(list('Cc')),
      formatAddressList(list('Bcc')),
      nstring(value('In-Reply-To')),
      nstring(value('Message-ID')),
    ].join(' ') +
    ')'
  );
}
