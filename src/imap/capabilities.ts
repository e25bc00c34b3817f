// What this IMAP server can do (RFC 3501 6.1.1, 7.2.1), as CAPABILITY lists
// it. The list depends on the connection: STARTTLS only in clear, and
// password logins only where a password is safe (LOGINDISABLED otherwise,
// RFC 3501 6.2.3).

import { SASL_MECHANISMS } from '../auth/sasl.ts';
import { canCarryPasswords } from '../wire/connection.ts';
import type { ImapView } from './types.ts';

/** Extensions announced in every state. */
const EXTENSIONS = [
  'LITERAL+', // RFC 7888
  'SASL-IR', // RFC 4959
  'ENABLE', // RFC 5161
  'ID', // RFC 2971
  'IDLE', // RFC 2177
  'NAMESPACE', // RFC 2342
  'UNSELECT', // RFC 3691
  'UIDPLUS', // RFC 4315
  'MOVE', // RFC 6851
  'CHILDREN', // RFC 3348
  'SPECIAL-USE', // RFC 6154
  'CONDSTORE', // RFC 7162
  'ESEARCH', // RFC 4731
  'SEARCHRES', // RFC 5182
  'LIST-EXTENDED', // RFC 5258
  'LIST-STATUS', // RFC 5819
  'BINARY', // RFC 3516
  'STATUS=SIZE', // RFC 8438
  // Not UTF8=ACCEPT (RFC 6855): it would oblige APPEND's UTF8 (~{n}) form,
  // which is not here; Dovecot 2.3 does not announce it either. IMAP4rev2
  // clients get UTF-8 names anyway (RFC 9051 5.1).
];

export function passwordsAllowed(session: ImapView): boolean {
  return canCarryPasswords(session.conn, session.ctx.config.auth.allowPlaintextOnLoopback);
}

export function capabilities(session: ImapView): string {
  // IMAP4rev2 (RFC 9051) beside IMAP4rev1: a client that does not ENABLE it sees IMAP4rev1.
  const list = ['IMAP4rev1', 'IMAP4rev2', ...EXTENSIONS];
  if (session.state.phase === 'not-authenticated') {
    if (session.ctx.tlsAvailable && !session.conn.isSecure) list.push('STARTTLS');
    if (passwordsAllowed(session)) list.push(...SASL_MECHANISMS.map((m) => `AUTH=${m}`));
    else list.push('LOGINDISABLED');
  }
  list.push(`APPENDLIMIT=${session.ctx.config.limits.maxMessageBytes}`); // RFC 7889
  return `CAPABILITY ${list.join(' ')}`;
}
