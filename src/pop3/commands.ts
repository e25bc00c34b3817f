// The POP3 command table (RFC 1939 5-7, RFC 2449, RFC 2595, RFC 5034): for
// each command, the phases that allow it and the handler that checks its
// argument and returns what should happen. Handlers never touch the socket
// or the session's state: they return an Outcome, and the loop in
// protocol/session.ts applies it.

import { SASL_MECHANISMS, startSasl } from '../auth/sasl.ts';
import type { SaslResult } from '../protocol/types.ts';
import { canCarryPasswords } from '../wire/connection.ts';
import { Maildrop, MaildropInUseError } from './maildrop.ts';
import type { MaildropMessage } from './maildrop.ts';
import { dotStuffed, firstLines } from './message-stream.ts';
import { messageReply } from './read-ahead.ts';
import { isDiskFull } from '../store/disk-full.ts';
import { err, ok } from './types.ts';
import type { Phase, Pop3Command, Pop3Outcome, Pop3Reply, Pop3Request, Pop3View } from './types.ts';

const AUTHORIZATION: readonly Phase[] = ['authorization'];
const TRANSACTION: readonly Phase[] = ['transaction'];
const ANY: readonly Phase[] = ['authorization', 'transaction'];

const answer = (reply: Pop3Reply): Pop3Outcome => ({ reply });

function passwordsAllowed(session: Pop3View): boolean {
  return canCarryPasswords(session.conn, session.ctx.config.auth.allowPlaintextOnLoopback);
}

const NO_CLEAR_PASSWORDS = err('[AUTH] Use STLS first: no passwords in clear');
const CANNOT_READ = err('[SYS/TEMP] Message could not be read, try again later');

/** CAPA (RFC 2449 5): what this server can do, in this phase. */
function capa(session: Pop3View): Pop3Outcome {
  const lines = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
  if (session.state.phase === 'authorization') {
    if (passwordsAllowed(session)) lines.push('USER', `SASL ${SASL_MECHANISMS.join(' ')}`);
    if (session.ctx.tlsAvailable && !session.conn.isSecure) lines.push('STLS');
  }
  lines.push('IMPLEMENTATION jjordan-mail');
  return answer(ok('Capability list follows', lines));
}

/** STLS (RFC 2595 4): TLS on the plain port, before login. */
function stls(session: Pop3View): Pop3Outcome {
  if (session.conn.isSecure) return answer(err('Already using TLS'));
  if (!session.ctx.tlsAvailable) return answer(err('TLS not available'));
  return { reply: ok('Begin TLS negotiation'), next: { kind: 'starttls' } };
}

function user(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  if (!passwordsAllowed(session)) return answer(NO_CLEAR_PASSWORDS);
  if (argument === '') return answer(err('Syntax: USER name'));
  return { change: { pendingUser: argument }, reply: ok('Send PASS') };
}

function pass(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  if (!passwordsAllowed(session)) return answer(NO_CLEAR_PASSWORDS);
  const name = session.state.pendingUser;
  if (name === null) return answer(err('Send USER first'));
  return { change: { pendingUser: null }, next: { kind: 'login', username: name, password: argument, then: (result) => loggedIn(session, result) } };
}

/** AUTH (RFC 5034): the loop runs the SASL exchange ("+ challenge" lines), then `loggedIn` answers. */
function auth(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  if (argument === '') return answer(ok('Methods follow', [...SASL_MECHANISMS])); // old clients ask this way
  if (!passwordsAllowed(session)) return answer(NO_CLEAR_PASSWORDS);
  const [mechanism, initial, extra] = argument.split(' ');
  if (extra !== undefined) return answer(err('Syntax: AUTH mechanism [initial-response]'));
  const exchange = startSasl(mechanism);
  if (!exchange) return answer(err('Unsupported authentication mechanism'));
  return { next: { kind: 'sasl', exchange, initial, then: (result) => loggedIn(session, result) } };
}

/** After the password check: lock the maildrop and take its snapshot. */
async function loggedIn(session: Pop3View, result: SaslResult): Promise<Pop3Outcome> {
  if (!result.ok) {
    // RFC 3206: [AUTH] is a wrong password, [SYS/TEMP] a try-again-later.
    const replies: Record<typeof result.reason, Pop3Reply> = {
      'bad-credentials': err('[AUTH] Invalid login'),
      throttled: err('[SYS/TEMP] Server busy, try again later'),
      cancelled: err('Authentication cancelled'),
      malformed: err('Cannot decode the response'),
      'line-too-long': err('Line too long'),
    };
    return answer(replies[result.reason]);
  }
  const { dataDir, config } = session.ctx;
  let maildrop: Maildrop;
  try {
    maildrop = await Maildrop.open(dataDir, result.account, config.limits.lockTimeoutSeconds * 1000);
  } catch (error) {
    if (!(error instanceof MaildropInUseError)) throw error;
    session.log.event('refused', { reason: 'maildrop-in-use', account: result.account });
    return answer(err('[IN-USE] Mailbox is already open in another session'));
  }
  const { count, octets } = maildrop.summary();
  session.log.event('login', { account: result.account, messages: count, octets });
  return { change: { phase: 'transaction', maildrop }, reply: ok(`${result.account}'s maildrop has ${count} messages (${octets} octets)`) };
}

/** A message number argument (RFC 1939 5: decimal, 1-based, not deleted). */
function messageArgument(session: Pop3View, argument: string): { n: number; message: MaildropMessage } | Pop3Reply {
  if (!/^\d{1,9}$/.test(argument)) return err('Syntax: a message number');
  const n = Number(argument);
  const drop = session.state.maildrop!;
  const message = drop.get(n);
  if (!message) return err(drop.deleted.has(n) ? `Message ${n} already deleted` : 'No such message');
  return { n, message };
}

function stat(session: Pop3View): Pop3Outcome {
  const { count, octets } = session.state.maildrop!.summary();
  return answer(ok(`${count} ${octets}`));
}

/** LIST and UIDL share their shape: one message, or every message not deleted. */
function listing(session: Pop3View, argument: string, describe: (message: MaildropMessage) => string): Pop3Outcome {
  const drop = session.state.maildrop!;
  if (argument !== '') {
    const found = messageArgument(session, argument);
    return answer('message' in found ? ok(`${found.n} ${describe(found.message)}`) : found);
  }
  const lines: string[] = [];
  drop.messages.forEach((message, i) => {
    if (!drop.deleted.has(i + 1)) lines.push(`${i + 1} ${describe(message)}`);
  });
  return answer(ok(`${lines.length} messages`, lines));
}

/**
 * A message streamed from the store. The status line leaves with the first
 * piece: if the mbox no longer matches its index before a byte went out, we
 * can still say -ERR; after, the only honest end is to hang up (without the
 * final "." the client knows the message is incomplete).
 */
function sendMessage(head: Pop3Reply, body: () => AsyncIterable<Buffer>): Pop3Outcome {
  return {
    next: {
      kind: 'stream',
      head,
      body,
      onError: (_error, sentSome) => (sentSome ? { next: { kind: 'close' } } : answer(CANNOT_READ)),
    },
  };
}

function retr(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  const found = messageArgument(session, argument);
  if (!('message' in found)) return answer(found);
  const drop = session.state.maildrop!;
  // While the client reads this message, the next one is made ready (read-ahead.ts).
  const meanwhile = () => drop.readAhead.prepare(drop, found.n + 1);
  const ready = drop.readAhead.take(found.n);
  if (ready !== null && drop.isUnchanged(found.message)) return { reply: ready, meanwhile };
  // Almost all mail is small: read and checked at once, and sent with its
  // status line as one string (one write). A large message is streamed.
  let small: string | null;
  try {
    small = drop.readSmallText(found.message);
  } catch (error) {
    // Logged as a failed stream is: nothing was sent yet, so -ERR can still say it.
    session.log.event('stream-failed', { error: (error as Error).message, partial: false });
    return answer(CANNOT_READ);
  }
  if (small === null) return sendMessage(ok(`${found.message.size} octets`), () => dotStuffed(drop.read(found.message)));
  return { reply: messageReply(found.message.size, small), meanwhile };
}

/** TOP n k (RFC 1939 7): the header, the blank line, and k lines of the body. */
function top(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  const [number, lines] = argument.split(' ');
  if (!/^\d{1,9}$/.test(lines ?? '')) return answer(err('Syntax: TOP message lines'));
  const found = messageArgument(session, number);
  if (!('message' in found)) return answer(found);
  const drop = session.state.maildrop!;
  return sendMessage(ok('Top of message follows'), () => dotStuffed(firstLines(drop.read(found.message), Number(lines))));
}

function dele(session: Pop3View, { argument }: Pop3Request): Pop3Outcome {
  const found = messageArgument(session, argument);
  if (!('message' in found)) return answer(found);
  session.state.maildrop!.deleted.add(found.n);
  return answer(ok(`Message ${found.n} deleted`));
}

function rset(session: Pop3View): Pop3Outcome {
  session.state.maildrop!.reset();
  return stat(session);
}

/**
 * QUIT: in the transaction phase, the UPDATE state removes what DELE marked
 * (RFC 1939 6). The maildrop is released before the +OK, so a client that
 * logs in again the moment it reads it finds the mailbox free.
 */
async function quit(session: Pop3View): Promise<Pop3Outcome> {
  const drop = session.state.maildrop;
  const bye = (reply: Pop3Reply): Pop3Outcome => ({ change: { maildrop: null }, reply, next: { kind: 'close' } });
  if (!drop) return bye(ok(`${session.ctx.config.hostname} Bye`));
  try {
    const removed = await drop.commit(session.ctx.config.limits.lockTimeoutSeconds * 1000);
    session.log.event('logout', { account: drop.account, expunged: removed });
    return bye(ok(`Bye, ${removed} messages deleted`));
  } catch (error) {
    session.log.event('expunge-failed', { account: drop.account, error: (error as Error).message });
    // RFC 1939 6: -ERR when some deleted messages could not be removed; nothing was.
    if (isDiskFull(error)) return bye(err('[SYS/TEMP] not enough disk space to remove messages'));
    return bye(err('[SYS/TEMP] Deleted messages could not be removed, they are still there'));
  } finally {
    await drop.release();
  }
}

export const commandTable: Record<string, Pop3Command> = {
  CAPA: { allowedIn: ANY, handler: capa },
  STLS: { allowedIn: AUTHORIZATION, handler: stls },
  USER: { allowedIn: AUTHORIZATION, handler: user },
  PASS: { allowedIn: AUTHORIZATION, handler: pass, redact: () => 'PASS ****' },
  AUTH: { allowedIn: AUTHORIZATION, handler: auth, redact: (line) => line.replace(/^(AUTH \S+) .*/i, '$1 ****') },
  STAT: { allowedIn: TRANSACTION, handler: stat },
  LIST: { allowedIn: TRANSACTION, handler: (s, r) => listing(s, r.argument, (m) => String(m.size)) },
  UIDL: { allowedIn: TRANSACTION, handler: (s, r) => listing(s, r.argument, (m) => s.state.maildrop!.uniqueId(m)) },
  RETR: { allowedIn: TRANSACTION, handler: retr },
  TOP: { allowedIn: TRANSACTION, handler: top },
  DELE: { allowedIn: TRANSACTION, handler: dele },
  RSET: { allowedIn: TRANSACTION, handler: rset },
  NOOP: { allowedIn: TRANSACTION, handler: () => answer(ok('')) },
  QUIT: { allowedIn: ANY, handler: quit },
};
