// The SMTP command table: for each verb, the phases that allow it and the
// handler that checks its argument and returns what should happen (RFC 5321
// 4.1.1). The mail transaction's own commands (MAIL, RCPT, DATA) are in
// transaction.ts. Handlers never touch the socket or the session's state:
// they return an Outcome, and the loop in protocol/session.ts applies it.

import { isIP } from 'node:net';
import { reply } from './reply.ts';
import type { Reply } from './reply.ts';
import { SASL_MECHANISMS, startSasl } from '../auth/sasl.ts';
import type { SaslResult } from '../protocol/types.ts';
import { inNetworks, normaliseAddress } from '../wire/client-address.ts';
import { canCarryPasswords } from '../wire/connection.ts';
import { mail, rcpt, data } from './transaction.ts';
import { INITIAL_STATE, resetTransaction } from './types.ts';
import type { Phase, SmtpCommand, SmtpOutcome, SmtpRequest, SmtpView } from './types.ts';

const ANY: readonly Phase[] = ['fresh', 'greeted', 'mail', 'rcpt'];

/** AUTH is offered on the submission ports only (as Postfix's master.cf does), and only where a password is safe. */
export function authAllowed(session: SmtpView): boolean {
  return session.ctx.role === 'submission' && canCarryPasswords(session.conn, session.ctx.config.auth.allowPlaintextOnLoopback);
}

/** EHLO (RFC 5321 4.1.1.1): greet, reset, list the extensions we offer. */
function ehlo(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  const name = argument.trim();
  if (!isHeloName(name)) return { reply: reply(501, '5.5.4', 'Syntax: EHLO hostname') };
  const { hostname, limits } = session.ctx.config;
  const extensions = [
    'PIPELINING', // RFC 2920
    `SIZE ${limits.maxMessageBytes}`, // RFC 1870
    '8BITMIME', // RFC 6152
    'ENHANCEDSTATUSCODES', // RFC 2034
    'SMTPUTF8', // RFC 6531
  ];
  // RFC 3207: STARTTLS only in clear; RFC 4954: AUTH only where a password is safe.
  if (session.ctx.tlsAvailable && !session.conn.isSecure) extensions.push('STARTTLS');
  if (authAllowed(session)) extensions.push(`AUTH ${SASL_MECHANISMS.join(' ')}`);
  if (xclientAllowed(session)) extensions.push('XCLIENT ADDR');
  return {
    change: { ...resetTransaction(session.state), phase: 'greeted', heloName: name, extended: true },
    reply: { code: 250, text: [`${hostname} Hello ${name}`, ...extensions, 'HELP'] },
  };
}

/** HELO: the pre-ESMTP greeting, no extensions. */
function helo(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  const name = argument.trim();
  if (!isHeloName(name)) return { reply: reply(501, '5.5.4', 'Syntax: HELO hostname') };
  return {
    change: { ...resetTransaction(session.state), phase: 'greeted', heloName: name, extended: false },
    reply: { code: 250, text: session.ctx.config.hostname },
  };
}

/**
 * A domain or address literal; we do not insist it resolves (as Postfix by
 * default). U+FFFD stands for bytes that were not UTF-8 (RFC 6531 3.3).
 */
function isHeloName(name: string): boolean {
  return /^[\x21-\x7e\u0080-\u{10FFFF}]{1,255}$/u.test(name) && !name.includes('\uFFFD');
}

/** STARTTLS (RFC 3207): the loop runs the handshake after this 220. */
function starttls(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  if (argument !== '') return { reply: reply(501, '5.5.4', 'STARTTLS takes no argument') };
  if (session.conn.isSecure) return { reply: reply(503, '5.5.1', 'Already using TLS') };
  if (!session.ctx.tlsAvailable) return { reply: reply(454, '4.7.0', 'TLS not available') };
  return { reply: reply(220, '2.0.0', 'Ready to start TLS'), next: { kind: 'starttls' } };
}

/** AUTH (RFC 4954): the loop runs the SASL exchange (334 challenges), then `authResult` answers. */
function auth(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  if (session.ctx.role !== 'submission') return { reply: reply(503, '5.5.1', 'Authentication not enabled on this port; use submission (587)') };
  if (session.state.authenticatedAs) return { reply: reply(503, '5.5.1', 'Already authenticated') };
  // RFC 4954 6: 538 when the mechanism would need an encrypted channel.
  if (!authAllowed(session)) return { reply: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism') };
  const [mechanism, initial, extra] = argument.split(' ');
  if (!mechanism || extra !== undefined) return { reply: reply(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]') };
  const exchange = startSasl(mechanism);
  if (!exchange) return { reply: reply(504, '5.5.4', 'Unrecognized authentication type') };
  // A trusted client's XCLIENT ADDR: the failures count against the person it serves, not against it.
  return { next: { kind: 'sasl', exchange, initial, address: session.state.clientAddress ?? undefined, then: authResult } };
}

/** XCLIENT is for the clients in auth.trustedClients (Postfix: smtpd_authorized_xclient_hosts), on submission. */
function xclientAllowed(session: SmtpView): boolean {
  return session.ctx.role === 'submission' && inNetworks(normaliseAddress(session.conn.remoteAddress), session.ctx.config.auth.trustedClients);
}

/**
 * XCLIENT ADDR=address (Postfix's extension, XCLIENT_README): a trusted
 * proxy, our webmail, says which address it is acting for, so that failed
 * logins are throttled under the browser's address, as IMAP's ID
 * x-originating-ip does. Only ADDR is taken. As in Postfix, the session
 * then starts again with a 220 greeting (the client sends EHLO again).
 */
function xclient(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  if (!xclientAllowed(session)) return { reply: reply(550, '5.7.0', 'Error: insufficient authorization') };
  if (session.state.authenticatedAs) return { reply: reply(503, '5.5.1', 'XCLIENT after AUTH') };
  const match = /^ADDR=(?:IPV6:)?([0-9A-Fa-f:.]+)$/i.exec(argument.trim());
  const address = match ? normaliseAddress(match[1]) : '';
  if (isIP(address) === 0) return { reply: reply(501, '5.5.4', 'Syntax: XCLIENT ADDR=address') };
  return {
    change: { ...INITIAL_STATE, clientAddress: address },
    reply: { code: 220, text: `${session.ctx.config.hostname} ESMTP jjordan-mail` },
  };
}

function authResult(result: SaslResult): SmtpOutcome {
  if (result.ok) return { change: { authenticatedAs: result.account }, reply: reply(235, '2.7.0', 'Authentication successful') };
  const answers: Record<typeof result.reason, Reply> = {
    cancelled: reply(501, '5.0.0', 'Authentication cancelled'),
    malformed: reply(501, '5.5.2', 'Cannot decode the authentication response'),
    'line-too-long': reply(500, '5.5.2', 'Line too long'),
    throttled: reply(454, '4.7.0', 'Temporary authentication failure, try again later'),
    'bad-credentials': reply(535, '5.7.8', 'Authentication credentials invalid'),
  };
  return { reply: answers[result.reason] };
}

function rset(session: SmtpView): SmtpOutcome {
  return { change: resetTransaction(session.state), reply: reply(250, '2.0.0', 'Ok') };
}

function quit(session: SmtpView): SmtpOutcome {
  return { reply: reply(221, '2.0.0', `${session.ctx.config.hostname} Bye`), next: { kind: 'close' } };
}

const answer = (r: Reply) => (): SmtpOutcome => ({ reply: r });

export const commandTable: Record<string, SmtpCommand> = {
  EHLO: { allowedIn: ANY, handler: ehlo },
  HELO: { allowedIn: ANY, handler: helo },
  // Like Postfix (smtpd_helo_required = no) we do not insist on EHLO before MAIL.
  MAIL: { allowedIn: ['fresh', 'greeted'], outOfSequence: 'Nested MAIL command', handler: mail },
  RCPT: { allowedIn: ['mail', 'rcpt'], outOfSequence: 'Need MAIL command', handler: rcpt },
  DATA: { allowedIn: ['mail', 'rcpt'], outOfSequence: 'Need RCPT command', handler: data },
  STARTTLS: { allowedIn: ['fresh', 'greeted'], outOfSequence: 'STARTTLS not allowed during a mail transaction', handler: starttls },
  // RFC 4954 4: AUTH comes after EHLO and never inside a mail transaction.
  AUTH: {
    allowedIn: ['greeted'],
    outOfSequence: 'AUTH needs EHLO first, and not during a mail transaction',
    handler: auth,
    redact: (line) => line.replace(/^(AUTH \S+) .*/i, '$1 ****'), // an initial response carries the password
  },
  // Not during a mail transaction (Postfix: 503).
  XCLIENT: { allowedIn: ['fresh', 'greeted'], outOfSequence: 'XCLIENT not allowed during a mail transaction', handler: xclient },
  RSET: { allowedIn: ANY, handler: rset },
  NOOP: { allowedIn: ANY, handler: answer(reply(250, '2.0.0', 'Ok')) },
  QUIT: { allowedIn: ANY, handler: quit },
  // RFC 5321 3.5.3: 252 says "cannot verify, but will try to deliver"; it does not reveal accounts.
  VRFY: { allowedIn: ANY, handler: answer(reply(252, '2.5.2', 'Cannot VRFY user, but will accept message')) },
  EXPN: { allowedIn: ANY, handler: answer(reply(502, '5.5.1', 'EXPN not available')) },
  HELP: {
    allowedIn: ANY,
    handler: answer(
      reply(214, '2.0.0', ['Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP', 'See RFC 5321, or run the server with --trace to watch a session']),
    ),
  },
};
