// ENVELOPE, read back (RFC 3501 7.4.2): the header fields a message list
// needs, already parsed by the server, in a fixed order:
//
//   (date subject from sender reply-to to cc bcc in-reply-to message-id)
//
// Each address is (name adl mailbox host); a group is a start marker with
// the group's name in the mailbox slot and NIL host, then its members,
// then an end marker of four NILs. Groups are flattened to their members
// here: a reader shows people, not group syntax.
//
// Strings stay byte strings (values.ts); the pages decode them with the
// MIME module (decodeHeaderText) when they show them.

import type { MailAddress } from '../../mime/address.ts';
import { asList, asString } from './values.ts';
import type { ImapValue } from './values.ts';

export interface Envelope {
  date: string | null;
  subject: string | null;
  from: MailAddress[];
  sender: MailAddress[];
  replyTo: MailAddress[];
  to: MailAddress[];
  cc: MailAddress[];
  bcc: MailAddress[];
  inReplyTo: string | null;
  messageId: string | null;
}

export function parseEnvelope(value: ImapValue | undefined): Envelope {
  const v = asList(value);
  return {
    date: asString(v[0]),
    subject: asString(v[1]),
    from: addresses(v[2]),
    sender: addresses(v[3]),
    replyTo: addresses(v[4]),
    to: addresses(v[5]),
    cc: addresses(v[6]),
    bcc: addresses(v[7]),
    inReplyTo: asString(v[8]),
    messageId: asString(v[9]),
  };
}

function addresses(value: ImapValue | undefined): MailAddress[] {
  const found: MailAddress[] = [];
  for (const item of asList(value)) {
    const [name, adl, mailbox, host] = asList(item).map(asString);
    // Group markers have no host: the start names the group, the end is all NIL.
    if (host === null || mailbox === null) continue;
    found.push({ name, adl, mailbox, host });
  }
  return found;
}
