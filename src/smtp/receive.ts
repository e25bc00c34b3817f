// After DATA's 354: read the message, apply the limits and the sender rules,
// deliver it, and say 250 only once every copy is durably on disk (fsync'd):
// local recipients in their mbox, remote ones (from logged-in users) in one
// outbound queue file. Any failure before that is a 4xx, so the client keeps
// the message and tries again: 452 4.3.1 when the disk is full (RFC 3463:
// "mail system full"), 451 4.3.0 for anything else.
//
// The rule: a 4xx after DATA leaves no copy anywhere, so the client's retry
// delivers each copy once. SMTP has one reply for all recipients after DATA
// (RFC 5321 4.1.1.4; only LMTP answers per recipient), so the copies are
// written in the order that lets each failure be undone:
//
//   1. the queue file, written and fsync'd in queue/tmp/, invisible to the
//      relay (it is the step most likely to fail: a new file, the whole
//      message). Failure: 4xx, nothing was delivered.
//   2. the local mbox appends, each fsync'd. Failure: the prepared queue
//      file is removed, 4xx.
//   3. the queue file renamed into queue/ and the directory fsync'd, a step
//      that writes no data. Only now may the relay see it, and we say 250.
//
// What cannot be undone: an mbox append that succeeded while another
// recipient's mailbox failed (or step 3 failed). Once the dot-lock is
// released, a POP3 or IMAP session may already have seen the message, and
// another delivery may follow it in the file, so it is not cut back; the
// retry gives that recipient a second copy. Postfix avoids this with a queue
// in front of its local delivery; we deliver straight into the mbox (see
// delivery.ts), and a duplicate is acceptable where a lost message is not.

import { newId } from '../queue/queue-id.ts';
import { LockTimeoutError } from '../store/dotlock.ts';
import { isDiskFull } from '../store/disk-full.ts';
import { receiveMessage } from './message.ts';
import type { ReceivedMessage } from './message.ts';
import { traceHeader, returnPathHeader, storedContent, cleanHeader, deliverToAccounts } from './delivery.ts';
import { headerSenders } from './sender-policy.ts';
import { prepareQueueFile } from '../queue/queue-file.ts';
import type { PreparedQueueFile } from '../queue/queue-file.ts';
import { reply } from './reply.ts';
import type { Reply } from './reply.ts';
import type { SessionIO } from '../protocol/types.ts';
import { resetTransaction } from './types.ts';
import type { Envelope, SmtpContext, SmtpOutcome, SmtpState } from './types.ts';

/** Header sections larger than this are refused (Postfix: header_size_limit, 100 KiB). */
const MAX_HEADER_BYTES = 256 * 1024;

/** The DATA follow-up: returns the final reply, or null when the client vanished (nothing is stored). */
export async function receiveAndDeliver(io: SessionIO<Reply, SmtpState>, ctx: SmtpContext): Promise<SmtpOutcome | null> {
  const { config, tmpDir } = ctx;
  const state = io.state;
  const envelope = state.envelope!;
  const received = await receiveMessage(io.conn, {
    maxBytes: config.limits.maxMessageBytes,
    maxHeaderBytes: MAX_HEADER_BYTES,
    memoryBufferBytes: config.limits.memoryBufferBytes,
    budget: ctx.memory,
    tmpDir,
  });
  // Whatever happens next, this transaction is over.
  const done = (r: Reply): SmtpOutcome => ({ change: resetTransaction(state), reply: r });
  if (!received.ok) {
    io.log.event('aborted', { reason: `client ${received.reason} during DATA`, stored: 'nothing' });
    // RFC 5321 4.5.3.2.6: a client silent in the middle of DATA is timed out; say so if it still listens.
    if (received.reason !== 'timeout') return null;
    return { ...done(reply(421, '4.4.2', `${config.hostname} Timeout during DATA, closing connection`)), next: { kind: 'close' } };
  }
  const message = received.message;
  try {
    const refusal = await check(io, ctx, envelope, message);
    if (refusal) return done(refusal);
    return done(await deliver(io, ctx, envelope, message));
  } finally {
    await message.body.discard();
  }
}

/** The limits and the header sender rule; a reply when the message is refused. */
async function check(io: SessionIO<Reply, SmtpState>, ctx: SmtpContext, envelope: Envelope, message: ReceivedMessage): Promise<Reply | null> {
  const from = `<${envelope.from}>`;
  if (message.problem === 'too-big') {
    io.log.event('refused', { reason: 'message-too-big', size: message.size, from });
    return reply(552, '5.3.4', 'Message size exceeds fixed maximum message size');
  }
  if (message.problem === 'header-too-big') {
    io.log.event('refused', { reason: 'header-too-big', from });
    return reply(552, '5.3.4', 'Message header too large');
  }
  if (message.problem === 'spool-failed') {
    io.log.event('deferred', { reason: message.spoolError?.message, from, stored: 'nothing' });
    return tryAgainLater(message.spoolError);
  }
  // On submission the header's From must be the user's too, not only the
  // envelope's: otherwise the relay would DKIM-sign a forged From and the
  // forgery would pass DMARC (mox refuses such mail the same way).
  const user = io.state.authenticatedAs;
  if (ctx.role === 'submission' && user) {
    const own = await ctx.accounts.addressesOf(user);
    const foreign = headerSenders(message.header).find((address) => !own.includes(address));
    if (foreign !== undefined) {
      io.log.event('refused', { reason: 'header-from-not-owned', account: user, headerFrom: `<${foreign}>` });
      return reply(550, '5.7.1', `From: <${foreign}> is not an address of user ${user}`);
    }
  }
  return null;
}

/** Store every copy; the reply says whether all of them are durable. */
async function deliver(io: SessionIO<Reply, SmtpState>, ctx: SmtpContext, envelope: Envelope, message: ReceivedMessage): Promise<Reply> {
  const { config, delivery } = ctx;
  const state = io.state;
  const id = newId();
  const date = new Date();
  const to = envelope.recipients.map((r) => `<${r.address}>`).join(',');
  const trace = traceHeader({
    heloName: state.heloName || 'unknown',
    clientAddress: io.conn.remoteAddress,
    hostname: config.hostname,
    protocol: protocolKeyword(envelope.utf8, state.extended, io.conn.isSecure, state.authenticatedAs !== null),
    tls: io.conn.tlsDescription,
    authenticatedAs: state.authenticatedAs ?? '',
    messageId: id,
    envelopeFrom: envelope.from,
    recipients: envelope.recipients.map((r) => r.address),
    date,
  });
  // Return-Path only in the mailbox copies; the queued copy travels on (RFC 5321 4.4).
  const header = cleanHeader(message.header);
  const local = envelope.recipients.filter((r) => !r.remote);
  const remote = envelope.recipients.filter((r) => r.remote);
  const deferred = (err: unknown): Reply => {
    const why = err instanceof LockTimeoutError ? 'mailbox locked' : (err as Error).message;
    io.log.event('deferred', { id, reason: why, from: `<${envelope.from}>`, to });
    return tryAgainLater(err);
  };

  // Steps 1 to 3 of the header.
  let queued: PreparedQueueFile | null = null;
  if (remote.length > 0) {
    const queueEnvelope = {
      id,
      from: envelope.from,
      to: remote.map((r) => r.address),
      arrived: date,
      auth: state.authenticatedAs ?? '',
      body: envelope.eightBit ? ('8bitmime' as const) : ('7bit' as const),
      smtputf8: envelope.utf8,
    };
    try {
      queued = await prepareQueueFile(delivery.dataDir, queueEnvelope, storedContent(trace, header, message));
    } catch (err) {
      return deferred(err);
    }
  }
  if (local.length > 0) {
    const content = storedContent(Buffer.concat([returnPathHeader(envelope.from), trace]), header, message);
    try {
      await deliverToAccounts(delivery, local.flatMap((r) => r.accounts), envelope.from, date, content);
    } catch (err) {
      await queued?.discard();
      return deferred(err);
    }
  }
  try {
    await queued?.commit();
  } catch (err) {
    return deferred(err);
  }
  io.log.event('accepted', {
    id,
    size: message.size,
    from: `<${envelope.from}>`,
    to,
    queued: remote.length > 0 ? remote.length : undefined,
    account: state.authenticatedAs ?? undefined,
  });
  return reply(250, '2.0.0', `Ok: queued as ${id}`);
}

/** A temporary failure; a full disk says so (RFC 3463 4.3.1), as Postfix's 452 does. */
function tryAgainLater(error: unknown): Reply {
  if (isDiskFull(error)) return reply(452, '4.3.1', 'Insufficient system storage, try again later');
  return reply(451, '4.3.0', 'Local error in processing, message not accepted, try again later');
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
