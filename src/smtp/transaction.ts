// The mail transaction (RFC 5321 3.3): MAIL FROM names the sender, each RCPT
// TO one recipient, DATA hands over the message. Each handler checks its
// argument against the policy below and returns the reply and the new
// envelope; none of them stores anything (receive.ts does, after DATA).
//
// Policy, as a Postfix admin would set it up:
// - Never an open relay: mail for other domains only from a logged-in user
//   (Postfix: permit_sasl_authenticated, reject_unauth_destination).
// - A logged-in user sends only as one of their own addresses
//   (reject_sender_login_mismatch); the null sender stays allowed.
// - On port 25, nobody who has not logged in may claim one of our own
//   domains as the sender, except the trusted networks (config
//   trustedNetworks: this machine, by default), as Postfix's
//   reject_unauthenticated_sender_login_mismatch does with mynetworks.
// - The submission ports take mail from logged-in users only (RFC 6409 4.3).

import { reply } from './reply.ts';
import type { Reply } from './reply.ts';
import { parsePathArgument } from './address.ts';
import { inNetworks } from '../wire/client-address.ts';
import type { SmtpOutcome, SmtpRequest, SmtpView } from './types.ts';
import { receiveAndDeliver } from './receive.ts';

const refuse = (r: Reply): SmtpOutcome => ({ reply: r });

/** MAIL FROM (RFC 5321 4.1.1.2): start a transaction. */
export async function mail(session: SmtpView, { argument }: SmtpRequest): Promise<SmtpOutcome> {
  const { state, ctx, log } = session;
  if (ctx.role === 'submission' && !state.authenticatedAs) return refuse(reply(530, '5.7.0', 'Authentication required'));
  const parsed = parsePathArgument(argument, 'FROM');
  if (!parsed.ok) return refuse(reply(parsed.badUtf8 ? 553 : 501, parsed.badUtf8 ? '5.6.7' : '5.1.7', parsed.why));
  const { params, address, domain } = parsed.path;

  const user = state.authenticatedAs;
  if (user && address !== '') {
    const own = await ctx.accounts.addressesOf(user);
    if (!own.includes(address.toLowerCase())) {
      log.event('refused', { reason: 'sender-not-owned', account: user, from: `<${address}>` });
      return refuse(reply(553, '5.7.1', `<${address}>: Sender address rejected: not owned by user ${user}`));
    }
  }
  if (!user && address !== '' && ctx.accounts.isLocalDomain(domain) && !inNetworks(session.conn.remoteAddress, ctx.config.trustedNetworks)) {
    log.event('refused', { reason: 'local-sender-without-login', from: `<${address}>` });
    return refuse(reply(550, '5.7.1', `<${address}>: Sender address rejected: log in to send as ${domain}`));
  }

  const limit = ctx.config.limits.maxMessageBytes;
  let eightBit = false;
  for (const [key, value] of params) {
    if (key === 'SIZE') {
      // RFC 1870 6.1: refuse at once a message declared too large.
      if (!/^\d{1,20}$/.test(value)) return refuse(reply(501, '5.5.4', 'Bad SIZE parameter'));
      if (Number(value) > limit) return refuse(reply(552, '5.3.4', `Message size exceeds fixed limit of ${limit} bytes`));
    } else if (key === 'BODY') {
      if (!/^(7BIT|8BITMIME)$/i.test(value)) return refuse(reply(501, '5.5.4', 'BODY must be 7BIT or 8BITMIME'));
      eightBit = value.toUpperCase() === '8BITMIME';
    } else if (key === 'SMTPUTF8') {
      if (value !== '') return refuse(reply(501, '5.5.4', 'SMTPUTF8 takes no value'));
    } else {
      // RFC 5321 4.1.1.11 / 4.5.3.2: unknown parameter.
      return refuse(reply(555, '5.5.4', `Parameter ${key} not supported`));
    }
  }
  log.event('mail', { from: `<${address}>` });
  return {
    change: { phase: 'mail', envelope: { from: address, recipients: [], eightBit, utf8: params.has('SMTPUTF8') } },
    reply: reply(250, '2.1.0', 'Ok'),
  };
}

/** RCPT TO (RFC 5321 4.1.1.3): one recipient. Other domains only for logged-in users. */
export async function rcpt(session: SmtpView, { argument }: SmtpRequest): Promise<SmtpOutcome> {
  const { state, ctx, log } = session;
  const envelope = state.envelope!;
  const parsed = parsePathArgument(argument, 'TO', envelope.utf8);
  if (!parsed.ok) return refuse(reply(parsed.badUtf8 ? 553 : 501, parsed.badUtf8 ? '5.6.7' : '5.1.3', parsed.why));
  if (parsed.path.params.size > 0) return refuse(reply(555, '5.5.4', 'RCPT parameters not supported'));
  const address = parsed.path.domain === '' ? `postmaster@${ctx.config.domains[0]}` : parsed.path.address;

  // RFC 5321 4.5.3.1.8: at least 100 recipients must be accepted; more gets 452.
  if (envelope.recipients.length >= ctx.config.limits.maxRecipients) return refuse(reply(452, '4.5.3', 'Too many recipients'));
  const found = await ctx.accounts.resolve(address);
  if (found.kind === 'remote' && !state.authenticatedAs) {
    log.event('refused', { reason: 'relay-denied', to: `<${address}>` });
    return refuse(reply(554, '5.7.1', `<${address}>: Relay access denied`));
  }
  if (found.kind === 'unknown') {
    log.event('refused', { reason: 'unknown-user', to: `<${address}>` });
    return refuse(reply(550, '5.1.1', `<${address}>: Recipient address rejected: User unknown`));
  }
  const recipient = found.kind === 'remote' ? { address, accounts: [], remote: true } : { address, accounts: found.accounts, remote: false };
  return {
    change: { phase: 'rcpt', envelope: { ...envelope, recipients: [...envelope.recipients, recipient] } },
    reply: reply(250, '2.1.5', 'Ok'),
  };
}

/** DATA (RFC 5321 4.1.1.4): after our 354, receive.ts reads and delivers the message. */
export function data(session: SmtpView, { argument }: SmtpRequest): SmtpOutcome {
  if (argument !== '') return refuse(reply(501, '5.5.4', 'DATA takes no argument'));
  if (session.state.envelope!.recipients.length === 0) return refuse(reply(554, '5.5.1', 'No valid recipients'));
  return {
    reply: { code: 354, text: 'End data with <CR><LF>.<CR><LF>' },
    next: { kind: 'run', run: (io) => receiveAndDeliver(io, session.ctx) },
  };
}
