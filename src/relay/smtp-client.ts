// The relay's SMTP client: it hands one queued message to another mail server
// (an MX host or a smarthost) and reports, recipient by recipient, what that
// server said. Deciding when to retry and writing bounces is the queue's job;
// this file runs one conversation, from connect to QUIT.
//
// The conversation (RFC 5321 3, 3.3) in the order of deliverMessage's steps:
//
//   1. connect               TCP, then TLS at once for implicit TLS (RFC 8314)
//   2. greeting              220
//   3. EHLO                  HELO if the server does not know EHLO (RFC 5321 3.2)
//   4. STARTTLS, EHLO again  RFC 3207
//   5. AUTH                  RFC 4954, only over TLS
//   6. check the message     SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531)
//   7. MAIL, RCPT..., DATA   in one write with PIPELINING (RFC 2920), else one by one
//   8. the message           dot-stuffed (RFC 5321 4.5.2), with back-pressure
//   9. the final reply       one reply for every accepted recipient
//  10. QUIT
//
// Every wait has the timeout RFC 5321 4.5.3.2 gives its stage. Whatever
// happens, the socket is destroyed at the end.
//
// TLS policy (the `tls` and `verifyCertificate` fields of a request):
// - verifyCertificate off, 'opportunistic': STARTTLS when offered, any
//   certificate, and when the handshake fails one more try in clear, as
//   Postfix does at its default level "may" (RFC 7435).
// - verifyCertificate on: the certificate must be valid for the host name.
//   A handshake or verification failure fails this host with 4.7.5 and is
//   never followed by clear text: that would be a downgrade anyone in the
//   middle could force (Postfix's levels "verify" and "secure").
//
// Invariants:
// - Credentials are sent only over TLS and never logged.
// - "Delivered" is only ever reported after the server's 2xx to the final
//   dot: until then the server has promised nothing (RFC 5321 4.1.1.4).

import { ClientConnection } from './smtp-client-connection.ts';
import type { ClientTarget, Log } from './smtp-client-connection.ts';
import { authenticate, checkMessageFits, closeEmptyData, fail, hello, isPositive, mailCommand, readOrFail, send, TransactionFailed } from './smtp-client-steps.ts';
import type { Extensions, Stage } from './smtp-client-steps.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import type { SmtpResult, ServerReply } from './smtp-reply-reader.ts';

export type { SmtpResult } from './smtp-reply-reader.ts';
export type { Stage } from './smtp-client-steps.ts';

export interface SmtpClientTimeouts {
  connectMs: number;
  greetingMs: number;
  commandMs: number;
  dataStartMs: number;
  dataBlockMs: number;
  dataEndMs: number;
}

const MINUTE = 60_000;

/** RFC 5321 4.5.3.2's minimums; connecting (and TLS handshakes) get 30 s. */
export const DEFAULT_TIMEOUTS: SmtpClientTimeouts = {
  connectMs: 30_000,
  greetingMs: 5 * MINUTE, // 4.5.3.2.1 initial 220 message
  commandMs: 5 * MINUTE, // 4.5.3.2.2 MAIL, 4.5.3.2.3 RCPT (and EHLO, STARTTLS, AUTH)
  dataStartMs: 2 * MINUTE, // 4.5.3.2.4 DATA initiation (the 354)
  dataBlockMs: 3 * MINUTE, // 4.5.3.2.5 each write of message data
  dataEndMs: 10 * MINUTE, // 4.5.3.2.6 the reply to the final dot
};

export interface DeliveryRequest {
  /** IP address or name to connect to. */
  host: string;
  port: number;
  /** The MX host name, for TLS SNI and certificate verification. */
  servername?: string;
  /** Our host name, for EHLO. */
  heloName: string;
  /** The reverse path; '' for the null sender <>. */
  from: string;
  recipients: string[];
  /** The message with LF line endings, as stored; called once per attempt. */
  message: () => AsyncIterable<Buffer>;
  /** Octets as sent with CRLF line endings, for SIZE= (RFC 1870). */
  size: number;
  eightBit: boolean;
  smtputf8: boolean;
  tls: 'opportunistic' | 'required' | 'implicit' | 'none';
  /** Verify the certificate against the system roots, or against `ca` when given. */
  verifyCertificate: boolean;
  ca?: string | Buffer;
  /** AUTH PLAIN (LOGIN if only LOGIN is offered), only over TLS. */
  auth?: { username: string; password: string };
  /** XCLIENT ADDR= (Postfix's extension), where offered: the address a trusted client (the webmail) acts for. */
  xclientAddress?: string;
  timeouts?: Partial<SmtpClientTimeouts>;
  /** One line per step, for --trace style logs (never the password). */
  log?: (line: string) => void;
}

export interface RecipientOutcome {
  address: string;
  /** The reply that decided this recipient: its RCPT reply if refused, else the final reply. */
  reply: SmtpResult;
  delivered: boolean;
  permanent: boolean;
}

export type DeliveryOutcome =
  /**
   * The transaction ran to its end: the final dot got a reply (2xx, 4xx or
   * 5xx, see each recipient), or no recipient was accepted and DATA was not
   * sent (then finalReply is the last RCPT reply).
   */
  | { kind: 'done'; recipients: RecipientOutcome[]; tls: boolean; finalReply: SmtpResult }
  /**
   * Nothing was delivered. `reply` is the server's reply, present only when
   * the server sent one. Otherwise `error` says what went wrong on our side
   * (no connection, a timeout, a failed handshake, or a check made here
   * before sending: SIZE, 8BITMIME, SMTPUTF8, TLS required) and `status`
   * its RFC 3463 code.
   */
  | { kind: 'failed'; stage: Stage; reply?: SmtpResult; error?: string; status?: string; permanent: boolean; tls: boolean };

/** RFC 3463 X.7.5, cryptographic failure: what Postfix reports when TLS cannot be set up or verified. */
const TLS_FAILED = '4.7.5';

/** Run one delivery attempt; never throws for anything the network or the server does. */
export async function deliverMessage(request: DeliveryRequest): Promise<DeliveryOutcome> {
  if (request.recipients.length === 0) throw new RangeError('deliverMessage needs at least one recipient');
  const outcome = await attempt(request);
  // A failed handshake leaves the connection unusable. Opportunistic TLS
  // without verification means "encrypt if possible", so try once more in
  // clear, as Postfix does: a man in the middle could force clear text anyway
  // by hiding STARTTLS. With verification asked for, never: see the header.
  if (request.tls === 'opportunistic' && !request.verifyCertificate && outcome.kind === 'failed' && outcome.stage === 'starttls') {
    request.log?.(`TLS failed (${outcome.error ?? outcome.reply?.text}); retrying without TLS`);
    return attempt({ ...request, tls: 'none' });
  }
  return outcome;
}

async function attempt(request: DeliveryRequest): Promise<DeliveryOutcome> {
  const timeouts: SmtpClientTimeouts = { ...DEFAULT_TIMEOUTS, ...request.timeouts };
  const log: Log = request.log ?? (() => {});
  const target: ClientTarget = {
    host: request.host,
    port: request.port,
    servername: request.servername,
    verifyCertificate: request.verifyCertificate,
    ca: request.ca,
  };

  // Step 1: connect. Every failure to connect is temporary: another MX, or
  // the same one later, may work.
  const opened = await ClientConnection.open(target, timeouts.connectMs, log);
  if (typeof opened === 'string') {
    log(opened);
    return { kind: 'failed', stage: 'connect', error: opened, permanent: false, tls: false };
  }
  const conn = opened;
  try {
    if (request.tls === 'implicit') {
      const error = await conn.startTls(target, timeouts.connectMs);
      if (error) throw fail('connect', { error, status: TLS_FAILED, polite: false });
    }
    return await converse(conn, request, target, timeouts);
  } catch (error) {
    if (!(error instanceof TransactionFailed)) throw error;
    // RFC 5321 4.1.1.10: leave with QUIT if the conversation is still in step.
    if (error.polite) await conn.quit(quitTimeout(timeouts));
    return { ...error.failure, tls: conn.isSecure };
  } finally {
    conn.destroy();
  }
}

async function converse(conn: ClientConnection, request: DeliveryRequest, target: ClientTarget, timeouts: SmtpClientTimeouts): Promise<DeliveryOutcome> {
  // Step 2: the greeting. A 554 greeting means "no SMTP service here" (RFC 5321 3.1).
  await readOrFail(conn, 'greeting', timeouts.greetingMs, 2);

  // Step 3: EHLO, falling back to HELO (no extensions) for old servers.
  let extensions: Extensions = await hello(conn, request.heloName, timeouts.commandMs);

  // Step 4: STARTTLS.
  const wantsTls = request.tls === 'opportunistic' || request.tls === 'required';
  if (wantsTls && !conn.isSecure) {
    if (!extensions.has('STARTTLS')) {
      // Postfix defers in this case (a 4.7.x status): the next try may reach an MX that offers it.
      if (request.tls === 'required') {
        throw fail('starttls', { error: 'TLS is required, but the server does not offer STARTTLS', status: '4.7.4', permanent: false, polite: true });
      }
    } else {
      await send(conn, 'starttls', ['STARTTLS'], timeouts.commandMs);
      const reply = await readOrFail(conn, 'starttls', timeouts.commandMs, 0);
      if (reply.code === 220) {
        const error = await conn.startTls(target, timeouts.connectMs);
        if (error) throw fail('starttls', { error, status: TLS_FAILED });
        // RFC 3207 4.2: forget what the server said in clear and ask again.
        extensions = await hello(conn, request.heloName, timeouts.commandMs);
      } else if (request.tls === 'required') {
        throw fail('starttls', { reply, permanent: false }); // our policy, not the message: temporary
      }
      // Opportunistic and refused: the session is still good in clear.
    }
  }

  // Step 4b: XCLIENT ADDR, offered only to trusted clients; the server greets again, so EHLO again.
  if (request.xclientAddress && extensions.has('XCLIENT')) {
    const address = request.xclientAddress.includes(':') ? `IPV6:${request.xclientAddress}` : request.xclientAddress;
    await send(conn, 'ehlo', [`XCLIENT ADDR=${address}`], timeouts.commandMs);
    await readOrFail(conn, 'ehlo', timeouts.commandMs, 2);
    extensions = await hello(conn, request.heloName, timeouts.commandMs);
  }

  // Step 5: AUTH (RFC 4954).
  if (request.auth) await authenticate(conn, request.auth, extensions, timeouts.commandMs);

  // Step 6: refuse now what the server would refuse, or mangle, later.
  checkMessageFits(request, extensions);

  // Step 7: the envelope.
  const mail = mailCommand(request, extensions);
  const rcpts = request.recipients.map((address) => `RCPT TO:<${address}>`);
  let mailReply: ServerReply;
  const rcptReplies: ServerReply[] = [];
  let dataReply: ServerReply | null = null;
  if (extensions.has('PIPELINING')) {
    // RFC 2920 3.1: MAIL, every RCPT and DATA (last in the group) in one
    // write; then read the replies in the order of the commands.
    await send(conn, 'mail', [mail, ...rcpts, 'DATA'], timeouts.commandMs);
    mailReply = await readOrFail(conn, 'mail', timeouts.commandMs, 0);
    for (let i = 0; i < rcpts.length; i++) rcptReplies.push(await readOrFail(conn, 'rcpt', timeouts.commandMs, 0));
    dataReply = await readOrFail(conn, 'data', timeouts.dataStartMs, 0);
    if (!isPositive(mailReply) || !rcptReplies.some(isPositive)) await closeEmptyData(conn, dataReply, timeouts.commandMs);
    if (!isPositive(mailReply)) throw fail('mail', { reply: mailReply });
  } else {
    await send(conn, 'mail', [mail], timeouts.commandMs);
    mailReply = await readOrFail(conn, 'mail', timeouts.commandMs, 2);
    for (const rcpt of rcpts) {
      await send(conn, 'rcpt', [rcpt], timeouts.commandMs);
      rcptReplies.push(await readOrFail(conn, 'rcpt', timeouts.commandMs, 0));
    }
  }
  const refused = (i: number): RecipientOutcome => {
    const reply = rcptReplies[i];
    return { address: request.recipients[i], reply: result(reply), delivered: false, permanent: reply.code >= 500 };
  };

  // No recipient accepted: nothing to send. QUIT (step 10) ends the transaction.
  if (!rcptReplies.some(isPositive)) {
    await conn.quit(quitTimeout(timeouts));
    const last = rcptReplies[rcptReplies.length - 1];
    return { kind: 'done', recipients: request.recipients.map((_, i) => refused(i)), tls: conn.isSecure, finalReply: result(last) };
  }
  if (!dataReply) {
    await send(conn, 'data', ['DATA'], timeouts.commandMs);
    dataReply = await readOrFail(conn, 'data', timeouts.dataStartMs, 0);
  }
  if (dataReply.code !== 354) throw fail('data', { reply: dataReply });

  // Step 8: the message, dot-stuffed, with CRLF line endings and the end marker.
  await sendMessage(conn, request.message, timeouts.dataBlockMs);

  // Step 9: the final reply: one verdict for every recipient accepted at RCPT.
  // The long timeout is deliberate (RFC 5321 4.5.3.2.6): giving up while the
  // server is still working may make it deliver a message we will send again.
  const finalReply = result(await readOrFail(conn, 'dot', timeouts.dataEndMs, 0));
  const recipients = request.recipients.map((address, i): RecipientOutcome => {
    if (!isPositive(rcptReplies[i])) return refused(i);
    return { address, reply: finalReply, delivered: finalReply.code < 300, permanent: finalReply.code >= 500 };
  });

  // Step 10: QUIT.
  await conn.quit(quitTimeout(timeouts));
  return { kind: 'done', recipients, tls: conn.isSecure, finalReply };
}

/**
 * Step 8 in detail: stream the stored message through the DotWriter. Each
 * write waits for the socket to drain, so only a socket buffer's worth of the
 * message is in memory however large it is.
 */
async function sendMessage(conn: ClientConnection, message: () => AsyncIterable<Buffer>, blockMs: number): Promise<void> {
  const writer = new DotWriter();
  let octets = 0;
  const write = async (bytes: Buffer) => {
    octets += bytes.length;
    const error = await conn.write(bytes, blockMs);
    if (error) throw fail('data', { error });
  };
  try {
    for await (const chunk of message()) await write(writer.push(chunk));
  } catch (error) {
    if (error instanceof TransactionFailed) throw error;
    // We cannot take back what we sent, and the end marker would deliver a
    // truncated message. Dropping the connection without it makes the server
    // throw the message away (RFC 5321 4.1.1.4: only the final dot commits).
    throw fail('data', { error: `reading the message failed: ${error instanceof Error ? error.message : String(error)}` });
  }
  await write(writer.end());
  conn.log(`C: (message: ${octets} octets, dot-stuffed, end marker included)`);
}

function result(reply: ServerReply): SmtpResult {
  return { code: reply.code, enhanced: reply.enhanced, text: reply.text };
}

/** QUIT is a courtesy; never wait long for its reply. */
function quitTimeout(timeouts: SmtpClientTimeouts): number {
  return Math.min(timeouts.commandMs, 5000);
}
