// The steps of the relay's SMTP conversation that need more than a few lines:
// EHLO/HELO and its keywords (RFC 5321 4.1.1.1, 3.2), AUTH (RFC 4954), the
// checks of the message against the server's extensions (RFC 1870 SIZE,
// RFC 6152 8BITMIME, RFC 6531 SMTPUTF8) and the MAIL command that uses them.
// smtp-client.ts calls them in order; read that file first.
//
// A step that cannot go on throws TransactionFailed: every step can end the
// transaction, and throwing keeps the sequence in smtp-client.ts readable as
// a sequence instead of a ladder of `if (failed) return`.

import type { ClientConnection } from './smtp-client-connection.ts';
import type { ServerReply, SmtpResult } from './smtp-reply-reader.ts';

export type Stage = 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'dot';

/** EHLO keywords, upper case, to their parameters: `SIZE` -> `10240000`, `PIPELINING` -> ''. */
export type Extensions = Map<string, string>;

/** How a transaction ended early; smtp-client.ts adds whether TLS was on. */
export interface Failure {
  kind: 'failed';
  stage: Stage;
  /** Only a reply the server really sent: a bounce names the server and quotes it. */
  reply?: SmtpResult;
  /** What went wrong on our side (no reply, or a check made here before sending). */
  error?: string;
  /** RFC 3463 status for a failure on our side, where the server said nothing: 4.7.5 for TLS. */
  status?: string;
  permanent: boolean;
}

export class TransactionFailed extends Error {
  readonly failure: Failure;
  /** The server is still in step with us, so a QUIT is in order. */
  readonly polite: boolean;

  constructor(failure: Failure, polite: boolean) {
    super(failure.error ?? `${failure.stage}: ${failure.reply?.code} ${failure.reply?.text}`);
    this.failure = failure;
    this.polite = polite;
  }
}

export interface FailOptions {
  reply?: SmtpResult;
  error?: string;
  status?: string;
  /** Default: a 5xx reply is permanent (RFC 5321 4.2.1), anything else temporary. */
  permanent?: boolean;
  /** Default: true when the server answered (it is waiting for our next command). */
  polite?: boolean;
}

export function fail(stage: Stage, options: FailOptions): TransactionFailed {
  const { reply, error } = options;
  const permanent = options.permanent ?? (reply !== undefined && reply.code >= 500);
  const failure: Failure = { kind: 'failed', stage, permanent };
  if (reply) failure.reply = { code: reply.code, enhanced: reply.enhanced, text: reply.text };
  if (error) failure.error = error;
  if (options.status) failure.status = options.status;
  return new TransactionFailed(failure, options.polite ?? reply !== undefined);
}

export function isPositive(reply: SmtpResult): boolean {
  return reply.code >= 200 && reply.code < 300;
}

/**
 * Read the reply for `stage`. A dropped connection, a silent server or
 * garbage ends the transaction as a temporary failure. With `expectClass`
 * (2 for 2xx) any other reply ends it too; with 0 the caller judges.
 */
export async function readOrFail(conn: ClientConnection, stage: Stage, timeoutMs: number, expectClass: number): Promise<ServerReply> {
  const read = await conn.readReply(timeoutMs);
  switch (read.kind) {
    case 'reply':
      if (expectClass && Math.floor(read.reply.code / 100) !== expectClass) throw fail(stage, { reply: read.reply });
      return read.reply;
    case 'timeout':
      throw fail(stage, { error: `no reply within ${timeoutMs} ms` });
    case 'closed':
      throw fail(stage, { error: `connection closed${read.error ? `: ${read.error}` : ''}` });
    case 'malformed':
      throw fail(stage, { error: `not an SMTP reply: ${JSON.stringify(read.line.slice(0, 200))}` });
  }
}

/** Send command lines in one write; a broken connection ends the transaction. */
export async function send(conn: ClientConnection, stage: Stage, lines: string[], timeoutMs: number, logAs?: string[]): Promise<void> {
  const error = await conn.sendCommands(lines, timeoutMs, logAs);
  if (error) throw fail(stage, { error });
}

/**
 * EHLO, or HELO for a server that answers EHLO with 5xx (RFC 5321 3.2: such
 * a server predates the extensions; the client falls back and uses none).
 */
export async function hello(conn: ClientConnection, heloName: string, timeoutMs: number): Promise<Extensions> {
  await send(conn, 'ehlo', [`EHLO ${heloName}`], timeoutMs);
  const reply = await readOrFail(conn, 'ehlo', timeoutMs, 0);
  if (reply.code === 250) return parseEhlo(reply.lines);
  if (reply.code < 500) throw fail('ehlo', { reply });
  await send(conn, 'ehlo', [`HELO ${heloName}`], timeoutMs);
  await readOrFail(conn, 'ehlo', timeoutMs, 2);
  return new Map();
}

/** RFC 5321 4.1.1.1: the first line names the server; each further line is `keyword [params]`. */
export function parseEhlo(lines: string[]): Extensions {
  const extensions: Extensions = new Map();
  for (const line of lines.slice(1)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/.exec(line.trim());
    if (match) extensions.set(match[1].toUpperCase(), (match[2] ?? '').trim());
  }
  return extensions;
}

/**
 * RFC 4954: AUTH PLAIN with the initial response (one round trip), or AUTH
 * LOGIN when that is all the server offers. Credentials go only over TLS.
 *
 * Every failure here is temporary, as with Postfix's default
 * smtp_sasl_auth_soft_bounce: a wrong password in our own configuration
 * should hold mail in the queue until it is fixed, not bounce all of it.
 */
export async function authenticate(conn: ClientConnection, auth: { username: string; password: string }, extensions: Extensions, timeoutMs: number): Promise<void> {
  if (!conn.isSecure) throw fail('auth', { error: 'refusing to send credentials without TLS', permanent: false, polite: true });
  const offered = extensions.get('AUTH');
  if (offered === undefined) {
    // Postfix does the same: the server may let us relay by address instead.
    conn.log('the server offers no AUTH; going on without authenticating');
    return;
  }
  const mechanisms = offered.toUpperCase().split(/\s+/);
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
  let reply: ServerReply;
  if (mechanisms.includes('PLAIN')) {
    // RFC 4616 2: [authzid] NUL authcid NUL passwd; no authzid: act as ourselves.
    await send(conn, 'auth', [`AUTH PLAIN ${b64(`\0${auth.username}\0${auth.password}`)}`], timeoutMs, ['AUTH PLAIN ****']);
    reply = await readOrFail(conn, 'auth', timeoutMs, 0);
  } else if (mechanisms.includes('LOGIN')) {
    await send(conn, 'auth', ['AUTH LOGIN'], timeoutMs);
    reply = await readOrFail(conn, 'auth', timeoutMs, 0);
    if (reply.code === 334) {
      // Every line of the exchange is hidden, as the server's trace hides them.
      await send(conn, 'auth', [b64(auth.username)], timeoutMs, ['****']);
      reply = await readOrFail(conn, 'auth', timeoutMs, 0);
    }
    if (reply.code === 334) {
      await send(conn, 'auth', [b64(auth.password)], timeoutMs, ['****']);
      reply = await readOrFail(conn, 'auth', timeoutMs, 0);
    }
  } else {
    throw fail('auth', { error: `no supported AUTH mechanism (server offers ${offered})`, permanent: false, polite: true });
  }
  if (reply.code !== 235) throw fail('auth', { reply, permanent: false });
}

interface MessageTraits {
  from: string;
  recipients: string[];
  size: number;
  eightBit: boolean;
  smtputf8: boolean;
}

/**
 * Refuse before MAIL what this server cannot take. The failures are
 * permanent: the same server will refuse the same message tomorrow. They
 * are our verdicts, not the server's replies: each is an error text and an
 * RFC 3463 status, and a bounce reports it as ours (Postfix does the same:
 * "message size ... exceeds size limit ... of server ...", no Remote-MTA).
 */
export function checkMessageFits(message: MessageTraits, extensions: Extensions): void {
  // A line break inside an address would end the command and start another:
  // the queue should never hold one, but a stray one must not inject commands.
  for (const address of [message.from, ...message.recipients]) {
    if (/[\r\n]/.test(address)) throw refuse('5.1.3', 'address contains a line break');
  }
  // RFC 1870 4: SIZE 0 (or no number) means no fixed limit.
  const limit = Number(extensions.get('SIZE') ?? 0);
  if (limit > 0 && message.size > limit) {
    throw refuse('5.3.4', `message of ${message.size} octets is larger than the server's limit of ${limit}`);
  }
  // RFC 6152 3: 8-bit data may only go to a server that announced 8BITMIME.
  // The other choice the RFC allows, converting to quoted-printable, would
  // break signatures (DKIM) over the body, so we return the message instead.
  if (message.eightBit && !extensions.has('8BITMIME')) {
    throw refuse('5.6.3', 'the message has 8-bit content and the server does not support 8BITMIME');
  }
  // RFC 6531 3.4: UTF-8 addresses or headers need a server that announced SMTPUTF8.
  if (message.smtputf8 && !extensions.has('SMTPUTF8')) {
    throw refuse('5.6.7', 'the message needs SMTPUTF8 and the server does not support it');
  }
}

/** A permanent failure found here, before MAIL; the server is still waiting for a command. */
function refuse(status: string, error: string): TransactionFailed {
  return fail('mail', { error, status, permanent: true, polite: true });
}

/** MAIL FROM with the parameters the server announced and the message needs. */
export function mailCommand(message: MessageTraits, extensions: Extensions): string {
  let command = `MAIL FROM:<${message.from}>`;
  if (extensions.has('SIZE')) command += ` SIZE=${message.size}`; // RFC 1870 6
  if (message.eightBit) command += ' BODY=8BITMIME'; // RFC 6152 2 (checkMessageFits made sure it is offered)
  if (message.smtputf8) command += ' SMTPUTF8'; // RFC 6531 3.4
  return command;
}

/**
 * RFC 2920 3.1: after a pipelined group whose MAIL or every RCPT failed, the
 * client cannot assume DATA was refused too. If the server said 354, it is
 * now reading a message: send the end marker alone to get it out of there.
 */
export async function closeEmptyData(conn: ClientConnection, dataReply: ServerReply, timeoutMs: number): Promise<void> {
  if (dataReply.code !== 354) return;
  await send(conn, 'data', ['.'], timeoutMs);
  await readOrFail(conn, 'dot', timeoutMs, 0);
}
