// One POP3 session (RFC 1939): a mail client logs in, downloads the
// messages of its INBOX and may delete them.
//
// Follows RFC 1939 (states, commands, replies), RFC 2449 (CAPA, response
// codes, PIPELINING), RFC 2595 4 (STLS), RFC 5034 (AUTH with SASL) and
// RFC 8314 (implicit TLS on the 995-role port).
//
// A connection that ends in any way other than QUIT in the transaction
// phase never reaches UPDATE, so it removes nothing (RFC 1939 6).
//
// The loop is the one every protocol shares (protocol/session.ts); this file
// is POP3's dialect of it. The states are in types.ts, the commands in
// commands.ts, the mailbox in maildrop.ts.

import { ProtocolSession } from '../protocol/session.ts';
import type { SessionSettings } from '../protocol/session.ts';
import type { Dialect } from '../protocol/types.ts';
import type { Connection } from '../wire/connection.ts';
import type { Wire } from '../wire/reply-queue.ts';
import { commandTable } from './commands.ts';
import { INITIAL_STATE, err, ok, statusLine } from './types.ts';
import type { Pop3Context, Pop3Reply, Pop3Request, Pop3State, Pop3View } from './types.ts';

/** A reply as it goes on the wire: the status line, and a listing or a message if any. */
function format(reply: Pop3Reply): Wire {
  if (reply.wire !== undefined) return reply.wire; // a message, made ready by its command
  let text = statusLine(reply);
  if (reply.lines) {
    // RFC 1939 3: a line starting with "." gets one more; "." ends the list.
    for (const line of reply.lines) text += `${line.startsWith('.') ? '.' : ''}${line}\r\n`;
    text += '.\r\n';
  }
  return text;
}

export const pop3Dialect: Dialect<Pop3View, Pop3Request, Pop3Reply, Pop3State> = {
  name: 'pop3',
  greeting: (session) => ok(`${session.ctx.config.hostname} POP3 jjordan-mail ready`),
  parse(line) {
    const space = line.indexOf(' ');
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    return { request: { verb, argument: space < 0 ? '' : line.slice(space + 1) } };
  },
  commands: commandTable,
  format,
  // A message's text is not traced, only its status line (as for a streamed one).
  traced: (reply) => (reply.wire !== undefined ? statusLine(reply) : undefined),
  isError: (reply) => !reply.ok,
  // RFC 5034 4: "+ " then the base64 challenge.
  saslChallenge: (challenge) => `+ ${challenge}`,
  // RFC 2595 4: forget what was said in clear.
  afterTls: () => ({ pendingUser: null }),
  // Whatever happened, the maildrop lock goes; only QUIT expunged anything.
  release: async (state) => state.maildrop?.release(),
  // RFC 1939 6: a session that ends without QUIT removes nothing; the log says so.
  endFields: () => ({ expunged: 0 }),
  replies: {
    unknownCommand: (_session, request) => err(`Unknown command ${request.verb.slice(0, 20)}`),
    wrongPhase: (session, request) =>
      err(session.state.phase === 'authorization' ? `${request.verb} needs a login first` : `${request.verb} is not allowed after login`),
    lineTooLong: () => err('Line too long'),
    // RFC 1939 3: an idle timeout closes the session without entering UPDATE.
    idle: () => err('Idle for too long, closing'),
    shuttingDown: () => err('Server shutting down'),
    tooManyErrors: () => err('Too many errors, closing'),
    internalError: () => err('[SYS/TEMP] Internal error, try again later'),
  },
};

/** Run one POP3 session on an accepted connection. */
export function runPop3Session(conn: Connection, ctx: Pop3Context, settings: SessionSettings): Promise<void> {
  return new ProtocolSession(conn, pop3Dialect, { ...INITIAL_STATE }, ctx, settings).run();
}
