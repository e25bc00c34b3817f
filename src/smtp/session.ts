// One SMTP session (RFC 5321): the server side of a conversation with another
// mail server or a mail client, from the 220 greeting to QUIT.
//
// Follows RFC 5321 sections 3 (procedures) and 4 (commands, replies, limits),
// with the extensions PIPELINING (RFC 2920), 8BITMIME (RFC 6152), SIZE
// (RFC 1870), ENHANCEDSTATUSCODES (RFC 2034/3463), SMTPUTF8 (RFC 6531),
// STARTTLS (RFC 3207) and AUTH (RFC 4954), and submission (RFC 6409).
//
// The state machine:
//
//     fresh --EHLO/HELO--> greeted --MAIL--> mail --RCPT--> rcpt --DATA..--> greeted
//       \_______________________MAIL_______/                 (RSET/EHLO: back to greeted)
//
// AUTH happens in `greeted`, STARTTLS in `fresh` or `greeted`. STARTTLS sends
// everything back to `fresh` (RFC 3207 4.2: the client must say EHLO again over TLS).
//
// Each command is a row of the table in commands.ts: which states allow it and
// the handler that returns its reply. Handlers never read from or write to the
// client: `run` and `followUp` below do, and receive.ts reads and delivers the
// message itself (after DATA's 354).

import type { Connection } from '../wire/connection.ts';
import type { Logger } from '../log.ts';
import type { Config } from '../config.ts';
import type { Accounts } from '../auth/accounts.ts';
import type { LocalDelivery } from './delivery.ts';
import type { LoginService } from '../auth/login.ts';
import { canCarryPasswords } from '../wire/connection.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import { formatReply, reply } from './reply.ts';
import type { Reply } from './reply.ts';
import { commandTable } from './commands.ts';
import { receiveAndDeliver } from './receive.ts';

export type State = 'fresh' | 'greeted' | 'mail' | 'rcpt';

/** Which port the client came in on (see server.ts). */
export type Role = 'smtp' | 'submission';

export interface Recipient {
  address: string;
  /** Local accounts this address delivers to (more than one for an alias); empty for a remote one. */
  accounts: string[];
  /** A recipient in another domain: goes to the outbound queue (authenticated users only). */
  remote: boolean;
}

export interface Envelope {
  from: string;
  recipients: Recipient[];
  /** BODY=8BITMIME was given (RFC 6152). */
  eightBit: boolean;
  /** SMTPUTF8 was given (RFC 6531). */
  utf8: boolean;
}

export interface SessionContext {
  config: Config;
  role: Role;
  /** The certificate for STARTTLS; null when TLS is not available. */
  tls: TlsCredentials | null;
  login: LoginService;
  accounts: Accounts;
  delivery: LocalDelivery;
  /** Where large messages are spooled while they arrive. */
  tmpDir: string;
  log: Logger;
  isShuttingDown(): boolean;
}

/** What a handler may ask of the loop besides sending its reply. */
export interface HandlerResult extends Reply {
  /** After this 354, read the message (DATA). */
  readMessage?: boolean;
  /** After this 220, start the TLS handshake (STARTTLS). */
  startTls?: boolean;
  /** After this reply, read one more line and hand it here (the AUTH exchange). */
  continueWith?: (line: string) => HandlerResult | Promise<HandlerResult>;
}

export interface Command {
  allowedIn: readonly State[];
  /** The reply when the command comes in the wrong state. */
  outOfSequence?: string;
  handler: (session: Session, argument: string) => HandlerResult | Promise<HandlerResult>;
}

// A cross-protocol attack makes a browser send HTTP to a mail port, hoping the
// server executes lines of it as commands. Postfix hangs up on these at once.
const HTTP_REQUEST = /^(GET|POST|HEAD|PUT|DELETE|OPTIONS|CONNECT|PATCH) \S+( HTTP\/\d)?/i;

export class Session {
  state: State = 'fresh';
  heloName = '';
  /** EHLO (not HELO) was used: the Received: field says ESMTP. */
  extended = false;
  /** The account that logged in with AUTH, or null. */
  authenticatedAs: string | null = null;
  envelope: Envelope | null = null;
  readonly conn: Connection;
  readonly ctx: SessionContext;
  readonly log: Logger;
  readonly id: string;
  private errors = 0;

  constructor(conn: Connection, ctx: SessionContext, id: string) {
    this.conn = conn;
    this.ctx = ctx;
    this.id = id;
    this.log = ctx.log;
  }

  async run(): Promise<void> {
    const { hostname } = this.ctx.config;
    // RFC 5321 4.2: the greeting carries no enhanced code (RFC 2034 3).
    this.send({ code: 220, text: `${hostname} ESMTP jjordan-mail` });
    for (;;) {
      const line = await this.conn.readLine();
      if (line.kind === 'closed' || line.kind === 'timeout' || line.kind === 'interrupted') {
        const last = this.endOfInput(line.kind);
        if (last) this.send(last);
        break;
      }
      let result: HandlerResult;
      if (line.kind === 'too-long') {
        this.log.trace('C', '(line too long, discarded)');
        result = reply(500, '5.5.2', 'Line too long'); // RFC 5321 4.5.3.1.4: 512 octets
      } else {
        // Passwords never reach the trace: AUTH's initial response is hidden.
        this.log.trace('C', /^AUTH /i.test(line.text) ? line.text.replace(/^(AUTH \S+) .*/i, '$1 ****') : line.text);
        if (HTTP_REQUEST.test(line.text)) {
          this.log.event('refused', { reason: 'http-request-on-mail-port' });
          this.conn.destroy();
          return;
        }
        result = await this.dispatch(line.text);
      }
      this.send(result);
      const final = await this.followUp(result);
      if (!final) break; // the client vanished or TLS failed: nothing was stored
      result = final;
      if (result.close) break;
      if (result.code >= 500 && ++this.errors >= this.ctx.config.limits.maxErrors) {
        // RFC 5321 4.3.2 lets a server close a session that keeps failing.
        this.log.event('refused', { reason: 'too-many-errors' });
        this.send(reply(421, '4.7.0', `${hostname} Too many errors, closing connection`, true));
        break;
      }
      if (this.ctx.isShuttingDown() && !this.conn.hasBuffered()) {
        this.send(this.endOfInput('interrupted')!);
        break;
      }
    }
    this.conn.end();
  }

  /** Look the verb up in the table, check the state, run the handler. */
  private async dispatch(text: string): Promise<HandlerResult> {
    const space = text.indexOf(' ');
    const verb = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const argument = space < 0 ? '' : text.slice(space + 1);
    const command = commandTable[verb];
    if (!command) return reply(500, '5.5.2', 'Command not recognized');
    if (!command.allowedIn.includes(this.state)) {
      return reply(503, '5.5.1', command.outOfSequence ?? 'Bad sequence of commands');
    }
    try {
      return await command.handler(this, argument);
    } catch (err) {
      this.log.event('error', { command: verb, error: (err as Error).message });
      return reply(451, '4.3.0', 'Local error in processing, try again later');
    }
  }

  /**
   * Finish what a reply started: read the message after 354, run the TLS
   * handshake after STARTTLS's 220, or carry on the AUTH exchange after 334.
   * Returns the last reply sent, or null if the connection is gone.
   */
  private async followUp(result: HandlerResult): Promise<HandlerResult | null> {
    if (result.readMessage) {
      const final = await receiveAndDeliver(this);
      if (final) this.send(final);
      return final;
    }
    if (result.startTls) {
      if (!(await this.conn.startTls(this.ctx.tls!.context))) {
        this.log.event('tls-failed');
        return null;
      }
      this.log.event('tls', { version: this.conn.tlsDescription });
      // RFC 3207 4.2: forget everything learnt before TLS, including EHLO.
      this.state = 'fresh';
      this.heloName = '';
      this.envelope = null;
      this.authenticatedAs = null;
      return result;
    }
    while (result.continueWith) {
      const line = await this.conn.readLine();
      if (line.kind === 'too-long') return this.sendAndKeep(reply(500, '5.5.2', 'Line too long'));
      if (line.kind !== 'line') {
        // A client that goes silent mid-AUTH is timed out like any other.
        const last = this.endOfInput(line.kind);
        return last && this.sendAndKeep(last);
      }
      this.log.trace('C', '****'); // an AUTH response: base64 of a password
      result = await result.continueWith(line.text);
      this.send(result);
    }
    return result;
  }

  /**
   * When the client stops talking: log it and return the closing 421, or
   * null when the client is gone and there is no one to tell.
   */
  private endOfInput(kind: 'closed' | 'timeout' | 'interrupted'): Reply | null {
    const { hostname } = this.ctx.config;
    if (kind === 'closed') {
      this.log.event('disconnect', { during: this.state });
      return null;
    }
    if (kind === 'timeout') {
      this.log.event('timeout', { during: this.state });
      return reply(421, '4.4.2', `${hostname} Idle for too long, closing connection`, true); // RFC 5321 4.5.3.2.7
    }
    return reply(421, '4.3.2', `${hostname} Service shutting down, try again later`, true); // RFC 5321 3.8
  }

  private sendAndKeep(r: Reply): Reply {
    this.send(r);
    return r;
  }

  /** AUTH is allowed over TLS, or in clear from loopback when the config says so. */
  authAllowed(): boolean {
    return canCarryPasswords(this.conn, this.ctx.config.auth.allowPlaintextOnLoopback);
  }

  /** Start a new transaction (RSET, EHLO, after DATA): RFC 5321 4.1.1.5. */
  resetTransaction(): void {
    this.envelope = null;
    if (this.state !== 'fresh') this.state = 'greeted';
  }

  send(r: Reply): void {
    const text = formatReply(r);
    for (const line of text.split('\r\n').slice(0, -1)) this.log.trace('S', line);
    this.conn.write(text);
  }
}
