// The socket under the relay's SMTP client: open it (plain TCP, or TLS at once
// for implicit TLS, RFC 8314 3), swap it for TLS after STARTTLS (RFC 3207),
// write with back-pressure, read whole replies, and log the conversation as
// C:/S: lines. It knows SMTP only as far as QUIT and replies go; which
// command comes next is smtp-client.ts's business.
//
// Invariants:
// - Every wait has a deadline: connecting, the TLS handshake, each reply,
//   and each write that has to wait for the socket to drain (RFC 5321
//   4.5.3.2: a client must time out rather than wait forever).
// - Passwords never reach the log: callers pass a `logAs` text for them.
// - The owner calls destroy() at the end, whatever happened.

import { connect as netConnect, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import { ReplyReader } from './smtp-reply-reader.ts';
import type { ReadReplyResult } from './smtp-reply-reader.ts';
import { describeTls } from '../tls/describe.ts';

/** Where to connect and how to judge the server's certificate. */
export interface ClientTarget {
  host: string;
  port: number;
  /** The MX host name: sent as SNI and checked against the certificate. */
  servername?: string;
  verifyCertificate: boolean;
  ca?: string | Buffer;
}

export type Log = (line: string) => void;

export class ClientConnection {
  private socket: Socket;
  private readonly reader = new ReplyReader();
  private handshakeDone = false;
  /** The conversation log; steps add their own lines (`retrying without TLS`). */
  readonly log: Log;

  private constructor(socket: Socket, log: Log) {
    this.socket = socket;
    this.log = log;
    this.reader.attach(socket);
    // We already write whole commands, whole pipelined groups and large
    // message chunks. Nagle's algorithm would only hold back the small last
    // write (the end marker) until the server's delayed ACK: 40 ms a message.
    socket.setNoDelay(true);
  }

  /**
   * Connect over TCP. Implicit TLS (RFC 8314 3) then runs startTls() at
   * once, before the greeting, so a failed handshake is told apart from a
   * failed connection. Resolves to a connection, or to the reason it could
   * not be made.
   */
  static async open(target: ClientTarget, timeoutMs: number, log: Log): Promise<ClientConnection | string> {
    log(`connecting to ${target.host}:${target.port}`);
    const socket = netConnect({ host: target.host, port: target.port });
    const error = await waitFor(socket, 'connect', timeoutMs, 'connection');
    if (error) return error;
    log(`connected to ${socket.remoteAddress}:${socket.remotePort}`);
    return new ClientConnection(socket, log);
  }

  /** True only once a handshake has completed: a TLS socket whose handshake failed is not secure. */
  get isSecure(): boolean {
    return this.handshakeDone && this.socket instanceof TLSSocket && this.socket.encrypted === true;
  }

  /** `TLSv1.3 TLS_AES_256_GCM_SHA384`, for logs; '' in clear. */
  get tlsDescription(): string {
    return describeTls(this.socket);
  }

  /**
   * Send command lines (CRLF is added to each) in one write: several lines
   * at once is how PIPELINING (RFC 2920 3.1) saves round trips.
   * `logAs` replaces the lines in the log (AUTH credentials).
   * Resolves to an error text, or null once the bytes are handed over.
   */
  sendCommands(lines: string[], timeoutMs: number, logAs?: string[]): Promise<string | null> {
    for (const line of logAs ?? lines) this.log(`C: ${line}`);
    return this.write(lines.map((line) => line + '\r\n').join(''), timeoutMs);
  }

  /**
   * Write bytes; when the socket's buffer is full, wait until it drains.
   * Waiting is the back-pressure that keeps a large message from piling up
   * in memory, and `timeoutMs` is RFC 5321 4.5.3.2.5's data block timeout:
   * a server that stops reading must not hold the delivery forever.
   */
  write(data: string | Buffer, timeoutMs: number): Promise<string | null> {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return Promise.resolve('connection closed');
    if (socket.write(data)) return Promise.resolve(null);
    return new Promise((resolve) => {
      const finish = (error: string | null) => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        resolve(error);
      };
      const onDrain = () => finish(null);
      const onClose = () => finish('connection closed');
      const timer = setTimeout(() => finish(`timed out after ${timeoutMs} ms waiting for the server to take more data`), timeoutMs);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /** Read one whole reply (logging each of its lines) within `timeoutMs`. */
  async readReply(timeoutMs: number): Promise<ReadReplyResult> {
    const result = await this.reader.readReply(timeoutMs);
    if (result.kind === 'reply') {
      const { code, lines } = result.reply;
      // The reader removed the enhanced code; show the lines as they came.
      const prefix = result.reply.enhanced ? `${result.reply.enhanced} ` : '';
      lines.forEach((line, i) => this.log(`S: ${code}${i < lines.length - 1 ? '-' : ' '}${prefix}${line}`.trimEnd()));
    } else if (result.kind === 'malformed') {
      this.log(`S: ${result.line} (not an SMTP reply)`);
    } else {
      this.log(result.kind === 'timeout' ? `no reply within ${timeoutMs} ms` : `connection closed${result.error ? `: ${result.error}` : ''}`);
    }
    return result;
  }

  /**
   * After the server's 220 to STARTTLS, or right after connecting for
   * implicit TLS: run the TLS handshake on this socket and read from the
   * encrypted stream from then on. Resolves to an error text, or null when
   * the connection is encrypted (and, when asked, the certificate verified).
   */
  async startTls(target: ClientTarget, timeoutMs: number): Promise<string | null> {
    // RFC 3207 4.2 (and CVE-2011-0411's client-side twin): anything the
    // server sent after its 220 came in clear and could have been injected;
    // it must not be read as a reply over TLS.
    if (this.reader.hasBuffered()) this.log('discarding bytes sent in clear after STARTTLS');
    this.reader.detach();
    this.reader.discardBuffered();
    const secure = tlsConnect({ socket: this.socket, ...tlsOptions(target) });
    this.socket = secure;
    const error = await waitFor(secure, 'secureConnect', timeoutMs, 'TLS handshake');
    if (error) return error;
    this.handshakeDone = true;
    this.reader.attach(secure);
    this.log(`TLS established: ${this.tlsDescription}`);
    return null;
  }

  /**
   * RFC 5321 4.1.1.10: say QUIT and read the 221, but only briefly: the
   * delivery is already decided and a slow goodbye must not hold it up.
   */
  async quit(timeoutMs: number): Promise<void> {
    if (this.socket.destroyed || !this.socket.writable) return;
    if ((await this.sendCommands(['QUIT'], timeoutMs)) === null) await this.readReply(timeoutMs);
  }

  destroy(): void {
    this.reader.detach();
    this.socket.destroy();
  }
}

/**
 * Options shared by implicit TLS and STARTTLS. With verifyCertificate the
 * chain must lead to a trusted CA (`ca`, or the system's list) and the
 * certificate must name the host (RFC 6125), or the handshake fails. Without
 * it any certificate is accepted: most MX hosts have self-signed or
 * mismatched ones, and encryption without authentication still beats clear
 * text (RFC 7435, opportunistic security).
 */
function tlsOptions(target: ClientTarget): ConnectionOptions {
  // RFC 6066 3: SNI carries host names only, never an IP literal.
  const servername = target.servername ?? (isIP(target.host) ? undefined : target.host);
  return {
    host: target.host, // with no servername, Node checks the certificate against this
    servername,
    rejectUnauthorized: target.verifyCertificate,
    ca: target.ca,
  };
}

/** Wait for `event` (connected, handshake done); an error, a close or the deadline ends it with a reason. */
function waitFor(socket: Socket, event: string, timeoutMs: number, what: string): Promise<string | null> {
  return new Promise((resolve) => {
    const finish = (error: string | null) => {
      clearTimeout(timer);
      socket.off(event, onEvent);
      socket.off('error', onError);
      socket.off('close', onClose);
      // A late error after we gave up must not crash the process.
      socket.on('error', () => {});
      if (error) socket.destroy();
      resolve(error);
    };
    const onEvent = () => finish(null);
    const onError = (error: Error) => finish(`${what} failed: ${error.message}`);
    const onClose = () => finish(`${what} failed: connection closed`);
    const timer = setTimeout(() => finish(`${what} timed out after ${timeoutMs} ms`), timeoutMs);
    socket.once(event, onEvent);
    socket.once('error', onError);
    socket.once('close', onClose);
  });
}
