// Header values as a person reads them: encoded-words and 8-bit bytes
// decoded (mime/encoded-words.ts), addresses as `Name <address>`, dates in
// one short form. The results are plain text; the pages escape them.

import { addressText } from '../../mime/address.ts';
import type { MailAddress } from '../../mime/address.ts';
import { decodeHeaderText } from '../../mime/encoded-words.ts';
import { MONTH_NAMES, parseImapDateTime, parseMessageDate } from '../../mime/date.ts';

export function subjectText(raw: string | null): string {
  const text = raw === null ? '' : decodeHeaderText(raw).trim();
  return text === '' ? '(no subject)' : text;
}

export function addressesText(addresses: readonly MailAddress[]): string {
  return addressText(addresses);
}

/** The name if there is one, else the address: for the narrow From column. */
export function senderText(addresses: readonly MailAddress[]): string {
  const first = addresses[0];
  if (!first) return '(unknown sender)';
  const name = first.name === null ? '' : decodeHeaderText(first.name).trim();
  return name || `${first.mailbox}@${first.host}`;
}

/** `mailbox@host` of an address, as typed into a form. */
export function bareAddress(address: MailAddress): string {
  return `${address.mailbox}@${address.host}`;
}

const two = (n: number) => String(n).padStart(2, '0');

/**
 * "30 Nov 2026 14:05", in the zone the sender wrote (no script tells us the
 * reader's); from the Date: field, else from the server's arrival date.
 */
export function dateText(headerDate: string | null, internalDate: string | null): string {
  const parsed = (headerDate && parseMessageDate(headerDate)) || (internalDate && parseImapDateTime(internalDate)) || null;
  if (!parsed) return '';
  const local = new Date(parsed.time + parsed.offsetMinutes * 60_000);
  return `${local.getUTCDate()} ${MONTH_NAMES[local.getUTCMonth()]} ${local.getUTCFullYear()} ${two(local.getUTCHours())}:${two(local.getUTCMinutes())}`;
}
