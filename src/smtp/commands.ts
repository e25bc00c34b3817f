// The SMTP command table: for each verb, the states that allow it and the
// handler that checks its argument and returns a reply (RFC 5321 4.1.1).
// Handlers never touch the socket; the session loop sends what they return.

import { reply } from './reply.ts';
import { parsePathArgument } from './address.ts';
import { startSasl, SASL_MECHANISMS } from '../auth/sasl.ts';
import type { SaslExchange, SaslStep } from '../auth/sasl.ts';
import { checkLogin } from '../auth/login.ts';
import type { Command, HandlerResult, Session, State } from './session.ts';

const ANY: readonly State[] = ['fresh', 'greeted', 'mail', 'rcpt'];

/** EHLO (RFC 5321 4.1.1.1): greet, reset, list the extensions we offer. */
function ehlo(session: Session, argument: string): HandlerResult {
  const name = argument.trim();
  if (!isHeloName(name)) return reply(501, '5.5.4', 'Syntax: EHLO hostname');
  session.resetTransaction();
  session.heloName = name;
  session.extended = true;
  session.state = 'greeted';
  const { hostname, limits } = session.ctx.config;
  const extensions = [
    'PIPELINING', // RFC 2920
    `SIZE ${limits.maxMessageBytes}`, // RFC 1870
    '8BITMIME', // RFC 6152
    'ENHANCEDSTATUSCODES', // RFC 2034
    'SMTPUTF8', // RFC 6531
  ];
  // RFC 3207: STARTTLS only in clear; RFC 4954: AUTH only where a password is safe.
  if (session.ctx.tls && !session.conn.isSecure) extensions.push('STARTTLS');
  if (session.authAllowed()) extensions.push(`AUTH ${SASL_MECHANISMS.join(' ')}`);
  return { code: 250, text: [`${hostname} Hello ${name}`, ...extensions, 'HELP'] };
}

/** HELO: the pre-ESMTP greeting, no extensions. */
function helo(session: Session, argument: string): HandlerResult {
  const name = argument.trim();
  if (!isHeloName(name)) return reply(501, '5.5.4', 'Syntax: HELO hostname');
  session.resetTransaction();
  session.heloName = name;
  session.extended = false;
  session.state = 'greeted';
  return { code: 250, text: session.ctx.config.hostname };
}

/** A domain or address literal; we do not insist it resolves (as Postfix by default). */
function isHeloName(name: string): boolean {
  return /^[\x21-\x7e\u0080-\u{10FFFF}]{1,255}$/u.test(name);
}

/** MAIL FROM (RFC 5321 4.1.1.2): start a transaction. */
async function mail(session: Session, argument: string): Promise<HandlerResult> {
  // RFC 6409 4.3 / RFC 4954 6: the submission ports take mail from logged-in users only.
  if (session.ctx.role === 'submission' && !session.authenticatedAs) {
    return reply(530, '5.7.0', 'Authentication required');
  }
  const parsed = parsePathArgument(argument, 'FROM');
  if (!parsed.ok) return reply(501, '5.1.7', parsed.why);
  const { params, address } = parsed.path;
  const user = session.authenticatedAs;
  // A user sends only as one of their own addresses (Postfix: reject_sender_login_mismatch),
  // so nobody can forge a neighbour's address. The null sender stays allowed (receipts).
  if (user && address !== '') {
    const own = await session.ctx.accounts.addressesOf(user);
    if (!own.includes(address.toLowerCase())) {
      session.log.event('refused', { reason: 'sender-not-owned', account: user, from: `<${address}>` });
      return reply(553, '5.7.1', `<${address}>: Sender address rejected: not owned by user ${user}`);
    }
  }
  const limit = session.ctx.config.limits.maxMessageBytes;
  let eightBit = false;
  for (const [key, value] of params) {
    if (key === 'SIZE') {
      // RFC 1870 6.1: refuse at once a message declared too large.
      if (!/^\d{1,20}$/.test(value)) return reply(501, '5.5.4', 'Bad SIZE parameter');
      if (Number(value) > limit) return reply(552, '5.3.4', `Message size exceeds fixed limit of ${limit} bytes`);
    } else if (key === 'BODY') {
      if (!/^(7BIT|8BITMIME)$/i.test(value)) return reply(501, '5.5.4', 'BODY must be 7BIT or 8BITMIME');
      eightBit = value.toUpperCase() === '8BITMIME';
    } else if (key === 'SMTPUTF8') {
      if (value !== '') return reply(501, '5.5.4', 'SMTPUTF8 takes no value');
    } else {
      // RFC 5321 4.1.1.11 / 4.5.3.2: unknown parameter.
      return reply(555, '5.5.4', `Parameter ${key} not supported`);
    }
  }
  session.envelope = { from: address, recipients: [], eightBit, utf8: params.has('SMTPUTF8') };
  session.state = 'mail';
  session.log.event('mail', { from: `<${address}>` });
  return reply(250, '2.1.0', 'Ok');
}

/** RCPT TO (RFC 5321 4.1.1.3): one recipient. Other domains only for logged-in users. */
async function rcpt(session: Session, argument: string): Promise<HandlerResult> {
  const envelope = session.envelope!;
  const parsed = parsePathArgument(argument, 'TO', envelope.utf8);
  if (!parsed.ok) return reply(501, '5.1.3', parsed.why);
  if (parsed.path.params.size > 0) return reply(555, '5.5.4', 'RCPT parameters not supported');
  const { config, accounts } = session.ctx;
  const address = parsed.path.domain === '' ? `postmaster@${config.domains[0]}` : parsed.path.address;

  // RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted; more gets 452.
  if (envelope.recipients.length >= config.limits.maxRecipients) {
    return reply(452, '4.5.3', 'Too many recipients');
  }
  const found = await accounts.resolve(address);
  if (found.kind === 'remote') {
    if (session.authenticatedAs) {
      envelope.recipients.push({ address, accounts: [], remote: true });
      session.state = 'rcpt';
      return reply(250, '2.1.5', 'Ok');
    }
    // Never an open relay: mail for other domains only from our own users.
    session.log.event('refused', { reason: 'relay-denied', to: `<${address}>` });
    return reply(554, '5.7.1', `<${address}>: Relay access denied`);
  }
  if (found.kind === 'unknown') {
    session.log.event('refused', { reason: 'unknown-user', to: `<${address}>` });
    return reply(550, '5.1.1', `<${address}>: Recipient address rejected: User unknown`);
  }
  envelope.recipients.push({ address, accounts: found.accounts, remote: false });
  session.state = 'rcpt';
  return reply(250, '2.1.5', 'Ok');
}

/** DATA (RFC 5321 4.1.1.4): the loop reads the message after our 354. */
function data(session: Session, argument: string): HandlerResult {
  if (argument !== '') return reply(501, '5.5.4', 'DATA takes no argument');
  if (session.envelope!.recipients.length === 0) return reply(554, '5.5.1', 'No valid recipients');
  return { code: 354, text: 'End data with <CR><LF>.<CR><LF>', readMessage: true };
}

/** STARTTLS (RFC 3207): the loop runs the handshake after this 220. */
function starttls(session: Session, argument: string): HandlerResult {
  if (argument !== '') return reply(501, '5.5.4', 'STARTTLS takes no argument');
  if (session.conn.isSecure) return reply(503, '5.5.1', 'Already using TLS');
  if (!session.ctx.tls) return reply(454, '4.7.0', 'TLS not available');
  return { ...reply(220, '2.0.0', 'Ready to start TLS'), startTls: true };
}

/** AUTH (RFC 4954): a SASL exchange of 334 challenges, then 235 or 535. */
function auth(session: Session, argument: string): HandlerResult | Promise<HandlerResult> {
  if (session.authenticatedAs) return reply(503, '5.5.1', 'Already authenticated');
  // RFC 4954 6: 538 when the mechanism would need an encrypted channel.
  if (!session.authAllowed()) return reply(538, '5.7.11', 'Encryption required for requested authentication mechanism');
  const [mechanism, initial, extra] = argument.split(' ');
  if (!mechanism || extra !== undefined) return reply(501, '5.5.4', 'Syntax: AUTH mechanism [initial-response]');
  const exchange = startSasl(mechanism);
  if (!exchange) return reply(504, '5.5.4', 'Unrecognized authentication type');
  return authStep(session, exchange, exchange.start(initial));
}

async function authStep(session: Session, exchange: SaslExchange, step: SaslStep): Promise<HandlerResult> {
  if (step.kind === 'challenge') {
    // RFC 4954 4: "334 " then base64, no enhanced status code.
    return { code: 334, text: step.challenge, continueWith: (line) => authStep(session, exchange, exchange.next(line)) };
  }
  if (step.kind === 'failed') {
    return step.reason === 'cancelled'
      ? reply(501, '5.0.0', 'Authentication cancelled')
      : reply(501, '5.5.2', 'Cannot decode the authentication response');
  }
  const result = await checkLogin(session.ctx.login, session.log, session.conn.remoteAddress, step.username, step.password);
  if (result.ok) {
    session.authenticatedAs = result.account;
    return reply(235, '2.7.0', 'Authentication successful');
  }
  if (result.reason === 'throttled') return reply(454, '4.7.0', 'Temporary authentication failure, try again later');
  return reply(535, '5.7.8', 'Authentication credentials invalid');
}

function rset(session: Session): HandlerResult {
  session.resetTransaction();
  return reply(250, '2.0.0', 'Ok');
}

function quit(session: Session): HandlerResult {
  return reply(221, '2.0.0', `${session.ctx.config.hostname} Bye`, true);
}

export const commandTable: Record<string, Command> = {
  EHLO: { allowedIn: ANY, handler: ehlo },
  HELO: { allowedIn: ANY, handler: helo },
  // Like Postfix (smtpd_helo_required = no) we do not insist on EHLO before MAIL.
  MAIL: { allowedIn: ['fresh', 'greeted'], outOfSequence: 'Nested MAIL command', handler: mail },
  RCPT: { allowedIn: ['mail', 'rcpt'], outOfSequence: 'Need MAIL command', handler: rcpt },
  DATA: { allowedIn: ['mail', 'rcpt'], outOfSequence: 'Need RCPT command', handler: data },
  STARTTLS: { allowedIn: ['fresh', 'greeted'], outOfSequence: 'STARTTLS not allowed during a mail transaction', handler: starttls },
  // RFC 4954 4: AUTH comes after EHLO and never inside a mail transaction.
  AUTH: { allowedIn: ['greeted'], outOfSequence: 'AUTH needs EHLO first, and not during a mail transaction', handler: auth },
  RSET: { allowedIn: ANY, handler: rset },
  NOOP: { allowedIn: ANY, handler: () => reply(250, '2.0.0', 'Ok') },
  QUIT: { allowedIn: ANY, handler: quit },
  // RFC 5321 3.5.3: 252 says "cannot verify, but will try to deliver"; it does not reveal accounts.
  VRFY: { allowedIn: ANY, handler: () => reply(252, '2.5.2', 'Cannot VRFY user, but will accept message') },
  EXPN: { allowedIn: ANY, handler: () => reply(502, '5.5.1', 'EXPN not available') },
  HELP: {
    allowedIn: ANY,
    handler: () =>
      reply(214, '2.0.0', [
        'Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT VRFY HELP',
        'See RFC 5321, or run the server with --trace to watch a session',
      ]),
  },
};
