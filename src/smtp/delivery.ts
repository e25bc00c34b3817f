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
// mbox (store/local-delivery.ts), and each append is fsync'd (group commit,
// see store/mbox-append.ts) before the session answers 250. The outbound
// queue file is prepared before the appends and made visible only after
// them, so a 4xx leaves no copy in the queue and, when the queue write is
// what failed, none in any mbox (receive.ts's header has the order). One
// case is left: several local recipients, one mailbox fails (lock timeout,
// disk full) after another got the message. The session answers 451 and
// the client retries the whole message, so that recipient gets it twice: a
// committed append is not cut back once other sessions may have seen it.
// We chose this over a local queue because a duplicate is acceptable, a
// lost message never is, and direct appends keep one copy of the bytes and
// one fsync per batch: the cheapest durable path on an SD card.

import { removeFields } from '../mime/header.ts';
import type { ReceivedMessage } from './message.ts';

// Return-Path:, Received: and the append into each INBOX live in the store,
// where the relay's bounces use them too; re-exported for the SMTP side.
// deliverToAccounts also tells the INBOX's open sessions (IMAP IDLE) about
// the new mail once it is on disk (store/mailbox-registry.ts, mailboxTouched).
export { deliverToAccounts, returnPathHeader, traceHeader } from '../store/local-delivery.ts';
export type { LocalDelivery, TraceInfo } from '../store/local-delivery.ts';

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
