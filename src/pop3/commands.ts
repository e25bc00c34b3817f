// The POP3 command table (RFC 1939 5-7, RFC 2449, RFC 2595, RFC 5034): for
// each command, the states that allow it and the handler that returns the
// reply. Handlers never touch the socket; the session loop sends what they
// return.

import { startSasl, SASL_MECHANISMS } from '../auth/sasl.ts';
import type { SaslExchange, SaslStep } from '../auth/sasl.ts';
import { checkLogin } from '../auth/login.ts';
import { canCarryPasswords } from '../wire/connection.ts';
import { Maildrop, MaildropInUseError } from './maildrop.ts';
import type { IndexedMessage } from '../store/mbox-index.ts';
import { ok, err } from './session.ts';
import type { Command, Pop3Reply, Pop3Session } from './session.ts';

const AUTHORIZATION = ['authorization'] as const;
const TRANSACTION = ['transaction'] as const;
const ANY = ['authorization', 'transaction'] as const;

function passwordsAllowed(session: Pop3Session): boolean {
  return canCarryPasswords(session.conn, session.ctx.config.auth.allowPlaintextOnLoopback);
}

/** CAPA (RFC 2449 5): what this server can do, in this state. */
function capa(session: Pop3Session): Pop3Reply {
  const lines = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'AUTH-RESP-CODE'];
  if (session.state === 'authorization') {
    if (passwordsAllowed(session)) lines.push('USER', `SASL ${SASL_MECHANISMS.join(' ')}`);
    if (session.ctx.tls && !session.conn.isSecure) lines.push('STLS');
  }
  lines.push('IMPLEMENTATION jjordan-mail');
  return ok('Capability list follows', { lines });
}

/** STLS (RFC 2595 4): TLS on the plain port, before login. */
function stls(session: Pop3Session): Pop3Reply {
  if (session.conn.isSecure) return err('Already using TLS');
  if (!session.ctx.tls) return err('TLS not available');
  return ok('Begin TLS negotiation', { startTls: true });
}

function user(session: Pop3Session, argument: string): Pop3Reply {
  if (!passwordsAllowed(session)) return err('[AUTH] Use STLS first: no passwords in clear');
  if (argument === '') return err('Syntax: USER name');
  session.pendingUser = argument;
  return ok('Send PASS');
}

async function pass(session: Pop3Session, argument: string): Promise<Pop3Reply> {
  if (!passwordsAllowed(session)) return err('[AUTH] Use STLS first: no passwords in clear');
  const name = session.pendingUser;
  session.pendingUser = null;
  if (name === null) return err('Send USER first');
  return login(session, name, argument);
}

/** AUTH (RFC 5034): a SASL exchange of "+ challenge" lines. */
function auth(session: Pop3Session, argument: string): Pop3Reply | Promise<Pop3Reply> {
  if (argument === '') return ok('Methods follow', { lines: [...SASL_MECHANISMS] }); // old clients ask this way
  if (!passwordsAllowed(session)) return err('[AUTH] Use STLS first: no passwords in clear');
  const [mechanism, initial, extra] = argument.split(' ');
  if (extra !== undefined) return err('Syntax: AUTH mechanism [initial-response]');
  const exchange = startSasl(mechanism);
  if (!exchange) return err('Unsupported authentication mechanism');
  return authStep(session, exchange, exchange.start(initial));
}

async function authStep(session: Pop3Session, exchange: SaslExchange, step: SaslStep): Promise<Pop3Reply> {
  if (step.kind === 'challenge') {
    return ok('', { challenge: { text: step.challenge, next: (line) => authStep(session, exchange, exchange.next(line)) } });
  }
  if (step.kind === 'failed') return err(step.reason === 'cancelled' ? 'Authentication cancelled' : 'Cannot decode the response');
  return login(session, step.username, step.password);
}

/** Check the password, then lock the maildrop and take its snapshot. */
async function login(session: Pop3Session, name: string, password: string): Promise<Pop3Reply> {
  const { login: service, dataDir, config } = session.ctx;
  const result = await checkLogin(service, session.log, session.conn.remoteAddress, name, password);
  if (!result.ok) {
    // RFC 3206: [AUTH] is a wrong password, [SYS/TEMP] a try-again-later.
    return result.reason === 'throttled' ? err('[SYS/TEMP] Too many failures, try again later') : err('[AUTH] Invalid login');
  }
  try {
    session.maildrop = await Maildrop.open(dataDir, result.account, config.limits.lockTimeoutSeconds * 1000);
  } catch (error) {
    if (error instanceof MaildropInUseError) {
      session.log.event('refused', { reason: 'maildrop-in-use', account: result.account });
      return err('[IN-USE] Mailbox is already open in another session');
    }
    throw error;
  }
  session.state = 'transaction';
  const { count, octets } = session.maildrop.summary();
  session.log.event('login', { account: result.account, messages: count, octets });
  return ok(`${result.account}'s maildrop has ${count} messages (${octets} octets)`);
}

/** A message number argument (RFC 1939 5: decimal, 1-based, not deleted). */
function messageArgument(session: Pop3Session, argument: string): { n: number; message: IndexedMessage } | Pop3Reply {
  if (!/^\d{1,9}$/.test(argument)) return err('Syntax: a message number');
  const n = Number(argument);
  const message = session.maildrop!.get(n);
  if (!message) return err(session.maildrop!.deleted.has(n) ? `Message ${n} already deleted` : 'No such message');
  return { n, message };
}

function stat(session: Pop3Session): Pop3Reply {
  const { count, octets } = session.maildrop!.summary();
  return ok(`${count} ${octets}`);
}

/** LIST and UIDL share their shape: one message, or every message not deleted. */
function listing(session: Pop3Session, argument: string, describe: (message: IndexedMessage) => string): Pop3Reply {
  const drop = session.maildrop!;
  if (argument !== '') {
    const found = messageArgument(session, argument);
    return 'message' in found ? ok(`${found.n} ${describe(found.message)}`) : found;
  }
  const lines: string[] = [];
  drop.messages.forEach((message, i) => {
    if (!drop.deleted.has(i + 1)) lines.push(`${i + 1} ${describe(message)}`);
  });
  return ok(`${lines.length} messages`, { lines });
}

function retr(session: Pop3Session, argument: string): Pop3Reply {
  const found = messageArgument(session, argument);
  if (!('message' in found)) return found;
  return ok(`${found.message.size} octets`, { body: () => session.maildrop!.read(found.message) });
}

/** TOP n k (RFC 1939 7): the header, the blank line, and k lines of the body. */
function top(session: Pop3Session, argument: string): Pop3Reply {
  const [number, lines] = argument.split(' ');
  if (!/^\d{1,9}$/.test(lines ?? '')) return err('Syntax: TOP message lines');
  const found = messageArgument(session, number);
  if (!('message' in found)) return found;
  return ok('Top of message follows', { body: () => firstLines(session.maildrop!.read(found.message), Number(lines)) });
}

/** Pass the header through, then only `bodyLines` lines of the body. */
async function* firstLines(source: AsyncIterable<Buffer>, bodyLines: number): AsyncIterable<Buffer> {
  const LF = 0x0a;
  let inHeader = true;
  let previous = LF; // a message that starts with a blank line has an empty header
  let left = bodyLines;
  for await (const chunk of source) {
    let cut = chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== LF) {
        previous = chunk[i];
        continue;
      }
      if (inHeader) {
        if (previous === LF) inHeader = false; // the blank line that ends the header
      } else {
        left--;
      }
      previous = LF;
      if (!inHeader && left <= 0) {
        cut = i + 1;
        break;
      }
    }
    yield chunk.subarray(0, cut);
    if (cut < chunk.length || (!inHeader && left <= 0)) return;
  }
}

function dele(session: Pop3Session, argument: string): Pop3Reply {
  const found = messageArgument(session, argument);
  if (!('message' in found)) return found;
  session.maildrop!.deleted.add(found.n);
  return ok(`Message ${found.n} deleted`);
}

function rset(session: Pop3Session): Pop3Reply {
  session.maildrop!.reset();
  return stat(session);
}

/** QUIT: in TRANSACTION, the UPDATE state removes what DELE marked (RFC 1939 6). */
async function quit(session: Pop3Session): Promise<Pop3Reply> {
  const drop = session.maildrop;
  if (!drop) return ok(`${session.ctx.config.hostname} Bye`, { close: true });
  try {
    const removed = await drop.commit(session.ctx.config.limits.lockTimeoutSeconds * 1000);
    session.log.event('logout', { account: drop.account, expunged: removed });
    return ok(`Bye, ${removed} messages deleted`, { close: true });
  } catch (error) {
    session.log.event('expunge-failed', { account: drop.account, error: (error as Error).message });
    // RFC 1939 6: -ERR when some deleted messages could not be removed.
    return err('[SYS/TEMP] Deleted messages could not be removed, they are still there', { close: true });
  }
}

export const commandTable: Record<string, Command> = {
  CAPA: { allowedIn: ANY, handler: capa },
  STLS: { allowedIn: AUTHORIZATION, handler: stls },
  USER: { allowedIn: AUTHORIZATION, handler: user },
  PASS: { allowedIn: AUTHORIZATION, handler: pass },
  AUTH: { allowedIn: AUTHORIZATION, handler: auth },
  STAT: { allowedIn: TRANSACTION, handler: stat },
  LIST: { allowedIn: TRANSACTION, handler: (s, a) => listing(s, a, (m) => String(m.size)) },
  UIDL: { allowedIn: TRANSACTION, handler: (s, a) => listing(s, a, (m) => s.maildrop!.uniqueId(m)) },
  RETR: { allowedIn: TRANSACTION, handler: retr },
  TOP: { allowedIn: TRANSACTION, handler: top },
  DELE: { allowedIn: TRANSACTION, handler: dele },
  RSET: { allowedIn: TRANSACTION, handler: rset },
  NOOP: { allowedIn: TRANSACTION, handler: () => ok('') },
  QUIT: { allowedIn: ANY, handler: quit },
};
