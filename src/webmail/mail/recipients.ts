// The address fields of the compose form, as typed: "Ana <ana@example.org>,
// bob@example.net". Read with the MIME module's address parser (RFC 5322
// 3.4, mime/address.ts) and checked, so that nothing but a plain
// mailbox@domain reaches an SMTP command or a header line.

import { MISSING_DOMAIN, MISSING_MAILBOX, listMailboxes, parseAddressList } from '../../mime/address.ts';
import { byteStringToText } from '../../mime/charset.ts';
import { decodeHeaderText } from '../../mime/encoded-words.ts';
import { utf8ByteString } from '../../imap/imap-string.ts';
import type { Recipient } from './compose-message.ts';

/** What a local part or domain may hold here: no white space, controls or address punctuation. */
const ADDRESS_PART = /^[^\s<>()[\],;:\\"@\x00-\x1f\x7f]+$/;

export function parseRecipients(text: string): { recipients: Recipient[]; bad: string[] } {
  const recipients: Recipient[] = [];
  const bad: string[] = [];
  if (text.trim() === '') return { recipients, bad };
  for (const item of listMailboxes(parseAddressList(utf8ByteString(text)))) {
    const mailbox = byteStringToText(item.mailbox);
    const host = byteStringToText(item.host);
    const address = `${mailbox}@${host}`;
    if (item.mailbox === MISSING_MAILBOX || item.host === MISSING_DOMAIN || !ADDRESS_PART.test(mailbox) || !ADDRESS_PART.test(host)) {
      bad.push(item.host === MISSING_DOMAIN ? mailbox : address);
      continue;
    }
    const name = item.name === null ? null : decodeHeaderText(item.name).trim() || null;
    if (!recipients.some((r) => r.address.toLowerCase() === address.toLowerCase())) recipients.push({ name, address });
  }
  return { recipients, bad };
}

/** Recipients back as form text. */
export function recipientsText(recipients: readonly Recipient[]): string {
  return recipients.map((r) => (r.name ? `${r.name.includes(',') || r.name.includes('"') ? JSON.stringify(r.name) : r.name} <${r.address}>` : r.address)).join(', ');
}

/** Message identifiers (`<id@host>`) from a References or In-Reply-To value; anything else is dropped. */
export function messageIds(value: string | null): string[] {
  return (value ?? '').match(/<[^<>\s]+>/g) ?? [];
}
