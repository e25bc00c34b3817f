// One IMAP session (RFC 3501, IMAP4rev1): a mail client logs in, opens
// mailboxes, reads and flags messages, and moves them between folders, all
// kept on the server.
//
// Every command carries a tag that its completion repeats ("A1 OK ...");
// the server may send untagged data ("* 3 EXISTS") before it. Commands may
// carry literals ({n}: n raw bytes follow), read by wire/command-reader.ts.
//
// The loop is the one every protocol shares (protocol/session.ts); this file
// is IMAP's dialect of it: the greeting, how a command is read (lines and
// literals) and cut into tag, name and arguments, and the standard replies.
// The states are in types.ts, the commands in commands.ts.

import { ProtocolSession } from '../protocol/session.ts';
import type { SessionSettings } from '../protocol/session.ts';
import type { Dialect, Input } from '../protocol/types.ts';
import type { Connection } from '../wire/connection.ts';
import { readCommand } from '../wire/command-reader.ts';
import { ArgReader, ParseError } from './parser.ts';
import { bad, bye, formatResponse, no } from './response.ts';
import type { ImapResponse } from './response.ts';
import { discardLimit, discardRefusedCommand, literalPolicy } from './literals.ts';
import type { SpooledLiteral } from './literals.ts';
import { capabilities } from './capabilities.ts';
import { commandTable } from './commands.ts';
import type { ImapContext, ImapRequest, ImapState, ImapView } from './types.ts';

type ImapInput = Input<ImapRequest, ImapResponse, ImapState>;

/** Read one command with its literals and cut it into tag, name and arguments. */
async function read(conn: Connection, session: ImapView): Promise<ImapInput> {
  const spooled: SpooledLiteral[] = [];
  const done = async () => {
    for (const literal of spooled) await literal.body.discard();
  };
  const command = await readCommand(conn, literalPolicy(session.ctx, spooled));
  if (command.kind !== 'command') await done();
  switch (command.kind) {
    case 'closed':
    case 'timeout':
    case 'interrupted':
      return command;
    case 'too-long':
      return { kind: 'refused', outcome: { reply: bad(tagOf(command.lines), 'Command too long', 'TOOBIG') }, trace: '(command too long, discarded)' };
    case 'literal-refused': {
      const tag = tagOf(command.lines);
      const trace = command.lines.join(' ');
      // A synchronising literal was never invited: the client gives the command up.
      if (command.synchronising) return { kind: 'refused', outcome: { reply: no(tag, `Literal of ${command.size} octets is too large`, 'TOOBIG') }, trace };
      // RFC 7888 4: a {n+} is already on its way; read it to its end, keep
      // nothing, and refuse the command (RFC 7889 4: NO [TOOBIG]).
      const discarded = await discardRefusedCommand(conn, command.size, discardLimit(session.ctx.config.limits.maxMessageBytes));
      if (discarded === 'too-large') return { kind: 'refused', outcome: { reply: bye('Literal too large', 'TOOBIG'), next: { kind: 'close' } }, trace };
      if (discarded !== 'done') return { kind: discarded };
      return { kind: 'refused', outcome: { reply: no(tag, `Literal of ${command.size} octets is too large`, 'TOOBIG') }, trace: `${trace} (discarded)` };
    }
  }
  const args = new ArgReader(command);
  const trace = command.lines.map((line, i) => (i < command.literals.length ? `${line} ...` : line)).join('');
  try {
    const tag = args.tag();
    let verb = args.sp().keyword();
    if (verb === 'UID') verb = `UID ${args.sp().keyword()}`;
    // Like Dovecot, look at the selected mailbox before each command (one
    // stat when nothing changed), so what another program or a delivery just
    // did is known to the command.
    await session.state.selected?.mailbox.refresh();
    return { kind: 'request', request: { tag, verb, args }, trace, done };
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    await done();
    return { kind: 'refused', outcome: { reply: bad(tagOf(command.lines), `Error in IMAP command: ${err.message}`) }, trace };
  }
}

/** The tag of a command, if it has one that can be repeated; '*' otherwise. */
function tagOf(lines: string[]): string {
  const tag = /^[^(){ \x00-\x1f\x7f%*"\\+]+/.exec(lines[0] ?? '')?.[0];
  return tag ?? '*';
}

export const imapDialect: Dialect<ImapView, ImapRequest, ImapResponse, ImapState> = {
  name: 'imap',
  greeting: (session) => ({ tag: '*', status: 'OK', code: capabilities(session), text: `${session.ctx.config.hostname} IMAP4rev1 jjordan-mail ready` }),
  parse: () => ({ reply: bad('*', 'unused: IMAP reads commands with read()') }),
  read,
  commands: commandTable,
  format: formatResponse,
  // RFC 3501 7.1.3: arguments that do not parse are the client's error, answered BAD.
  argumentError: (request, error) => (error instanceof ParseError ? bad(request.tag, `Error in IMAP command ${request.verb}: ${error.message}`) : null),
  // RFC 3501 7.1.3: BAD is a protocol error; a NO is an answer.
  isError: (response) => response.status === 'BAD',
  // RFC 3501 7.5: a continuation request; for AUTHENTICATE it carries the base64 challenge.
  saslChallenge: (challenge) => `+ ${challenge}`,
  // RFC 3501 6.2.1: nothing said in clear carries over, and nothing before login is kept anyway.
  afterTls: () => ({}),
  // The selected mailbox is let go of, however the session ends.
  release: async (state) => state.selected?.close(),
  replies: {
    unknownCommand: (_session, request) => bad(request.tag, `Unknown command ${request.verb.slice(0, 30)}`),
    wrongPhase: (session, request) =>
      bad(request.tag, session.state.phase === 'not-authenticated' ? `${request.verb} needs a login first` : session.state.phase === 'authenticated' ? `${request.verb} needs a selected mailbox` : `${request.verb} is not allowed now`),
    lineTooLong: () => bad('*', 'Line too long', 'TOOBIG'),
    // RFC 3501 5.4: the autologout timer; the server says BYE and closes.
    idle: () => bye('Autologout; idle for too long'),
    shuttingDown: () => bye('Server shutting down', 'UNAVAILABLE'),
    tooManyErrors: () => bye('Too many invalid commands'),
    // RFC 5530 SERVERBUG: the fault is ours, not the client's.
    internalError: (_session, request) => no(request.tag, 'Internal error, try again later', 'SERVERBUG'),
  },
};

export const INITIAL_STATE = (clientAddress: string): ImapState => ({
  phase: 'not-authenticated',
  account: null,
  selected: null,
  enabled: [],
  loginAddress: clientAddress,
});

/** Run one IMAP session on an accepted connection. */
export function runImapSession(conn: Connection, ctx: ImapContext, settings: SessionSettings): Promise<void> {
  return new ProtocolSession(conn, imapDialect, INITIAL_STATE(conn.remoteAddress), ctx, settings).run();
}
