// The webmail's IMAP connection to the mail server (RFC 3501 2.2, 5.5, 7):
// open it over TLS, read the greeting, then run one command at a time and
// collect what the server says until the command's tagged status.
//
//   C: w3 UID FETCH 7 (BODY.PEEK[1])
//   S: * 5 FETCH (UID 7 BODY[1] {42}          <- untagged data, collected
//   S: ...42 bytes...)
//   S: w3 OK UID FETCH completed              <- the end of this command
//
// The socket sits in the same Connection the server's sessions use
// (wire/connection.ts: bounded buffers, a deadline on every wait), and
// responses are framed by the same command reader: a response is lines with
// literals between them, exactly like a command.
//
// TLS: implicit (port 993, RFC 8314) or STARTTLS (143, RFC 3501 6.2.1),
// always with the server's certificate checked against `servername` and
// the trusted CAs. There is no "accept any certificate" setting: the
// connection carries the user's password.
//
// Invariants:
// - One command at a time (a queue): the pages of one browser may ask at
//   once, and IMAP responses carry no tag until the end.
// - A synchronising literal ({n}) is sent only after the server's "+"
//   (RFC 3501 7.5); a refusal instead ends the command there.
// - Anything unexpected on the wire (a timeout, a close, a response that
//   does not parse) breaks the connection for good: `broken` is set, the
//   socket destroyed, and the caller opens a new one.
// - Passwords never reach the trace (`logAs`).

import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { Connection } from '../../wire/connection.ts';
import { MemoryLiteral, readCommand } from '../../wire/command-reader.ts';
import type { LiteralPolicy } from '../../wire/command-reader.ts';
import { parseResponse } from './response.ts';
import type { Response, StatusWord, Untagged } from './response.ts';

export interface ImapServerAddress {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls';
  /** The name the server's certificate must carry (RFC 6125), also sent as SNI. */
  servername: string;
  /** PEM certificates to trust instead of the system's list. */
  ca?: string | Buffer | (string | Buffer)[];
  /** The longest wait for connecting, the handshake, or any response. */
  timeoutMs: number;
  /** Largest response (lines and literals together) accepted. */
  maxResponseBytes: number;
}

/** A piece of a command: text, or a literal (bytes, or a stream of known size). */
export type CommandPart = string | { literal: Buffer } | { stream: () => AsyncIterable<Buffer>; size: number };

export interface CommandResult {
  code: string | null;
  text: string;
  untagged: Untagged[];
}

/** The server answered NO or BAD. */
export class ImapCommandError extends Error {
  readonly status: StatusWord;
  /** The response code (RFC 5530), e.g. AUTHENTICATIONFAILED, TRYCREATE, NONEXISTENT. */
  readonly code: string | null;
  readonly untagged: Untagged[];
  constructor(status: StatusWord, code: string | null, text: string, untagged: Untagged[]) {
    super(text || `${status}${code ? ` [${code}]` : ''}`);
    this.status = status;
    this.code = code;
    this.untagged = untagged;
  }
}

/** The connection could not be made or broke: nothing more can be sent on it. */
export class ImapConnectionError extends Error {}

export type Trace = (direction: 'C' | 'S', line: string) => void;

export class ImapConnection {
  private readonly conn: Connection;
  private readonly policy: LiteralPolicy<MemoryLiteral>;
  private readonly trace: Trace;
  private counter = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set once the connection is unusable. */
  broken = false;
  capabilities = new Set<string>();

  private constructor(conn: Connection, server: ImapServerAddress, trace: Trace) {
    this.conn = conn;
    this.trace = trace;
    this.policy = {
      maxLiteralBytes: server.maxResponseBytes,
      maxNonSyncLiteralBytes: server.maxResponseBytes,
      maxCommandBytes: server.maxResponseBytes,
      // A server's literals need no invitation: the reader "sends" nothing.
      continuation: '',
      openLiteral: () => new MemoryLiteral(),
    };
  }

  /** Connect, TLS, greeting (and STARTTLS): ready for LOGIN. */
  static async open(server: ImapServerAddress, trace: Trace = () => {}): Promise<ImapConnection> {
    const implicit = server.tls === 'implicit';
    const socket = implicit ? tlsConnect({ host: server.host, port: server.port, ...tlsOptions(server) }) : netConnect({ host: server.host, port: server.port });
    const error = await waitFor(socket, implicit ? 'secureConnect' : 'connect', server.timeoutMs);
    if (error) throw new ImapConnectionError(`${server.host}:${server.port}: ${error}`);
    const conn = new Connection(socket, { maxLineBytes: server.maxResponseBytes, idleTimeoutMs: server.timeoutMs, maxBufferedBytes: 1024 * 1024 });
    const imap = new ImapConnection(conn, server, trace);
    try {
      await imap.readGreeting();
      if (!implicit) {
        await imap.run(['STARTTLS']);
        const failed = await conn.startTlsAsClient(tlsOptions(server));
        if (failed) throw new ImapConnectionError(`STARTTLS with ${server.host}:${server.port}: ${failed}`);
        // RFC 3501 6.2.1: what the server said in clear is forgotten; ask again.
        imap.capabilities = new Set();
      }
      if (imap.capabilities.size === 0) await imap.run(['CAPABILITY']);
      return imap;
    } catch (err) {
      imap.destroy();
      throw err;
    }
  }

  private async readGreeting(): Promise<void> {
    const response = await this.readResponse();
    // RFC 3501 7.1.5: a BYE greeting means the server will not talk to us.
    if (response.kind !== 'untagged' || response.data.type !== 'status' || response.data.status === 'BYE') {
      throw this.fail('the server did not greet with OK');
    }
    this.noteCapabilities(response.data.code);
  }

  /**
   * Run one command and return its untagged responses; a NO or BAD throws
   * ImapCommandError. `logAs` replaces the command in the trace.
   */
  run(parts: CommandPart[], logAs?: string): Promise<CommandResult> {
    const result = this.queue.then(() => this.execute(parts, logAs));
    this.queue = result.catch(() => {});
    return result;
  }

  private async execute(parts: CommandPart[], logAs?: string): Promise<CommandResult> {
    if (this.broken || this.conn.isClosed) throw this.fail('the connection is closed');
    const tag = `w${++this.counter}`;
    const untagged: Untagged[] = [];
    let line = `${tag} `;
    this.trace('C', logAs ? `${tag} ${logAs}` : `${tag} ${parts.map((p) => (typeof p === 'string' ? p : `{${'literal' in p ? p.literal.length : p.size}}`)).join('')}`);
    for (const part of parts) {
      if (typeof part === 'string') {
        line += part;
        continue;
      }
      const size = 'literal' in part ? part.literal.length : part.size;
      this.conn.send(`${line}{${size}}\r\n`);
      line = '';
      // RFC 3501 7.5: wait for "+"; a tagged reply instead refuses the literal.
      for (;;) {
        const response = await this.readResponse();
        if (response.kind === 'continuation') break;
        if (response.kind === 'tagged') return this.finish(tag, response, untagged);
        this.collect(response.data, untagged);
      }
      if ('literal' in part) this.conn.send(part.literal);
      else await this.sendStream(part.stream(), size);
    }
    this.conn.send(`${line}\r\n`);
    for (;;) {
      const response = await this.readResponse();
      if (response.kind === 'tagged') return this.finish(tag, response, untagged);
      if (response.kind === 'continuation') throw this.fail('unexpected continuation request');
      this.collect(response.data, untagged);
    }
  }

  /** A literal from a stream: exactly `size` bytes, with back-pressure. */
  private async sendStream(chunks: AsyncIterable<Buffer>, size: number): Promise<void> {
    let sent = 0;
    for await (const chunk of chunks) {
      sent += chunk.length;
      if (sent > size) break;
      await this.conn.sendAndDrain(chunk);
    }
    // Fewer or more bytes than announced would leave client and server out of step.
    if (sent !== size) throw this.fail(`literal stream gave ${sent} bytes, not ${size}`);
  }

  private finish(tag: string, response: Extract<Response, { kind: 'tagged' }>, untagged: Untagged[]): CommandResult {
    if (response.tag !== tag) throw this.fail(`reply for tag ${response.tag} while waiting for ${tag}`);
    if (response.status !== 'OK') throw new ImapCommandError(response.status, response.code, response.text, untagged);
    this.noteCapabilities(response.code);
    return { code: response.code, text: response.text, untagged };
  }

  private collect(data: Untagged, untagged: Untagged[]): void {
    if (data.type === 'CAPABILITY') this.capabilities = new Set(data.capabilities);
    if (data.type === 'status' && data.status === 'BYE') this.broken = true; // RFC 3501 7.1.5: it is closing
    untagged.push(data);
  }

  /** A CAPABILITY response code (greeting, LOGIN's OK) replaces what we knew. */
  private noteCapabilities(code: string | null): void {
    if (code?.toUpperCase().startsWith('CAPABILITY ')) this.capabilities = new Set(code.slice(11).trim().toUpperCase().split(/\s+/));
  }

  private async readResponse(): Promise<Response> {
    const read = await readCommand(this.conn, this.policy);
    if (read.kind !== 'command') throw this.fail(read.kind === 'closed' ? 'the server closed the connection' : `reading a response: ${read.kind}`);
    for (const line of read.lines) this.trace('S', line);
    try {
      return parseResponse(read);
    } catch (err) {
      throw this.fail(`unreadable response ${JSON.stringify(read.lines[0].slice(0, 80))}: ${(err as Error).message}`);
    }
  }

  private fail(message: string): ImapConnectionError {
    this.destroy();
    return new ImapConnectionError(message);
  }

  /** LOGOUT (RFC 3501 6.1.3), then close; never throws, never waits long. */
  async logout(): Promise<void> {
    if (!this.broken && !this.conn.isClosed) await this.run(['LOGOUT']).catch(() => {});
    this.destroy();
  }

  destroy(): void {
    this.broken = true;
    this.conn.destroy();
  }

  get isUsable(): boolean {
    return !this.broken && !this.conn.isClosed;
  }
}

/**
 * The certificate must lead to a trusted CA and name `servername`. SNI
 * carries host names only (RFC 6066 3), so an IP address is checked but
 * not sent.
 */
function tlsOptions(server: ImapServerAddress): ConnectionOptions {
  return {
    servername: isIP(server.servername) ? undefined : server.servername,
    ca: server.ca,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2', // RFC 8996, RFC 8314 4.1
    checkServerIdentity: (_host, cert) => checkServerIdentity(server.servername, cert),
  };
}

function waitFor(socket: Socket, event: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const finish = (error: string | null) => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.on('error', () => {}); // a late error must not crash the process
      if (error) socket.destroy();
      resolve(error);
    };
    const onError = (err: Error) => finish(err.message);
    const timer = setTimeout(() => finish(`no connection within ${timeoutMs} ms`), timeoutMs);
    socket.once(event, () => finish(null));
    socket.once('error', onError);
  });
}
