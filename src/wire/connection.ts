// The connection layer shared by every protocol: it cuts the bytes a client
// sends into lines (with a length limit), or hands them raw to a consumer (SMTP
// DATA, IMAP literals), and it knows nothing about any protocol's verbs.
//
// It is pull-based so that a session reads like the protocol it speaks:
//
//     for (;;) { const line = await conn.readLine(); ...; conn.write(reply) }
//
// Invariants:
// - Memory is bounded: at most `maxBufferedBytes` wait unread before the socket
//   is paused (back-pressure), and an over-long line is discarded as it
//   arrives, never accumulated.
// - Bytes a client sent ahead (pipelining, RFC 2920) stay buffered in order
//   until the session asks for them; `discardBuffered()` throws them away
//   (needed after STARTTLS: CVE-2011-0411).
// - Idle timeouts only count while the session is waiting for the client, so
//   a slow disk never times a client out.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { isLoopback, normaliseAddress } from './client-address.ts';

export type LineResult =
  | { kind: 'line'; text: string }
  /** The line was longer than the limit; it has been skipped up to its end. */
  | { kind: 'too-long' }
  /** The client closed the connection (or it broke). */
  | { kind: 'closed' }
  /** The client said nothing for `idleTimeoutMs`. */
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
  /** Time the client may stay silent while we wait for it. */
  idleTimeoutMs: number;
  /** Unread bytes held before the socket is paused. */
  maxBufferedBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;

export class Connection {
  socket: Socket;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * Unread bytes: `pending`, then `arrived` (chunks not yet joined to it).
   * Joining every arrival at once would copy the unread bytes again each time.
   */
  private pending: Buffer = Buffer.alloc(0);
  private arrived: Buffer[] = [];
  private arrivedBytes = 0;
  private closed = false;
  private timedOut = false;
  private interrupted = false;
  /** True while we are inside an over-long line, dropping its bytes. */
  private discarding = false;
  /** Set when an over-long line was dropped; the LF that ends it yields 'too-long'. */
  private longLineEnded = false;
  /** True while writeAndDrain waits for the client to read. */
  private waitingForDrain = false;
  private wake: (() => void) | null = null;
  private readonly limits: Required<ConnectionLimits>;

  constructor(socket: Socket, limits: ConnectionLimits) {
    this.socket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress ?? 'unknown');
    this.remotePort = socket.remotePort ?? 0;
    this.limits = { maxBufferedBytes: 256 * 1024, ...limits };
    this.attach(socket);
  }

  /** Listen to a socket's events; also used for the TLS socket after STARTTLS. */
  protected attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onClose());
    socket.on('close', () => this.onClose());
    socket.on('error', () => this.onClose());
    // Not setTimeout(ms, callback): that registers the callback with once(),
    // so a timeout ignored while we were busy (a slow mailbox lock) would
    // leave a silent client connected forever.
    socket.setTimeout(this.limits.idleTimeoutMs);
    socket.on('timeout', () => {
      // Only a client we are waiting for can be idle: one we wait to send a
      // command, or one that stopped reading a long reply (a RETR it never
      // takes would otherwise hold its connection, and its maildrop, forever).
      if (this.wake) {
        this.timedOut = true;
        this.notify();
      } else if (this.waitingForDrain) {
        this.socket.destroy();
      }
    });
  }

  private onData(chunk: Buffer): void {
    if (this.discarding) {
      const end = chunk.indexOf(LF);
      if (end < 0) return; // still inside the over-long line: drop it
      this.discarding = false;
      // Keep the LF that ends the long line: readLine turns it into 'too-long'.
      chunk = chunk.subarray(end);
    }
    this.arrived.push(chunk);
    this.arrivedBytes += chunk.length;
    if (this.bufferedBytes() > this.limits.maxBufferedBytes) this.socket.pause();
    this.notify();
  }

  private bufferedBytes(): number {
    return this.pending.length + this.arrivedBytes;
  }

  /** Join what has arrived onto `pending` (needed to look for a line end across chunks). */
  private joinArrived(): void {
    if (this.arrived.length === 0) return;
    this.pending = this.pending.length === 0 && this.arrived.length === 1 ? this.arrived[0] : Buffer.concat([this.pending, ...this.arrived]);
    this.arrived = [];
    this.arrivedBytes = 0;
  }

  private onClose(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private waitForData(): Promise<void> {
    if (this.socket.isPaused() && this.bufferedBytes() <= this.limits.maxBufferedBytes) this.socket.resume();
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** The next line, without its line ending (CRLF, or a lone LF as Postfix accepts for commands). */
  async readLine(): Promise<LineResult> {
    for (;;) {
      this.joinArrived();
      const end = this.pending.indexOf(LF);
      if (end >= 0) {
        const lineBytes = end + 1;
        const raw = this.pending.subarray(0, end);
        this.pending = this.pending.subarray(lineBytes);
        if (this.longLineEnded) {
          this.longLineEnded = false;
          return { kind: 'too-long' };
        }
        if (lineBytes > this.limits.maxLineBytes) return { kind: 'too-long' };
        const text = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, -1) : raw;
        return { kind: 'line', text: text.toString('utf8') };
      }
      if (this.pending.length >= this.limits.maxLineBytes) {
        // No line end within the limit: drop what we have and skip to the next LF.
        this.pending = Buffer.alloc(0);
        this.discarding = true;
        this.longLineEnded = true;
      }
      if (this.interrupted) return { kind: 'interrupted' };
      if (this.closed) return { kind: 'closed' };
      if (this.timedOut) return { kind: 'timeout' };
      await this.waitForData();
    }
  }
  /** Feed raw bytes to `consume` until it reports that it has finished. */
  async readBytes(consume: ByteConsumer): Promise<ReadBytesResult> {
    for (;;) {
      // Hand over chunks as they came, without joining them.
      if (this.pending.length === 0 && this.arrived.length > 0) {
        this.pending = this.arrived.shift()!;
        this.arrivedBytes -= this.pending.length;
      }
      if (this.pending.length > 0) {
        const chunk = this.pending;
        this.pending = Buffer.alloc(0);
        const used = await consume(chunk);
        if (used >= 0) {
          this.pending = chunk.subarray(used); // the rest is the next command (pipelining)
          return 'done';
        }
        continue;
      }
      if (this.closed) return 'closed';
      if (this.timedOut) return 'timeout';
      await this.waitForData();
    }
  }

  /** True once the connection is encrypted (implicit TLS, or after STARTTLS). */
  get isSecure(): boolean {
    return this.socket instanceof TLSSocket && this.socket.encrypted === true;
  }

  /** `TLSv1.3 TLS_AES_256_GCM_SHA384`, for Received: fields and logs; '' in clear. */
  get tlsDescription(): string {
    if (!(this.socket instanceof TLSSocket)) return '';
    return `${this.socket.getProtocol() ?? ''} ${this.socket.getCipher()?.name ?? ''}`.trim();
  }

  /**
   * STARTTLS (RFC 3207 / RFC 2595): start a TLS handshake on this connection
   * and go on reading from the encrypted stream. Resolves true once the
   * handshake is done, false if it failed (the connection is then closed).
   *
   * Any bytes the client sent in clear after the STARTTLS command are thrown
   * away first: a man in the middle could have put commands there that would
   * otherwise run as if they came over TLS (CVE-2011-0411, RFC 3207 4.2).
   */
  async startTls(secureContext: SecureContext): Promise<boolean> {
    this.discardBuffered();
    const plain = this.socket;
    for (const event of ['data', 'end', 'close', 'error', 'timeout']) plain.removeAllListeners(event);
    plain.setTimeout(0);
    const secure = new TLSSocket(plain, { isServer: true, secureContext });
    this.socket = secure;
    this.attach(secure);
    if (plain.isPaused()) plain.resume();
    return new Promise((resolve) => {
      // A client that starts the handshake and stalls must not hold the slot forever.
      const stalled = setTimeout(() => secure.destroy(), this.limits.idleTimeoutMs);
      const finish = (ok: boolean) => {
        clearTimeout(stalled);
        if (!ok) secure.destroy();
        resolve(ok);
      };
      secure.once('secure', () => finish(true));
      secure.once('close', () => finish(false));
      secure.once('error', () => finish(false));
    });
  }

  /** Throw away everything the client sent that has not been read yet. */
  discardBuffered(): void {
    this.pending = Buffer.alloc(0);
    this.arrived = [];
    this.arrivedBytes = 0;
    this.discarding = false;
    this.longLineEnded = false;
  }

  /** True when the client has already sent bytes we have not read (pipelining). */
  hasBuffered(): boolean {
    return this.bufferedBytes() > 0;
  }

  /** Wake a session waiting for a line: it gets 'interrupted' (server shutdown). */
  interrupt(): void {
    this.interrupted = true;
    this.notify();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  write(data: string | Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  /**
   * Write, then wait until the socket has room again: for long replies
   * (POP3 RETR of a large message) so memory stays bounded.
   */
  async writeAndDrain(data: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return;
    if (this.socket.write(data)) return;
    this.waitingForDrain = true;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.waitingForDrain = false;
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.once('drain', done);
      this.socket.once('close', done);
    });
  }

  /** Send what is queued, then close. */
  end(): void {
    this.socket.end();
    // A client that never reads must not keep the socket alive forever.
    setTimeout(() => this.socket.destroy(), 5000).unref();
  }

  destroy(): void {
    this.socket.destroy();
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
