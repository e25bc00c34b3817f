// How a reply, a reply to all, a forward and a reopened draft start out
// (RFC 5322 3.6.3-3.6.5): who it goes to, the subject, the quoted text, and
// the fields that thread it.
//
// - Reply goes to Reply-To if the message has one, else to From (3.6.3);
//   reply to all adds To and Cc, minus the user's own address.
// - In-Reply-To is the original's Message-ID; References is the
//   original's References (or its In-Reply-To) followed by its Message-ID
//   (3.6.4), so every mail client can thread the conversation.
// - "Re: " and "Fwd: " are added once, not stacked.

import { headerValue, splitHeaderFields } from '../../mime/header.ts';
import type { MailAddress } from '../../mime/address.ts';
import { decodeHeaderText } from '../../mime/encoded-words.ts';
import type { MessageDetails } from '../imap-client/client.ts';
import { addressesText, bareAddress, dateText, senderText, subjectText } from './display.ts';
import type { Recipient } from './compose-message.ts';
import { messageIds, recipientsText } from './recipients.ts';

export type ComposeMode = 'new' | 'reply' | 'reply-all' | 'forward' | 'draft';

/** What the compose form shows. */
export interface ComposeFields {
  to: string;
  cc: string;
  bcc: string;
  subject: string;
  text: string;
  inReplyTo: string;
  references: string;
}

export const EMPTY_FIELDS: ComposeFields = { to: '', cc: '', bcc: '', subject: '', text: '', inReplyTo: '', references: '' };

function recipient(a: MailAddress): Recipient {
  return { name: a.name === null ? null : decodeHeaderText(a.name).trim() || null, address: bareAddress(a) };
}

function withPrefix(prefix: string, subject: string): string {
  const pattern = new RegExp(`^${prefix}:\\s*`, 'i');
  return pattern.test(subject) ? subject : `${prefix}: ${subject}`;
}

/** "> " before every line of the original text (the convention of RFC 3676 4.5). */
function quote(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/\n+$/, '').split('\n').map((line) => (line.startsWith('>') ? `>${line}` : `> ${line}`)).join('\n');
}

export function replyFields(message: MessageDetails, originalText: string, all: boolean, ownAddress: string): ComposeFields {
  const env = message.envelope;
  const header = splitHeaderFields(message.header);
  const primary = (env.replyTo.length > 0 ? env.replyTo : env.from).map(recipient);
  const isMine = (r: Recipient) => r.address.toLowerCase() === ownAddress.toLowerCase();
  const to = primary.filter((r) => !all || !isMine(r));
  const cc = all ? [...env.to, ...env.cc].map(recipient).filter((r) => !isMine(r) && !to.some((t) => t.address.toLowerCase() === r.address.toLowerCase())) : [];
  const messageId = messageIds(env.messageId)[0] ?? '';
  const parents = messageIds(headerValue(header, 'references'));
  const earlier = parents.length > 0 ? parents : messageIds(env.inReplyTo).slice(0, 1);
  return {
    to: recipientsText(to.length > 0 ? to : primary),
    cc: recipientsText(cc),
    bcc: '',
    subject: withPrefix('Re', subjectText(env.subject) === '(no subject)' ? '' : subjectText(env.subject)),
    text: `\n\nOn ${dateText(env.date, message.internalDate)}, ${senderText(env.from)} wrote:\n${quote(originalText)}\n`,
    inReplyTo: messageId,
    references: [...earlier, ...(messageId ? [messageId] : [])].join(' '),
  };
}

export function forwardFields(message: MessageDetails, originalText: string): ComposeFields {
  const env = message.envelope;
  const subject = subjectText(env.subject);
  const lines = [
    '',
    '',
    '-------- Forwarded Message --------',
    `Subject: ${subject}`,
    `Date: ${dateText(env.date, message.internalDate)}`,
    `From: ${addressesText(env.from)}`,
    `To: ${addressesText(env.to)}`,
    ...(env.cc.length > 0 ? [`Cc: ${addressesText(env.cc)}`] : []),
    '',
    originalText.replace(/\r\n?/g, '\n'),
  ];
  return { ...EMPTY_FIELDS, subject: withPrefix('Fwd', subject === '(no subject)' ? '' : subject), text: lines.join('\n') };
}

/** A draft opened again: its fields as they were saved. */
export function draftFields(message: MessageDetails, text: string): ComposeFields {
  const env = message.envelope;
  const header = splitHeaderFields(message.header);
  const subject = subjectText(env.subject);
  return {
    to: recipientsText(env.to.map(recipient)),
    cc: recipientsText(env.cc.map(recipient)),
    bcc: recipientsText(env.bcc.map(recipient)),
    subject: subject === '(no subject)' ? '' : subject,
    text,
    inReplyTo: messageIds(env.inReplyTo)[0] ?? '',
    references: messageIds(headerValue(header, 'references')).join(' '),
  };
}
