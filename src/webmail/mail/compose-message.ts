// Writing a message the user composed (RFC 5322, MIME RFC 2045-2046) into a
// temporary file, with CRLF line ends, so that it can be sent (the SMTP
// client streams it) and stored in Sent or Drafts (IMAP APPEND needs its
// size first) from the same bytes.
//
//   Date, From, To, Cc, [Bcc only in a draft], Subject, Message-ID,
//   In-Reply-To, References (RFC 5322 3.6.4), MIME-Version
//   text/plain; charset=utf-8                     (no attachments)
//   multipart/mixed: the text, then each file     (with attachments, RFC 2046 5.1.3)
//
// Everything is 7-bit (mime-encode.ts). Attachments stream from their
// source (an upload's temporary file, or a part of another message over
// IMAP) through the base64 encoder into the file.

import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { formatMessageDate } from '../../mime/date.ts';
import { safeContentType } from '../http/reply.ts';
import { addressField, base64Lines, mimeParameter, needsQuotedPrintable, quotedPrintable, unstructuredField } from './mime-encode.ts';

export interface Recipient {
  name: string | null;
  /** mailbox@domain, already checked (compose-form.ts). */
  address: string;
}

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  content: () => AsyncIterable<Buffer>;
}

export interface OutgoingMessage {
  from: Recipient;
  to: Recipient[];
  cc: Recipient[];
  bcc: Recipient[];
  /** Drafts keep Bcc so it can be edited; sent mail never shows it (RFC 5322 3.6.3). */
  keepBcc: boolean;
  subject: string;
  text: string;
  /** Message identifiers with their angle brackets. */
  inReplyTo: string | null;
  references: string[];
  attachments: OutgoingAttachment[];
  messageId: string;
  date: Date;
}

/** A new Message-ID (RFC 5322 3.6.4): random left part, our host name on the right. */
export function newMessageId(hostname: string): string {
  return `<${randomBytes(16).toString('hex')}@${hostname}>`;
}

/** Writes the message to `path` (a new file); returns its size in octets. */
export async function writeMessage(message: OutgoingMessage, path: string): Promise<number> {
  const file = await open(path, 'wx', 0o600);
  let size = 0;
  const write = async (data: string | Buffer) => {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    size += bytes.length;
    await file.write(bytes);
  };
  try {
    await write(headerSection(message));
    if (message.attachments.length === 0) {
      await write(textPart(message.text));
    } else {
      // "=_" cannot occur in quoted-printable or base64 text, so the boundary never appears in a part (RFC 2045 6.7 note).
      const boundary = `=_webmail_${randomBytes(12).toString('hex')}`;
      await write(`Content-Type: multipart/mixed; boundary="${boundary}"\r\n\r\nThis is a message in MIME format.\r\n`);
      await write(`--${boundary}\r\n${textPart(message.text)}`);
      for (const attachment of message.attachments) {
        await write(`\r\n--${boundary}\r\n`);
        const type = safeContentType(attachment.contentType);
        await write(
          `Content-Type: ${type}; ${mimeParameter('name', attachment.filename)}\r\n` +
            `Content-Disposition: attachment; ${mimeParameter('filename', attachment.filename)}\r\n` +
            'Content-Transfer-Encoding: base64\r\n\r\n',
        );
        for await (const lines of base64Lines(attachment.content())) await write(lines);
      }
      await write(`\r\n--${boundary}--\r\n`);
    }
  } finally {
    await file.close();
  }
  return size;
}

function headerSection(message: OutgoingMessage): string {
  let header = `Date: ${formatMessageDate(message.date)}\r\n`;
  header += addressField('From', [message.from]);
  if (message.to.length > 0) header += addressField('To', message.to);
  if (message.cc.length > 0) header += addressField('Cc', message.cc);
  if (message.keepBcc && message.bcc.length > 0) header += addressField('Bcc', message.bcc);
  header += unstructuredField('Subject', message.subject);
  header += `Message-ID: ${message.messageId}\r\n`;
  if (message.inReplyTo) header += `In-Reply-To: ${message.inReplyTo}\r\n`;
  if (message.references.length > 0) header += `References: ${message.references.join('\r\n ')}\r\n`;
  header += 'MIME-Version: 1.0\r\n';
  return header;
}

/** The text part's header fields and body (ending without a line break: the boundary's CRLF follows). */
function textPart(text: string): string {
  const body = text.replace(/\r\n?/g, '\n').replace(/\n+$/, '');
  if (!needsQuotedPrintable(body)) return `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n${body.replace(/\n/g, '\r\n')}\r\n`;
  return `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(body)}\r\n`;
}
