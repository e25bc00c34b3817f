// The vocabulary of the protocol layer: what a command table row is, what a
// handler returns, and what a protocol tells the shared session loop about
// itself (its dialect). SMTP, POP3 and IMAP each fill these in; the loop in
// session.ts runs them all the same way.
//
// The rule every handler follows (STYLE.md, from OpenSMTPD and mox): a
// handler checks its arguments and *returns* what should happen: a reply,
// the fields of the session state to change, and perhaps one follow-up the
// loop must perform (a TLS handshake, a login, streaming a message). Only
// the loop writes to the client, changes the state, counts errors and logs
// the conversation.

import type { Logger, LogFields } from '../log.ts';
import type { SaslExchange } from '../auth/sasl.ts';
import type { LoginResult } from '../auth/login.ts';
import type { Connection } from '../wire/connection.ts';
import type { Wire } from '../wire/reply-queue.ts';

/** Every protocol's state has a phase that the command table is checked against. */
export interface PhaseState {
  phase: string;
}

/** What one handler returns. `R` is the protocol's reply type, `S` its state. */
export interface Outcome<R, S> {
  /** Fields of the session state to change; applied before the reply is sent. */
  change?: Partial<S>;
  /** The reply; absent when a follow-up speaks first (a SASL exchange). */
  reply?: R;
  /** What the loop does after sending the reply. */
  next?: FollowUp<R, S>;
  /**
   * Work for the time the client takes to read the reply (POP3 gets the next
   * message ready, pop3/read-ahead.ts): run once the reply has gone to the
   * socket, for a client that waits for each reply before its next command
   * (not one that pipelines). Only a saving: if it throws, nothing is lost,
   * as the command it prepared for does the work itself.
   */
  meanwhile?: () => void;
}

/** Work only the loop may do, because it reads from or writes to the client. */
export type FollowUp<R, S> =
  /** Close the connection after the reply (QUIT, LOGOUT, a fatal error). */
  | { kind: 'close' }
  /** Run the TLS handshake, then forget what was said in clear (RFC 3207 4.2). */
  | { kind: 'starttls' }
  /**
   * Check a user name and password (POP3 USER/PASS, IMAP LOGIN). `address`
   * is who the login throttle counts it against when that is not the
   * connection's own address (a trusted webmail passing its user's).
   */
  | { kind: 'login'; username: string; password: string; address?: string; then: (result: LoginResult) => Outcome<R, S> | Promise<Outcome<R, S>> }
  /** Run a SASL exchange (AUTH, AUTHENTICATE), then check what it yields. */
  | { kind: 'sasl'; exchange: SaslExchange; initial?: string; address?: string; then: (result: SaslResult) => Outcome<R, S> | Promise<Outcome<R, S>> }
  /**
   * Send these bytes, with back-pressure, then apply `then` (POP3 RETR's
   * message; IMAP FETCH's untagged responses before its tagged OK). `head`,
   * a reply, goes out with the first piece, so a source that fails before
   * yielding anything can still be answered by `onError` instead; it knows
   * whether bytes already went out.
   */
  | {
      kind: 'stream';
      head?: R;
      body: () => AsyncIterable<Buffer | string>;
      /** What follows the stream; a function is called once the stream is over (it may depend on what was streamed). */
      then?: Outcome<R, S> | (() => Outcome<R, S> | Promise<Outcome<R, S>>);
      onError: (error: Error, sentSome: boolean) => Outcome<R, S>;
    }
  /** Protocol framing the loop cannot know (SMTP DATA, IMAP IDLE): run it; null if the client vanished. */
  | { kind: 'run'; run: (io: SessionIO<R, S>) => Promise<Outcome<R, S> | null> };

/** How a SASL exchange ended: credentials checked, or no credentials at all. */
export type SaslResult = LoginResult | { ok: false; reason: 'cancelled' | 'malformed' | 'line-too-long' };

/** What a `run` follow-up may use: the connection, the log, and the session's state. */
export interface SessionIO<R, S> {
  conn: Connection;
  log: Logger;
  state: Readonly<S>;
  /** Send a reply now (an intermediate one, such as IMAP's "+ idling"). */
  send(reply: R): void;
}

/** One row of a command table. */
export interface Command<View, Request, R, S> {
  /** Phases in which the command is allowed; elsewhere the dialect's `wrongPhase` reply. */
  allowedIn: readonly string[];
  /** Checks the request and returns what should happen (never touches the client). */
  handler: (session: View, request: Request) => Outcome<R, S> | Promise<Outcome<R, S>>;
  /** The command line as the trace shows it, secrets hidden (`PASS ****`). */
  redact?: (line: string) => string;
}

/** What every request has; protocols add their own fields (IMAP's tag, parsed arguments). */
export interface BaseRequest {
  /** The command name, upper case: `MAIL`, `RETR`, `UID FETCH`. */
  verb: string;
}

/** One command as the loop receives it. */
export type Input<Request, R, S> =
  /**
   * A command to look up in the table; `trace` is how the trace shows it (the
   * table may hide secrets); `done` runs once the command is over (an IMAP
   * APPEND's spooled literal is removed).
   */
  | { kind: 'request'; request: Request; trace: string; done?: () => Promise<void> }
  /** Malformed: answered without a handler. */
  | { kind: 'refused'; outcome: Outcome<R, S>; trace: string }
  /** Longer than the line limit; already skipped. */
  | { kind: 'too-long' }
  /** Not worth an answer (HTTP sent to a mail port): close at once. */
  | { kind: 'hang-up'; reason: string }
  | { kind: 'closed' | 'timeout' | 'interrupted' };

/** What a protocol tells the loop about itself. */
export interface Dialect<View, Request extends BaseRequest, R, S extends PhaseState> {
  /** The log's name for it: 'smtp', 'pop3', 'imap'. */
  name: string;
  greeting(view: View): R;
  /** Cut a command line into a request, or say why it is malformed (line-based protocols). */
  parse(line: string): { request: Request } | { reply: R };
  /** Read one command some other way than one line (IMAP: lines with literals). */
  read?(conn: Connection, session: View): Promise<Input<Request, R, S>>;
  commands: Record<string, Command<View, Request, R, S>>;
  /** The bytes of a reply on the wire (a string is sent as UTF-8; see wire/reply-queue.ts). */
  format(reply: R): Wire;
  /** What the trace shows of a reply, when not all of its bytes (POP3: a message's status line, not its text). */
  traced?(reply: R): string | undefined;
  /** Does this reply count towards the error limit (RFC 5321 4.3.2, RFC 2449, RFC 3501 BAD)? */
  isError(reply: R): boolean;
  /** The line that carries a SASL challenge (SMTP `334 x`, POP3 and IMAP `+ x`). */
  saslChallenge(challenge: string): string;
  /** State to forget after STARTTLS (RFC 3207 4.2, RFC 2595 3.1). */
  afterTls(state: S): Partial<S>;
  /** A handler threw: if this says it was the client's malformed argument, this is the reply (IMAP's BAD). */
  argumentError?(request: Request, error: unknown): R | null;
  /** Let go of what the session holds; runs however the session ends, before the connection closes. */
  release?(state: S): Promise<void>;
  /** More to log when a session ends without its protocol's goodbye (POP3: nothing was expunged). */
  endFields?(state: S): LogFields;
  /** The replies the loop itself gives (the session is passed for names such as the host's). */
  replies: {
    unknownCommand(session: View, request: Request): R;
    wrongPhase(session: View, request: Request): R;
    lineTooLong(session: View): R;
    idle(session: View): R;
    shuttingDown(session: View): R;
    tooManyErrors(session: View): R;
    internalError(session: View, request: Request): R;
  };
}
