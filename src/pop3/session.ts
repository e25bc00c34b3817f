// One POP3 session (RFC 1939): a mail client logs in, downloads the
// messages of its INBOX and may delete them.
//
// Follows RFC 1939 (states, commands, replies), RFC 2449 (CAPA, response
// codes, PIPELINING), RFC 2595 4 (STLS), RFC 5034 (AUTH with SASL) and
// RFC 8314 (implicit TLS on the 995-role port).
//
// The state machine:
//
//     AUTHORIZATION --USER/PASS or AUTH--> TRANSACTION --QUIT--> UPDATE (expunge) --> closed
//          \--STLS (start TLS, stay in AUTHORIZATION)
//
// A connection that ends in any way other than QUIT in TRANSACTION never
// reaches UPDATE, so it removes nothing (RFC 1939 6).
//
// Each command is a row of the table in commands.ts; this loop is the only
// code that reads from or writes to the client.

import type { Connection } from '../wire/connection.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import type { Logger } from '../log.ts';
import type { Config } from '../config.ts';
import type { LoginService } from '../auth/login.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import type { Maildrop } from './maildrop.ts';
import { commandTable } from './commands.ts';

export type State = 'authorization' | 'transaction';

/** A long reply is written in pieces of about this size (back-pressure in between). */
const WRITE_BATCH = 256 * 1024;

export interface Pop3Context {
  config: Config;
  dataDir: string;
  tls: TlsCredentials | null;
  login: LoginService;
  log: Logger;
  isShuttingDown(): boolean;
}

export interface Pop3Reply {
  ok: boolean;
  text: string;
  /** A multi-line response (RFC 1939 3): these lines, then ".". */
  lines?: string[];
  /** A multi-line response streamed from the store (LF text): RETR and TOP. */
  body?: () => AsyncIterable<Buffer>;
  /** Close the connection after this reply. */
  close?: boolean;
  /** After this +OK, start the TLS handshake (STLS). */
  startTls?: boolean;
  /** An AUTH challenge: send "+ challenge", read one line, hand it here. */
  challenge?: { text: string; next: (line: string) => Promise<Pop3Reply> };
}

export interface Command {
  allowedIn: readonly State[];
  handler: (session: Pop3Session, argument: string) => Pop3Reply | Promise<Pop3Reply>;
}

export const ok = (text: string, extra: Partial<Pop3Reply> = {}): Pop3Reply => ({ ok: true, text, ...extra });
export const err = (text: string, extra: Partial<Pop3Reply> = {}): Pop3Reply => ({ ok: false, text, ...extra });

export class Pop3Session {
  state: State = 'authorization';
  /** The name given by USER, waiting for PASS. */
  pendingUser: string | null = null;
  maildrop: Maildrop | null = null;
  readonly conn: Connection;
  readonly ctx: Pop3Context;
  readonly log: Logger;
  private errors = 0;

  constructor(conn: Connection, ctx: Pop3Context) {
    this.conn = conn;
    this.ctx = ctx;
    this.log = ctx.log;
  }

  async run(): Promise<void> {
    try {
      await this.loop();
    } finally {
      // Whatever happened, the maildrop lock goes; only QUIT expunged anything.
      await this.maildrop?.release();
      this.conn.end();
    }
  }

  private async loop(): Promise<void> {
    this.send(ok(`${this.ctx.config.hostname} POP3 jjordan-mail ready`));
    for (;;) {
      const line = await this.conn.readLine();
      if (line.kind === 'closed' || line.kind === 'interrupted' || line.kind === 'timeout') {
        this.log.event(line.kind === 'closed' ? 'disconnect' : line.kind, { during: this.state, expunged: 0 });
        // RFC 1939 3: an idle timeout closes the session without entering UPDATE.
        if (line.kind !== 'closed') this.send(err(line.kind === 'timeout' ? 'Idle for too long, closing' : 'Server shutting down'));
        return;
      }
      let reply: Pop3Reply;
      if (line.kind === 'too-long') {
        this.log.trace('C', '(line too long, discarded)');
        reply = err('Line too long');
      } else {
        this.log.trace('C', /^(PASS|AUTH) /i.test(line.text) ? line.text.replace(/^(PASS|AUTH \S+) .*/i, '$1 ****') : line.text);
        reply = await this.dispatch(line.text);
      }
      reply = await this.respond(reply);
      if (reply.close || this.conn.isClosed) return;
      if (!reply.ok && ++this.errors >= this.ctx.config.limits.maxErrors) {
        this.send(err('Too many errors, closing'));
        return;
      }
    }
  }

  /** Send a reply and whatever follows it (a message, a TLS handshake, an AUTH exchange). */
  private async respond(reply: Pop3Reply): Promise<Pop3Reply> {
    while (reply.challenge) {
      this.conn.write(`+ ${reply.challenge.text}\r\n`);
      this.log.trace('S', `+ ${reply.challenge.text}`);
      const line = await this.conn.readLine();
      if (line.kind !== 'line') return err('Authentication aborted', { close: true });
      this.log.trace('C', '****'); // a SASL response: base64 of a password
      reply = await reply.challenge.next(line.text);
    }
    if (reply.body) {
      // The status line, the message and the final "." go out together when
      // the message is small (one write, one packet), in pieces when large.
      const writer = new DotWriter();
      const pending: Buffer[] = [Buffer.from(this.format(reply))];
      let pendingBytes = 0;
      let sentSome = false;
      try {
        for await (const chunk of reply.body()) {
          const encoded = writer.push(chunk);
          pending.push(encoded);
          pendingBytes += encoded.length;
          if (pendingBytes >= WRITE_BATCH) {
            sentSome = true;
            await this.conn.writeAndDrain(Buffer.concat(pending.splice(0)));
            pendingBytes = 0;
          }
        }
      } catch (error) {
        // The mbox no longer matches its index (changed under us, or a read
        // error). Before any byte went out we can still say -ERR; after, the
        // only honest end is to hang up: without the final "." the client
        // knows the message is incomplete.
        this.log.event('retr-failed', { error: (error as Error).message, partial: sentSome });
        if (sentSome) return err('Message could not be read', { close: true });
        reply = err('[SYS/TEMP] Message could not be read, try again later');
        this.send(reply);
        return reply;
      }
      pending.push(writer.end());
      await this.conn.writeAndDrain(Buffer.concat(pending));
    } else {
      this.send(reply);
    }
    if (reply.startTls && !(await this.conn.startTls(this.ctx.tls!.context))) {
      this.log.event('tls-failed');
      return err('TLS failed', { close: true });
    }
    if (reply.startTls) {
      this.log.event('tls', { version: this.conn.tlsDescription });
      this.pendingUser = null; // RFC 2595 4: forget what was said in clear
    }
    return reply;
  }

  /** Look the command up, check the state, run the handler. */
  private async dispatch(text: string): Promise<Pop3Reply> {
    const space = text.indexOf(' ');
    const name = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const argument = space < 0 ? '' : text.slice(space + 1);
    const command = commandTable[name];
    if (!command) return err(`Unknown command ${name.slice(0, 20)}`);
    if (!command.allowedIn.includes(this.state)) {
      return err(this.state === 'authorization' ? `${name} needs a login first` : `${name} is not allowed after login`);
    }
    try {
      return await command.handler(this, argument);
    } catch (error) {
      this.log.event('error', { command: name, error: (error as Error).message });
      return err('[SYS/TEMP] Internal error, try again later');
    }
  }

  send(reply: Pop3Reply): void {
    this.conn.write(this.format(reply));
  }

  /** A reply as it goes on the wire (the status line, and a listing if any). */
  private format(reply: Pop3Reply): string {
    const first = `${reply.ok ? '+OK' : '-ERR'} ${reply.text}`;
    this.log.trace('S', first);
    let text = `${first}\r\n`;
    if (reply.lines) {
      // RFC 1939 3: a line starting with "." gets one more; "." ends the list.
      for (const line of reply.lines) text += `${line.startsWith('.') ? '.' : ''}${line}\r\n`;
      text += '.\r\n';
    }
    return text;
  }
}
