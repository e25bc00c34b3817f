// The connection layer shared by every protocol: it cuts the bytes a client
// sends into lines (with a length limit), or hands them raw to a consumer
// (SMTP DATA, IMAP literals), and it sends replies back. It knows nothing
// about any protocol's verbs.
//
// It is pull-based so that a session reads like the protocol it speaks:
//
//     for (;;) { const line = await conn.readLine(); ...; conn.send(reply) }
//
// Invariants:
// - Memory is bounded both ways. Input: at most `maxBufferedBytes` wait
//   unread before the socket is paused, and an over-long line is discarded as
//   it arrives. Output: when more than `maxUnsentBytes` of replies are still
//   unsent (a client that sends commands but never reads the answers), no
//   further command is read until the client has taken them; a client that
//   stays blocked for `idleTimeoutMs` is cut off. Only then can a flood of
//   `NOOP` or `CAPA` not grow the server.
// - Deadlines, not idle timers: a command line must be complete within
//   `idleTimeoutMs` of the moment we started waiting for it, however the
//   bytes trickle in (Postfix's smtpd_per_record_deadline), and the whole
//   session ends after `sessionTimeoutMs`. A client dripping one byte every
//   few seconds cannot hold a connection for ever.
// - Bytes a client sent ahead (pipelining, RFC 2920) stay buffered in order
//   until the session asks for them; `startTls()` throws them away first
//   (CVE-2011-0411).
// - Replies are queued and written together when the session is about to
//   wait for the client: a pipelined group of commands gets its replies in
//   one write (RFC 2920 3.1 asks servers to do this).
//
// Three pieces live in files of their own: input-buffer.ts cuts the unread
// bytes into lines (and skips over-long ones); reply-queue.ts holds the
// replies until they are written together; tls-swap.ts wraps the socket in
// TLS for STARTTLS. This file joins them to the socket: waits, deadlines,
// back-pressure, and when the STARTTLS swap may happen.

import type { Socket } from 'node:net';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, SecureContext } from 'node:tls';
import { isLoopback, normaliseAddress } from './client-address.ts';
import { describeTls } from '../tls/describe.ts';
import { InputBuffer } from './input-buffer.ts';
import { ReplyQueue } from './reply-queue.ts';
import type { Wire } from './reply-queue.ts';
import { handshakeDone, swapToTls } from './tls-swap.ts';

export type LineResult =
  | { kind: 'line'; text: string }
  /** The line was longer than the limit; it has been skipped up to its end. */
  | { kind: 'too-long' }
  /** The client closed the connection (or it broke). */
  | { kind: 'closed' }
  /** The client did not finish a line in time, or the session's time is up. */
  | { kind: 'timeout' }
  /** The server is shutting down (see `interrupt`). */
  | { kind: 'interrupted' };

export type ReadBytesResult = 'done' | 'closed' | 'timeout';

/**
 * A consumer of raw bytes: given the next chunk, return how many bytes of it
 * it used when it has finished, or -1 when it used all of it and wants more.
 */
export type ByteConsumer = (chunk: Buffer) => number | Promise<number>;

export interface ConnectionLimits {
  /** Longest line accepted, counting the CRLF. */
  maxLineBytes: number;
  /** How long a command line may take to arrive, and a blocked client to read our output. */
  idleTimeoutMs: number;
  /** The whole session; 0 or absent: no limit. */
  sessionTimeoutMs?: number;
  /** Unread bytes held before the socket is paused. */
  maxBufferedBytes?: number;
  /** Unsent reply bytes above which no further command is read. */
  maxUnsentBytes?: number;
}

export class Connection {
  socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** What the client sent that the session has not read yet. */
  private readonly input = new InputBuffer();
  /** Replies queued but not yet handed to the socket. */
  private readonly output = new ReplyQueue();
  private closed = false;
  private timedOut = false;
  private interrupted = false;
  /** What the deadline timer is guarding right now. */
  private waiting: 'nothing' | 'input' | 'drain' = 'nothing';
  private wake: (() => void) | null = null;
  private readonly deadline: NodeJS.Timeout;
  private readonly sessionTimer: NodeJS.Timeout | null;
  private readonly limits: Required<ConnectionLimits>;

  constructor(socket: Socket, limits: ConnectionLimits) {
    this.socket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress ?? 'unknown');
    this.remotePort = socket.remotePort ?? 0;
    this.limits = { maxBufferedBytes: 256 * 1024, maxUnsentBytes: 64 * 1024, sessionTimeoutMs: 0, ...limits };
    // One timer for every wait, re-armed with refresh() (cheaper than a new
    // timer per command); it acts only if we are still waiting when it fires.
    this.deadline = setTimeout(() => this.onDeadline(), this.limits.idleTimeoutMs);
    this.sessionTimer = this.limits.sessionTimeoutMs > 0 ? setTimeout(() => this.onSessionOver(), this.limits.sessionTimeoutMs) : null;
    this.attach(socket);
  }

  /** Listen to a socket's events; also used for the TLS socket after STARTTLS. */
  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onClose());
    socket.on('close', () => this.onClose());
    socket.on('error', () => this.onClose());
    socket.on('drain', () => this.notify());
  }

  private onData(chunk: Buffer): void {
    this.input.add(chunk);
    if (this.input.size > this.limits.maxBufferedBytes) this.socket.pause();
    this.notify();
  }

  private onDeadline(): void {
    if (this.waiting === 'input') {
      this.timedOut = true;
      this.notify();
    } else if (this.waiting === 'drain') {
      // A client that does not read what we send cannot be told anything more.
      this.timedOut = true;
      this.socket.destroy();
    }
  }

  private onSessionOver(): void {
    this.timedOut = true;
    // Waiting for the client: wake up and say goodbye. Busy (delivering a
    // message, streaming a RETR): the session sees the flag at its next wait.
    if (this.waiting === 'drain') this.socket.destroy();
    this.notify();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.deadline);
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Call `then` at the next event (bytes, drain, close, deadline). */
  private onNextEvent(what: 'input' | 'drain', then: () => void): void {
    if (this.waiting !== what) {
      this.waiting = what;
      this.deadline.refresh(); // the deadline starts when the wait does, not at each byte
    }
    if (what === 'input' && this.socket.isPaused() && this.input.size <= this.limits.maxBufferedBytes) this.socket.resume();
    // The flush just before may already have brought input: writing to a
    // TLS socket can make it hand over, at once, records it had received.
    // Waiting now would wait for bytes that are already here.
    if (what === 'input' && this.input.hasNewChunks) then();
    else this.wake = then;
  }

  /** Wait for the next event (bytes, drain, close, deadline). */
  private waitFor(what: 'input' | 'drain'): Promise<void> {
    return new Promise((resolve) => this.onNextEvent(what, resolve));
  }

  /** Reply bytes not yet taken by the client: queued here, or handed to the socket. */
  private unsentBytes(): number {
    return this.output.bytes + this.socket.writableLength;
  }

  /**
   * Before reading the next command, if the client is not taking our
   * replies: send what is queued and wait until it has taken them
   * (back-pressure). Returns false if the connection ended meanwhile.
   */
  private async outputTaken(): Promise<boolean> {
    this.flush();
    if (this.socket.writableLength <= this.limits.maxUnsentBytes) return true;
    this.socket.pause(); // and read nothing more from it: its TCP window closes
    while (!this.closed && !this.timedOut && this.socket.writableLength > this.limits.maxUnsentBytes) await this.waitFor('drain');
    this.waiting = 'nothing';
    return !this.closed && !this.timedOut;
  }

  /**
   * The next line, without its line ending (CRLF, or a lone LF as Postfix
   * accepts for commands). Queued replies stay queued while the client has
   * more commands waiting (see the header): they are sent when we are about
   * to wait, or once FLUSH_BYTES of them have gathered.
   *
   * A line already here (pipelining) is returned as it is, without a
   * promise: every await is a pause of its own. Otherwise the promise
   * resolves once the line, or the end, has come.
   */
  readLine(): LineResult | Promise<LineResult> {
    if (this.unsentBytes() > this.limits.maxUnsentBytes) return this.outputTaken().then((taken) => (taken ? this.readLine() : { kind: this.endReason }));
    return this.lineNow() ?? new Promise((resolve) => this.awaitLine(resolve));
  }

  /** The next line, or why none will come, if known now; null if we have to wait. */
  private lineNow(): LineResult | null {
    const line = this.input.takeLine(this.limits.maxLineBytes);
    if (line !== null) {
      this.waiting = 'nothing';
      return line;
    }
    if (this.interrupted) return { kind: 'interrupted' };
    if (this.closed) return { kind: 'closed' };
    if (this.timedOut) return { kind: 'timeout' };
    return null;
  }

  /** Send what is queued, wait for the next event, look again (a line may come in several pieces). */
  private awaitLine(resolve: (line: LineResult) => void): void {
    this.flush();
    this.onNextEvent('input', () => {
      const line = this.lineNow();
      if (line) resolve(line);
      else this.awaitLine(resolve);
    });
  }

  /**
   * Feed raw bytes to `consume` until it reports that it has finished. The
   * client may take `idleTimeoutMs` between two chunks (a large message over
   * a slow line is fine); the session's own deadline bounds the whole.
   */
  async readBytes(consume: ByteConsumer): Promise<ReadBytesResult> {
    for (;;) {
      // Hand over chunks as they came, without joining them.
      const chunk = this.input.takeChunk();
      if (chunk !== null) {
        this.waiting = 'nothing';
        const used = await consume(chunk);
        if (used >= 0) {
          this.input.putBack(chunk.subarray(used)); // the rest is the next command (pipelining)
          return 'done';
        }
        continue;
      }
      if (this.closed) return 'closed';
      if (this.timedOut) return 'timeout';
      this.flush();
      this.waiting = 'nothing'; // re-arm the deadline at every chunk: a slow, steady sender is fine
      await this.waitFor('input');
    }
  }

  /** Exactly `length` raw bytes, handed to `sink` as they come (an IMAP literal). */
  async readExactly(length: number, sink: (chunk: Buffer) => void | Promise<void>): Promise<ReadBytesResult> {
    let left = length;
    if (left === 0) return 'done';
    return this.readBytes(async (chunk) => {
      const take = Math.min(left, chunk.length);
      await sink(chunk.subarray(0, take));
      left -= take;
      return left === 0 ? take : -1;
    });
  }

  /** True once the connection is encrypted (implicit TLS, or after STARTTLS). */
  get isSecure(): boolean {
    return this.socket instanceof TLSSocket && this.socket.encrypted === true;
  }

  /** `TLSv1.3 TLS_AES_256_GCM_SHA384`, for Received: fields and logs; '' in clear. */
  get tlsDescription(): string {
    return describeTls(this.socket);
  }

  /**
   * STARTTLS (RFC 3207 / RFC 2595 / RFC 3501 6.2.1): send what is queued (the
   * "go ahead" reply), start a TLS handshake on this connection and go on
   * reading from the encrypted stream. Resolves true once the handshake is
   * done, false if it failed (the connection is then closed).
   *
   * Any bytes the client sent in clear after the STARTTLS command are thrown
   * away first: a man in the middle could have put commands there that would
   * otherwise run as if they came over TLS (CVE-2011-0411, RFC 3207 4.2).
   */
  async startTls(secureContext: SecureContext): Promise<boolean> {
    const secure = this.swapForTls((plain) => new TLSSocket(plain, { isServer: true, secureContext }));
    return (await handshakeDone(secure, 'secure', this.limits.idleTimeoutMs)) === null;
  }

  /**
   * The client's side of STARTTLS (the webmail's IMAP client, RFC 3501
   * 6.2.1): after the server's OK, the same swap with us as the TLS client.
   * What the server sent in clear after its OK is thrown away, for the same
   * reason as above. `options` decide how the certificate is checked.
   * Resolves to null once encrypted, or to why not (a certificate that
   * fails verification, say).
   */
  startTlsAsClient(options: ConnectionOptions): Promise<string | null> {
    const secure = this.swapForTls((plain) => tlsConnect({ ...options, socket: plain }));
    return handshakeDone(secure, 'secureConnect', this.limits.idleTimeoutMs);
  }

  /** Send what is queued, forget what the client sent in clear, and read from the TLS socket from now on (tls-swap.ts). */
  private swapForTls(wrap: (plain: Socket) => TLSSocket): TLSSocket {
    this.flush();
    this.input.clear();
    return swapToTls(this.socket, wrap, (secure) => {
      this.socket = secure;
      this.attach(secure);
    });
  }

  /** True when the client has already sent bytes we have not read (pipelining). */
  hasBuffered(): boolean {
    return this.input.size > 0;
  }

  /** Wake a session waiting for a line: it gets 'interrupted' (server shutdown). */
  interrupt(): void {
    this.interrupted = true;
    this.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Why the connection is over: the client left, or it ran out of time (we cut it off). */
  get endReason(): 'closed' | 'timeout' {
    return this.timedOut ? 'timeout' : 'closed';
  }

  /** Queue a reply; it goes out with the next flush (see the header). */
  send(data: Wire): void {
    if (this.closed) return;
    if (this.output.add(data)) this.flush();
  }

  /** Hand every queued reply to the socket, in one write (reply-queue.ts). */
  flush(): void {
    this.output.writeTo(this.socket, this.closed);
  }

  /**
   * Send, and wait if the client has not taken what went before: for long
   * replies (a POP3 RETR of a large message, an IMAP FETCH of many) so memory
   * stays bounded. A client that stops reading is cut off after `idleTimeoutMs`.
   */
  async sendAndDrain(data: Wire): Promise<void> {
    this.send(data);
    while (!this.closed && this.socket.writableLength > this.limits.maxUnsentBytes) await this.waitFor('drain');
    this.waiting = 'nothing';
  }

  /** Send what is queued, then close. */
  end(): void {
    this.flush();
    clearTimeout(this.deadline);
    if (this.sessionTimer) clearTimeout(this.sessionTimer);
    this.socket.end();
    // A client that never reads must not keep the socket alive forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  destroy(): void {
    this.output.clear();
    this.socket.destroy();
    this.onClose();
  }
}

/**
 * Passwords travel only over TLS (RFC 3207/2595/4954: offer password logins
 * only where they are safe), or in clear from the machine itself when the
 * config allows it (local scripts, tests).
 */
export function canCarryPasswords(conn: Connection, allowPlaintextOnLoopback: boolean): boolean {
  return conn.isSecure || (allowPlaintextOnLoopback && isLoopback(conn.remoteAddress));
}

export { isLoopback, normaliseAddress } from './client-address.ts';
