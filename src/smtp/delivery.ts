// Final delivery of a received message into local mboxes (RFC 5321 4.4).
//
// What is added: `Return-Path:` with the envelope sender, then a `Received:`
// trace field saying who handed us the message, when, and how.
//
// What is removed: header fields that mbox readers treat as mailbox state
// (mutt, Pine and Dovecot keep flags in Status/X-Status, IMAP UIDs in X-UID,
// X-IMAPbase, X-IMAP and X-Keywords; Content-Length changes where a message is
// thought to end). Left in place, a sender could mark its message as read,
// forge UIDs, or hide a message inside another. Any `Return-Path` the client
// sent is dropped too: only the final delivery may write it (RFC 5321 4.4).
//
// Durability design: the message is appended straight into each recipient's
// mbox, and each append is fsync'd (group commit, see store/mbox-append.ts)
// before the session answers 250. If any mailbox fails (lock timeout, disk
// full), the session answers 451 and the client retries the whole message:
// the recipients that did get it may then get it twice. We chose this over a
// local queue because a duplicate is acceptable, a lost message never is, and
// direct appends keep one copy of the bytes and one fsync per batch: the cheapest
// durable path on an SD card.

import { removeFields, formatMessageDate } from '../mime/header.ts';
import type { MboxAppender } from '../store/mbox-append.ts';
import { mailboxPath } from '../store/paths.ts';
import type { ReceivedMessage } from './message.ts';

/** Header fields dropped from every incoming message (lower case). */
export const STATE_HEADERS: ReadonlySet<string> = new Set([
  'status',
  'x-status',
  'x-uid',
  'x-imapbase',
  'x-imap',
  'x-keywords',
  'content-length',
  'return-path',
]);

export interface TraceInfo {
  /** The name the client gave in EHLO/HELO, or 'unknown'. */
  heloName: string;
  clientAddress: string;
  /** Our hostname. */
  hostname: string;
  /** RFC 5321 4.4 / RFC 3848 protocol keyword: SMTP, ESMTP, UTF8SMTP ... */
  protocol: string;
  messageId: string;
  /** `TLSv1.3 TLS_AES_256_GCM_SHA384`, or '' in clear. */
  tls?: string;
  /** The logged-in account, or ''. */
  authenticatedAs?: string;
  envelopeFrom: string;
  recipients: string[];
  date: Date;
}

/**
 * The `Return-Path:` field, added only at final delivery into a mailbox
 * (RFC 5321 4.4): a copy that goes on to another server must not carry one.
 */
export function returnPathHeader(envelopeFrom: string): Buffer {
  return Buffer.from(`Return-Path: <${envelopeFrom}>\n`, 'utf8');
}

/** The `Received:` trace field (RFC 5321 4.4), LF line endings. */
export function traceHeader(info: TraceInfo): Buffer {
  const address = info.clientAddress.includes(':') ? `IPv6:${info.clientAddress}` : info.clientAddress;
  // Naming the recipient is only safe when there is one (Postfix does the same):
  // otherwise each recipient would learn the others, including Bcc ones.
  const forClause = info.recipients.length === 1 ? `\n\tfor <${info.recipients[0]}>` : '';
  // Comments as Postfix writes them, for whoever reads the header later.
  const comments =
    (info.tls ? `\n\t(using ${info.tls})` : '') +
    (info.authenticatedAs ? `\n\t(Authenticated sender: ${info.authenticatedAs})` : '');
  return Buffer.from(
    `Received: from ${info.heloName} ([${address}])${comments}\n` +
      `\tby ${info.hostname} (jjordan-mail) with ${info.protocol} id ${info.messageId}${forClause};\n` +
      `\t${formatMessageDate(info.date)}\n`,
    'utf8',
  );
}

/** The client's header without the fields in STATE_HEADERS. */
export function cleanHeader(header: Buffer): Buffer {
  return removeFields(header, STATE_HEADERS);
}

/** The bytes to store: trace fields, the cleaned header, a blank line, the body. */
export function storedContent(trace: Buffer, cleanedHeader: Buffer, message: ReceivedMessage): () => AsyncIterable<Buffer> {
  const header = Buffer.concat([trace, cleanedHeader, Buffer.from('\n')]);
  return async function* () {
    yield header;
    yield* message.body.read();
  };
}

export interface LocalDelivery {
  dataDir: string;
  appender: MboxAppender;
}

/**
 * Append the message to the INBOX of every account. Resolves when all are
 * durable; rejects if any failed (the caller answers 451).
 */
export async function deliverToAccounts(
  delivery: LocalDelivery,
  accounts: string[],
  envelopeFrom: string,
  date: Date,
  content: () => AsyncIterable<Buffer>,
): Promise<void> {
  const unique = [...new Set(accounts)];
  const results = await Promise.allSettled(
    unique.map((account) =>
      delivery.appender.append(mailboxPath(delivery.dataDir, account, 'INBOX'), { envelopeFrom, date, content }),
    ),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}
