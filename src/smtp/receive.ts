// After DATA's 354: read the message, apply the limits, deliver it, and say
// 250 only once every copy is durably on disk (fsync'd): local recipients in
// their mbox, remote ones (from logged-in users) in one outbound queue file.
// Any failure before that is 451 4.3.0, so the client keeps the message and
// tries again.

import { newId } from '../queue/queue-id.ts';
import { LockTimeoutError } from '../store/dotlock.ts';
import { receiveMessage } from './message.ts';
import { traceHeader, returnPathHeader, storedContent, cleanHeader, deliverToAccounts } from './delivery.ts';
import { writeQueueFile } from '../queue/queue-file.ts';
import { reply } from './reply.ts';
import type { Reply } from './reply.ts';
import type { Session } from './session.ts';

/** Header sections larger than this are refused (Postfix: header_size_limit, 100 KiB). */
const MAX_HEADER_BYTES = 256 * 1024;

export async function receiveAndDeliver(session: Session): Promise<Reply | null> {
  const { config, tmpDir, delivery } = session.ctx;
  const envelope = session.envelope!;
  const received = await receiveMessage(session.conn, {
    maxBytes: config.limits.maxMessageBytes,
    maxHeaderBytes: MAX_HEADER_BYTES,
    memoryBufferBytes: config.limits.memoryBufferBytes,
    tmpDir,
  });
  session.resetTransaction(); // whatever happens next, this transaction is over
  if (!received.ok) {
    session.log.event('aborted', { reason: `client ${received.reason} during DATA`, stored: 'nothing' });
    // RFC 5321 4.5.3.2.6: a client silent in the middle of DATA is timed out; say so if it still listens.
    if (received.reason === 'timeout') return reply(421, '4.4.2', `${config.hostname} Timeout during DATA, closing connection`, true);
    return null;
  }
  const message = received.message;
  const to = envelope.recipients.map((r) => `<${r.address}>`).join(',');
  if (message.problem === 'too-big') {
    session.log.event('refused', { reason: 'message-too-big', size: message.size, from: `<${envelope.from}>` });
    return reply(552, '5.3.4', 'Message size exceeds fixed maximum message size');
  }
  if (message.problem === 'header-too-big') {
    session.log.event('refused', { reason: 'header-too-big', from: `<${envelope.from}>` });
    return reply(552, '5.3.4', 'Message header too large');
  }
  if (message.problem === 'spool-failed') {
    session.log.event('deferred', { reason: message.spoolError, from: `<${envelope.from}>`, to, stored: 'nothing' });
    return reply(451, '4.3.0', 'Local error in processing, message not accepted, try again later');
  }

  const id = newId();
  const date = new Date();
  const trace = traceHeader({
    heloName: session.heloName || 'unknown',
    clientAddress: session.conn.remoteAddress,
    hostname: config.hostname,
    protocol: protocolKeyword(envelope.utf8, session.extended, session.conn.isSecure, session.authenticatedAs !== null),
    tls: session.conn.tlsDescription,
    authenticatedAs: session.authenticatedAs ?? '',
    messageId: id,
    envelopeFrom: envelope.from,
    recipients: envelope.recipients.map((r) => r.address),
    date,
  });
  // Return-Path only in the mailbox copies; the queued copy travels on (RFC 5321 4.4).
  const header = cleanHeader(message.header);
  const localContent = storedContent(Buffer.concat([returnPathHeader(envelope.from), trace]), header, message);
  const queuedContent = storedContent(trace, header, message);
  const local = envelope.recipients.filter((r) => !r.remote);
  const remote = envelope.recipients.filter((r) => r.remote);
  try {
    const copies: Promise<unknown>[] = [];
    if (local.length > 0) {
      copies.push(deliverToAccounts(delivery, local.flatMap((r) => r.accounts), envelope.from, date, localContent));
    }
    if (remote.length > 0) {
      const queueEnvelope = {
        id,
        from: envelope.from,
        to: remote.map((r) => r.address),
        arrived: date,
        auth: session.authenticatedAs ?? '',
        body: envelope.eightBit ? ('8bitmime' as const) : ('7bit' as const),
        smtputf8: envelope.utf8,
      };
      copies.push(writeQueueFile(delivery.dataDir, queueEnvelope, queuedContent));
    }
    // allSettled first: never answer while a copy is still being written.
    const results = await Promise.allSettled(copies);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  } catch (err) {
    const why = err instanceof LockTimeoutError ? 'mailbox locked' : (err as Error).message;
    session.log.event('deferred', { id, reason: why, from: `<${envelope.from}>`, to });
    return reply(451, '4.3.0', 'Local error in processing, message not accepted, try again later');
  } finally {
    await message.body.discard();
  }
  session.log.event('accepted', {
    id,
    size: message.size,
    from: `<${envelope.from}>`,
    to,
    queued: remote.length > 0 ? remote.length : undefined,
    account: session.authenticatedAs ?? undefined,
  });
  return reply(250, '2.0.0', `Ok: queued as ${id}`);
}

/**
 * The `with` keyword of the Received: field: ESMTP, plus S for TLS and A for
 * AUTH (RFC 3848: ESMTPS, ESMTPA, ESMTPSA), or UTF8SMTP... (RFC 6531 4.3).
 */
export function protocolKeyword(utf8: boolean, extended: boolean, tls: boolean, authenticated: boolean): string {
  const base = utf8 ? 'UTF8SMTP' : extended ? 'ESMTP' : 'SMTP';
  if (base === 'SMTP') return base; // HELO sessions have no registered S/A variants
  return base + (tls ? 'S' : '') + (authenticated ? 'A' : '');
}
