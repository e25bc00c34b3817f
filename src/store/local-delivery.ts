// Final delivery into local mailboxes (RFC 5321 4.4), shared by everything
// that delivers locally: the SMTP server (smtp/delivery.ts, smtp/receive.ts)
// and the relay, which puts bounces for our own users straight into their
// INBOX. Both go the same way, so both messages carry the same trace fields:
//
//   Return-Path: <sender>      added only at final delivery (RFC 5321 4.4)
//   Received: from ... by ...  who handed us the message, when, and how
//
// and both are appended under the dot-lock and fsync'd by the MboxAppender
// (store/mbox-append.ts) before the caller reports success. Then the
// sessions that have the INBOX open in this process are told
// (mailbox-registry.ts); the relay, another process, is noticed by their
// poll instead.

import { formatMessageDate } from '../mime/header.ts';
import { mailboxTouched } from './mailbox-registry.ts';
import type { MboxAppender } from './mbox-append.ts';
import { mailboxPath } from './paths.ts';

export interface TraceInfo {
  /** The name the client gave in EHLO/HELO, or 'unknown'; `localhost` for mail made on this host. */
  heloName: string;
  /** The client's IP address; '' for mail made on this host (no TCP-info then, RFC 5321 4.4). */
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
  const tcpInfo = address ? ` ([${address}])` : '';
  // Naming the recipient is only safe when there is one (Postfix does the same):
  // otherwise each recipient would learn the others, including Bcc ones.
  const forClause = info.recipients.length === 1 ? `\n\tfor <${info.recipients[0]}>` : '';
  // Comments as Postfix writes them, for whoever reads the header later.
  const comments =
    (info.tls ? `\n\t(using ${info.tls})` : '') +
    (info.authenticatedAs ? `\n\t(Authenticated sender: ${info.authenticatedAs})` : '');
  return Buffer.from(
    `Received: from ${info.heloName}${tcpInfo}${comments}\n` +
      `\tby ${info.hostname} (jjordan-mail) with ${info.protocol} id ${info.messageId}${forClause};\n` +
      `\t${formatMessageDate(info.date)}\n`,
    'utf8',
  );
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
    unique.map(async (account) => {
      const inbox = inboxPath(delivery.dataDir, account);
      await delivery.appender.append(inbox, { envelopeFrom, date, content });
      mailboxTouched(inbox); // sessions on this INBOX (IMAP IDLE) see the new mail now, not at the next poll
    }),
  );
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

/**
 * INBOX paths by data directory and account. Working one out (and checking
 * it cannot leave the account's directory, paths.ts) costs more than the
 * rest of a small delivery's bookkeeping, and it is the same for every
 * message: so it is done once per account. Bounded: a server with more
 * accounts than this starts over.
 */
const inboxPaths = new Map<string, string>();
const MAX_INBOX_PATHS = 1024;

function inboxPath(dataDir: string, account: string): string {
  const key = `${dataDir}\0${account}`;
  let inbox = inboxPaths.get(key);
  if (inbox === undefined) {
    inbox = mailboxPath(dataDir, account, 'INBOX'); // throws for an invalid account name: nothing is kept
    if (inboxPaths.size >= MAX_INBOX_PATHS) inboxPaths.clear();
    inboxPaths.set(key, inbox);
  }
  return inbox;
}
