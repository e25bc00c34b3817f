// One SMTP session (RFC 5321): the server side of a conversation with another
// mail server or a mail client, from the 220 greeting to QUIT.
//
// Follows RFC 5321 sections 3 (procedures) and 4 (commands, replies, limits),
// with the extensions PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SIZE
// (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034/3463), SMTPUTF8 (RFC 6531),
// STARTTLS (RFC 3207) and AUTH (RFC 4954), and submission (RFC 6409).
//
// The loop itself is the one every protocol shares (protocol/session.ts);
// this file is SMTP's dialect of it: the greeting, how a command line is cut
// into verb and argument, how replies look on the wire, and the standard
// replies. The states are in types.ts, the commands in commands.ts and
// transaction.ts, the message itself in receive.ts.

import { ProtocolSession } from '../protocol/session.ts';
import type { SessionSettings } from '../protocol/session.ts';
import type { Dialect } from '../protocol/types.ts';
import type { Connection } from '../wire/connection.ts';
import { formatReply, reply } from './reply.ts';
import type { Reply } from './reply.ts';
import { commandTable } from './commands.ts';
import { INITIAL_STATE } from './types.ts';
import type { SmtpContext, SmtpRequest, SmtpState, SmtpView } from './types.ts';

export const smtpDialect: Dialect<SmtpView, SmtpRequest, Reply, SmtpState> = {
  name: 'smtp',
  // RFC 5321 4.2: the greeting carries no enhanced code (RFC 2034 3).
  greeting: (session) => ({ code: 220, text: `${session.ctx.config.hostname} ESMTP jjordan-mail` }),
  parse(line) {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    return { request: { verb, argument: space < 0 ? '' : line.slice(space + 1) } };
  },
  commands: commandTable,
  format: formatReply,
  isError: (r) => r.code >= 500,
  // RFC 4954 4: "334 " then base64, no enhanced status code.
  saslChallenge: (challenge) => `334 ${challenge}`,
  // RFC 3207 4.2: forget everything learnt before TLS, including EHLO.
  afterTls: () => ({ ...INITIAL_STATE }),
  replies: {
    unknownCommand: () => reply(500, '5.5.2', 'Command not recognized'),
    wrongPhase: (_session, request) => reply(503, '5.5.1', commandTable[request.verb].outOfSequence ?? 'Bad sequence of commands'),
    lineTooLong: () => reply(500, '5.5.2', 'Line too long'), // RFC 5321 4.5.3.1.4: 512 octets
    // RFC 5321 3.8: a 421 names the host; 4.5.3.2.7: idle clients are timed out.
    idle: (session) => reply(421, '4.4.2', `${host(session)} Idle for too long, closing connection`),
    shuttingDown: (session) => reply(421, '4.3.2', `${host(session)} Service shutting down, try again later`),
    // RFC 5321 4.3.2 lets a server close a session that keeps failing.
    tooManyErrors: (session) => reply(421, '4.7.0', `${host(session)} Too many errors, closing connection`),
    internalError: () => reply(451, '4.3.0', 'Local error in processing, try again later'),
  },
};

const host = (session: SmtpView) => session.ctx.config.hostname;

/** Run one SMTP session on an accepted connection. */
export function runSmtpSession(conn: Connection, ctx: SmtpContext, settings: SessionSettings): Promise<void> {
  return new ProtocolSession(conn, smtpDialect, { ...INITIAL_STATE }, ctx, settings).run();
}
