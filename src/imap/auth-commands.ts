// The IMAP commands of any state and of the not-authenticated state (RFC
// 3501 6.1, 6.2): CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN, AUTHENTICATE,
// and the small extensions ID (RFC 2971) and ENABLE (RFC 5161).

import { startSasl } from '../auth/sasl.ts';
import { throttleAddress } from '../auth/throttle.ts';
import type { LoginResult } from '../auth/login.ts';
import type { SaslResult } from '../protocol/types.ts';
import { bad, no, ok } from './response.ts';
import type { ImapResponse } from './response.ts';
import { capabilities, passwordsAllowed } from './capabilities.ts';
import { imapString } from './imap-string.ts';
import { ParseError } from './parser.ts';
import { afterLogin } from './login-setup.ts';
import { ENABLEABLE } from './extensions.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';

const answer = (reply: ImapResponse): ImapOutcome => ({ reply });

/** CAPABILITY (RFC 3501 6.1.1). */
export function capability(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  return answer(ok(tag, 'CAPABILITY completed', undefined, [capabilities(session)]));
}

/** LOGOUT (RFC 3501 6.1.3): BYE, OK, then the connection closes. */
export function logout(_session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  return { reply: ok(tag, 'LOGOUT completed', undefined, ['BYE Logging out']), next: { kind: 'close' } };
}

/** STARTTLS (RFC 3501 6.2.1): the loop runs the handshake after this OK. */
export function starttls(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  if (session.conn.isSecure) return answer(bad(tag, 'Already using TLS'));
  if (!session.ctx.tlsAvailable) return answer(no(tag, 'TLS not available'));
  return { reply: ok(tag, 'Begin TLS negotiation now'), next: { kind: 'starttls' } };
}

/** LOGIN user password (RFC 3501 6.2.3); refused where LOGINDISABLED is announced. */
export function login(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  const username = args.sp().astring();
  const password = args.sp().astring();
  args.end();
  // RFC 5530 PRIVACYREQUIRED: not without TLS.
  if (!passwordsAllowed(session)) return answer(no(tag, 'Use STARTTLS first: no passwords in clear', 'PRIVACYREQUIRED'));
  return {
    next: { kind: 'login', username, password, address: session.state.loginAddress, then: (result) => loginDone(session, tag, result) },
  };
}

/** AUTHENTICATE mechanism [initial-response] (RFC 3501 6.2.2, SASL-IR RFC 4959). */
export function authenticate(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  const mechanism = args.sp().atom();
  const initial = args.atEnd() ? undefined : args.sp().token(/[A-Za-z0-9+/=]/, 'an initial response');
  args.end();
  if (!passwordsAllowed(session)) return answer(no(tag, 'Use STARTTLS first: no passwords in clear', 'PRIVACYREQUIRED'));
  const exchange = startSasl(mechanism);
  if (!exchange) return answer(no(tag, `Unsupported authentication mechanism ${mechanism}`));
  return {
    next: { kind: 'sasl', exchange, initial, address: session.state.loginAddress, then: (result) => loginDone(session, tag, result) },
  };
}

/** After the password check: the authenticated state, and the account's standard folders. */
async function loginDone(session: ImapView, tag: string, result: SaslResult | LoginResult): Promise<ImapOutcome> {
  if (result.ok) {
    await afterLogin(session, result.account);
    const view = { ...session, state: { ...session.state, phase: 'authenticated' as const } };
    return { change: { phase: 'authenticated', account: result.account }, reply: ok(tag, 'Logged in', capabilities(view)) };
  }
  const replies: Record<typeof result.reason, ImapResponse> = {
    // RFC 5530 response codes: what went wrong, for the client to show.
    'bad-credentials': no(tag, 'Authentication failed', 'AUTHENTICATIONFAILED'),
    throttled: no(tag, 'Server busy, try again later', 'UNAVAILABLE'),
    cancelled: bad(tag, 'Authentication cancelled'), // RFC 3501 6.2.2: "*" cancels, answered BAD
    malformed: bad(tag, 'Cannot decode the authentication response'),
    'line-too-long': bad(tag, 'Line too long', 'TOOBIG'),
  };
  return answer(replies[result.reason]);
}

/** ID (RFC 2971): who the client is, who we are; a trusted webmail may pass its user's address here. */
export function id(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  const fields = new Map<string, string | null>();
  args.sp();
  if (args.peek() === '(') {
    const items = args.list((r) => r.nstring());
    if (items.length % 2 !== 0 || items.length > 60) throw new ParseError('ID takes field-value pairs (at most 30)');
    for (let i = 0; i < items.length; i += 2) fields.set((items[i] ?? '').toLowerCase(), items[i + 1]);
  } else if (args.nstring() !== null) {
    throw new ParseError('ID takes a list or NIL');
  }
  args.end();
  const claimed = fields.get('x-originating-ip') ?? undefined;
  const trusted = session.ctx.config.auth.trustedClients;
  const loginAddress = throttleAddress(session.conn.remoteAddress, claimed, trusted);
  if (fields.size > 0) session.log.event('client-id', { name: fields.get('name') ?? undefined, version: fields.get('version') ?? undefined, forAddress: claimed });
  const ours = ['name', 'jjordan-mail', 'vendor', 'jjordan-mail', 'support-url', 'https://datatracker.ietf.org/doc/html/rfc3501'];
  return {
    change: { loginAddress },
    reply: ok(tag, 'ID completed', undefined, [`ID (${ours.map((v) => imapString(v)).join(' ')})`]),
  };
}

/** ENABLE (RFC 5161): turn on extensions that change how the server answers (extensions.ts). */
export function enable(session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  const wanted: string[] = [];
  do wanted.push(args.sp().atom());
  while (!args.atEnd());
  // Capability names compare without case; the answer spells them as we do.
  const enabled = ENABLEABLE.filter((name) => wanted.some((w) => w.toUpperCase() === name.toUpperCase()) && !session.state.enabled.includes(name));
  return {
    change: { enabled: [...session.state.enabled, ...enabled] },
    reply: ok(tag, 'ENABLE completed', undefined, [['ENABLED', ...enabled].join(' ')]),
  };
}

