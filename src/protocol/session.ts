// The session loop every protocol runs: SMTP, POP3 and IMAP meet the same
// loop here, and their own files hold only what each protocol adds (its
// command table, its replies, its state).
//
//     greeting
//     loop:
//       read one command (wire/connection.ts: limits, deadlines, back-pressure)
//       look it up in the command table; is it allowed in this phase?
//       run its handler, which returns an Outcome (types.ts)
//       apply the Outcome: change the state, send the reply, do the follow-up
//       count errors; too many, or a shutdown, ends the session
//       if the client waits for each reply: the work meant for meanwhile
//         (POP3 gets the next message ready while the client reads this one)
//
// The follow-ups are the only places where a command reads or writes more
// than one line: STARTTLS's handshake, a login (the password check goes
// through auth/login.ts, with its throttle), a SASL exchange, a long reply
// streamed with back-pressure, and protocol framing such as SMTP DATA.
//
// Invariants:
// - Only this loop writes replies, and it traces every line it writes and
//   reads, with the secrets a command table marks hidden.
// - A handler that throws gets the protocol's "internal error" reply; the
//   session goes on (a bug must not drop a connection mid-transaction).
// - The state changes only through Outcome.change, so a reader can see in
//   each handler exactly what a command changes.

import type { Connection, LineResult } from '../wire/connection.ts';
import type { Logger } from '../log.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import type { SaslExchange } from '../auth/sasl.ts';
import { checkLogin } from '../auth/login.ts';
import type { LoginService } from '../auth/login.ts';
import type { BaseRequest, Command, Dialect, Input, Outcome, PhaseState, SaslResult, SessionIO } from './types.ts';

const HTTP_REQUEST = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH) \S+( HTTP\/\d)?/i;

/**
 * A command table as a Map, made once per table. A verb is a new string at
 * every command: a Map finds it by its hash, where an object's property
 * lookup would first look the string up in V8's table of names.
 */
const commandMaps = new WeakMap<object, Map<string, unknown>>();
function commandMap<C>(table: Record<string, C>): Map<string, C> {
  let map = commandMaps.get(table);
  if (!map) commandMaps.set(table, (map = new Map(Object.entries(table))));
  return map as Map<string, C>;
}

export interface SessionSettings {
  /** Errors before the session is closed (RFC 5321 4.3.2 allows it; so do POP3 and IMAP servers). */
  maxErrors: number;
  /** The server is stopping: finish the command in hand, then say goodbye. */
  isShuttingDown(): boolean;
  /** Logins (AUTH, USER/PASS, LOGIN) go through here. */
  login: LoginService;
  /** The certificate for STARTTLS; null when TLS is not available. */
  tls: TlsCredentials | null;
  log: Logger;
}

/** The view of a session its handlers get: read-only state, plus the connection's facts. */
export interface SessionView<S, Ctx> {
  readonly state: Readonly<S>;
  readonly ctx: Ctx;
  readonly conn: Connection;
  readonly log: Logger;
}

export class ProtocolSession<S extends PhaseState, Ctx, Request extends BaseRequest, R> {
  readonly conn: Connection;
  readonly ctx: Ctx;
  readonly log: Logger;
  state: S;
  private readonly dialect: Dialect<SessionView<S, Ctx>, Request, R, S>;
  private readonly commands: Map<string, Command<SessionView<S, Ctx>, Request, R, S>>;
  private readonly settings: SessionSettings;
  private errors = 0;
  private closing = false;
  /** The client has sent a command before our reply to the one before (see meanwhile()). */
  private pipelining = false;
  /** The command being carried out (for the internal-error reply of a failing follow-up). */
  private request: Request | null = null;

  constructor(conn: Connection, dialect: Dialect<SessionView<S, Ctx>, Request, R, S>, initial: S, ctx: Ctx, settings: SessionSettings) {
    this.conn = conn;
    this.dialect = dialect;
    this.commands = commandMap(dialect.commands);
    this.state = initial;
    this.ctx = ctx;
    this.settings = settings;
    this.log = settings.log;
  }

  /** Run the conversation to its end; resolves when the connection is closed. */
  async run(): Promise<void> {
    try {
      await this.converse();
    } finally {
      // Let go of what the session holds before the client sees the close, so
      // a client that reconnects at once finds it free (POP3's maildrop lock).
      await this.dialect.release?.(this.state);
      this.conn.end();
    }
  }

  private async converse(): Promise<void> {
    this.send(this.dialect.greeting(this));
    while (!this.closing) {
      let input: Input<Request, R, S>;
      if (this.dialect.read) input = await this.dialect.read(this.conn, this);
      else {
        const line = this.conn.readLine(); // at once if the client sent it ahead (pipelining): no pause
        input = this.lineInput(line instanceof Promise ? await line : line);
      }
      let outcome: Outcome<R, S> | Promise<Outcome<R, S>>;
      switch (input.kind) {
        case 'closed':
        case 'timeout':
        case 'interrupted':
          this.endOfInput(input.kind);
          return;
        case 'hang-up':
          this.log.event('refused', { reason: input.reason });
          this.conn.destroy();
          return;
        case 'too-long':
          this.log.trace('C', '(line too long, discarded)');
          outcome = { reply: this.dialect.replies.lineTooLong(this) };
          break;
        case 'refused':
          this.log.trace('C', input.trace);
          outcome = input.outcome;
          break;
        case 'request':
          outcome = this.dispatch(input.request, input.trace);
          break;
      }
      // Most commands are answered at once (NOOP, DELE, RCPT): no await for
      // them, since every await is a pause of its own and a promise to collect.
      if (outcome instanceof Promise) outcome = await outcome;
      const done = input.kind === 'request' ? input.done : undefined;
      if (done) {
        try {
          await this.apply(outcome);
        } finally {
          await done();
        }
      } else if (outcome.next) {
        await this.apply(outcome);
      } else {
        this.settle(outcome);
      }
      if (this.closing || this.conn.isClosed) return;
      if (outcome.meanwhile && !this.pipelining) this.meanwhile(outcome.meanwhile);
      if (this.settings.isShuttingDown() && !this.conn.hasBuffered()) {
        this.send(this.dialect.replies.shuttingDown(this));
        return;
      }
    }
  }

  /**
   * Send the reply, then do the work meant for while the client reads it
   * (types.ts Outcome.meanwhile). Not for a client that sends commands
   * ahead (pipelining, RFC 2920, RFC 2449 6.6): it does not wait for our
   * replies, so this would only be in its way. Once one has, never again.
   */
  private meanwhile(work: () => void): void {
    if (this.conn.hasBuffered()) {
      this.pipelining = true;
      return;
    }
    this.conn.flush();
    try {
      work();
    } catch {
      // Only a saving: the command it was for does the work again, and reports.
    }
  }

  /** The reader of line-based protocols (SMTP, POP3): one line is one command. */
  private lineInput(line: LineResult): Input<Request, R, S> {
    if (line.kind !== 'line') return line;
    const parsed = this.dialect.parse(line.text);
    // A cross-protocol attack makes a browser send HTTP to a mail port, hoping the
    // server executes lines of it as commands. Postfix hangs up on these at once.
    // (A line that is one of our commands is not one of those.)
    const known = !('reply' in parsed) && this.commands.has(parsed.request.verb);
    if (!known && HTTP_REQUEST.test(line.text)) return { kind: 'hang-up', reason: 'http-request-on-mail-port' };
    if ('reply' in parsed) return { kind: 'refused', outcome: { reply: parsed.reply }, trace: line.text };
    return { kind: 'request', request: parsed.request, trace: line.text };
  }

  /** Look the command up, check the phase, run the handler (a promise only if the handler returned one). */
  private dispatch(request: Request, trace: string): Outcome<R, S> | Promise<Outcome<R, S>> {
    this.request = request;
    const command = this.commands.get(request.verb);
    if (this.log.tracing) this.log.trace('C', command?.redact ? command.redact(trace) : trace);
    if (!command) return { reply: this.dialect.replies.unknownCommand(this, request) };
    if (!command.allowedIn.includes(this.state.phase)) return { reply: this.dialect.replies.wrongPhase(this, request) };
    try {
      const outcome = command.handler(this, request);
      return outcome instanceof Promise ? outcome.catch((err: unknown) => this.handlerFailed(request, err)) : outcome;
    } catch (err) {
      return this.handlerFailed(request, err);
    }
  }

  private handlerFailed(request: Request, err: unknown): Outcome<R, S> {
    const malformed = this.dialect.argumentError?.(request, err);
    if (malformed) return { reply: malformed };
    this.log.event('error', { command: request.verb, error: (err as Error).message });
    return { reply: this.dialect.replies.internalError(this, request) };
  }

  /**
   * Apply an outcome: change the state, send the reply, run the follow-up
   * (which may yield another outcome). A follow-up that throws (a mailbox
   * that cannot be opened after a login) gets the internal-error reply.
   */
  private async apply(first: Outcome<R, S>): Promise<void> {
    let outcome: Outcome<R, S> | null = first;
    while (outcome) {
      if (!this.settle(outcome)) return;
      try {
        outcome = await this.followUp(outcome.next!);
      } catch (err) {
        const request = this.request!;
        this.log.event('error', { command: request.verb, error: (err as Error).message });
        outcome = { reply: this.dialect.replies.internalError(this, request) };
      }
    }
  }

  /** The part of apply() that never waits: the state change and the reply. True if a follow-up is to run. */
  private settle(outcome: Outcome<R, S>): boolean {
    if (outcome.change) this.state = { ...this.state, ...outcome.change };
    if (outcome.reply !== undefined) this.sendCounted(outcome.reply);
    return !this.closing && outcome.next !== undefined;
  }

  private async followUp(next: NonNullable<Outcome<R, S>['next']>): Promise<Outcome<R, S> | null> {
    switch (next.kind) {
      case 'close':
        this.closing = true;
        return null;
      case 'starttls':
        return this.startTls();
      case 'login':
        return next.then(await this.checkPassword(next.username, next.password, next.address));
      case 'sasl': {
        const result = await this.saslExchange(next.exchange, next.initial, next.address);
        return result && next.then(result);
      }
      case 'stream':
        return this.stream(next);
      case 'run': {
        const io: SessionIO<R, S> = { conn: this.conn, log: this.log, state: this.state, send: (reply) => this.send(reply) };
        const result = await next.run(io);
        if (result === null) this.closing = true; // the client vanished: nothing more to say
        return result;
      }
    }
  }

  /** STARTTLS: the handshake, then the state from before it is forgotten. */
  private async startTls(): Promise<Outcome<R, S> | null> {
    if (!(await this.conn.startTls(this.settings.tls!.context))) {
      this.log.event('tls-failed');
      this.closing = true;
      return null;
    }
    this.log.event('tls', { version: this.conn.tlsDescription });
    return { change: this.dialect.afterTls(this.state) };
  }

  /** The client stopped talking: say why we close, if anyone is still there to hear it. */
  private endOfInput(kind: 'closed' | 'timeout' | 'interrupted'): void {
    this.closing = true;
    const fields = { during: this.state.phase, ...this.dialect.endFields?.(this.state) };
    if (kind === 'closed') {
      this.log.event('disconnect', fields);
      return;
    }
    this.log.event(kind === 'timeout' ? 'timeout' : 'shutdown', fields);
    this.send(kind === 'timeout' ? this.dialect.replies.idle(this) : this.dialect.replies.shuttingDown(this));
  }

  private checkPassword(username: string, password: string, address = this.conn.remoteAddress) {
    return checkLogin(this.settings.login, this.log, address, username, password);
  }

  /**
   * A SASL exchange (RFC 4422): challenges go out in the protocol's form,
   * each answer is one line (never traced: it carries the password), and the
   * credentials it yields are checked like any login.
   */
  private async saslExchange(exchange: SaslExchange, initial?: string, address?: string): Promise<SaslResult | null> {
    let step = exchange.start(initial);
    while (step.kind === 'challenge') {
      const challenge = this.dialect.saslChallenge(step.challenge);
      this.log.trace('S', challenge);
      this.conn.send(challenge + '\r\n');
      const line = await this.conn.readLine();
      if (line.kind === 'too-long') return { ok: false, reason: 'line-too-long' };
      if (line.kind !== 'line') {
        this.endOfInput(line.kind); // silent, gone or shutting down in the middle of the exchange
        return null;
      }
      this.log.trace('C', '****');
      step = exchange.next(line.text);
    }
    if (step.kind === 'failed') return { ok: false, reason: step.reason };
    return this.checkPassword(step.username, step.password, address);
  }

  /** Send a long reply piece by piece, waiting for the client between pieces. */
  private async stream(next: Extract<NonNullable<Outcome<R, S>['next']>, { kind: 'stream' }>): Promise<Outcome<R, S> | null> {
    let sentSome = false;
    try {
      for await (const piece of next.body()) {
        if (!sentSome && next.head !== undefined) this.send(next.head);
        sentSome = true;
        await this.conn.sendAndDrain(piece);
        if (this.conn.isClosed) break;
      }
    } catch (error) {
      this.log.event('stream-failed', { error: (error as Error).message, partial: sentSome });
      return next.onError(error as Error, sentSome);
    }
    if (this.conn.isClosed) {
      this.endOfInput(this.conn.endReason); // it stopped reading, or left, in the middle
      return null;
    }
    if (!sentSome && next.head !== undefined) this.send(next.head); // an empty body
    return typeof next.then === 'function' ? next.then() : (next.then ?? null);
  }

  /** Send a reply and count it if it is an error. */
  private sendCounted(reply: R): void {
    this.send(reply);
    if (this.dialect.isError(reply) && ++this.errors >= this.settings.maxErrors) {
      this.log.event('refused', { reason: 'too-many-errors' });
      this.send(this.dialect.replies.tooManyErrors(this));
      this.closing = true;
    }
  }

  /** Queue a reply for the client (the connection writes queued replies together). */
  send(reply: R): void {
    const wire = this.dialect.format(reply);
    if (this.log.tracing) {
      const shown = this.dialect.traced?.(reply) ?? wire;
      const text = typeof shown === 'string' ? shown : Buffer.isBuffer(shown) ? shown.toString('utf8') : shown.latin1;
      for (const line of text.split('\r\n').slice(0, -1)) this.log.trace('S', line);
    }
    this.conn.send(wire);
  }
}
