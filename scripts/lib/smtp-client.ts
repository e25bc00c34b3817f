// A minimal SMTP client for the benchmark: connect, read replies, send
// commands and a message. It is deliberately self-contained (it imports
// nothing from src/) so the benchmark measures any SMTP server, and so a bug
// in the server's own wire code cannot hide itself by being on both ends.
//
// What it follows:
// - RFC 5321 4.2.1: a reply is one or more lines "CODE-text" ending with a
//   line "CODE text" (or just "CODE").
// - RFC 5321 4.5.2: a line of the message that starts with "." gets one more
//   "." (dot-stuffing); the message ends with CRLF "." CRLF.
// - RFC 5321 2.3.8: lines end in CRLF, never a bare LF.
//
// Every wait is bounded by a deadline, so a silent server fails the
// benchmark instead of hanging it (reply-queue.ts).

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { ReplyQueue } from './reply-queue.ts';

export interface SmtpReply {
  code: number;
  /** The text of each line, without the code and separator. */
  lines: string[];
}

export class SmtpError extends Error {}

/** Longest reply line we keep; longer ones mean the peer is not speaking SMTP. */
const MAX_REPLY_LINE = 4096;
/** Replies held without being read (a server that floods us is broken). */
const MAX_QUEUED_REPLIES = 1000;

export class SmtpClient {
  readonly #socket: Socket;
  #partial = ''; // bytes of the reply line being received (latin1)
  #lines: string[] = []; // lines of the multi-line reply being received
  readonly #replies = new ReplyQueue<SmtpReply>({
    limit: MAX_QUEUED_REPLIES,
    error: (message) => new SmtpError(message),
    noun: ['reply', 'replies'],
  });

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#replies.fail(new SmtpError(`connection error: ${err.message}`)));
    socket.on('close', () => this.#replies.fail(new SmtpError('connection closed by the server')));
  }

  /** Opens a TCP connection; rejects after `timeoutMs`. */
  static open(host: string, port: number, timeoutMs: number): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new SmtpError(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new SmtpClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpError(`connect to ${host}:${port}: ${err.message}`));
      });
    });
  }

  #onData(chunk: Buffer): void {
    let text = this.#partial + chunk.toString('latin1');
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n')) {
      const line = text.slice(0, nl).replace(/\r$/, '');
      text = text.slice(nl + 1);
      this.#onLine(line);
    }
    if (text.length > MAX_REPLY_LINE) return this.#replies.fail(new SmtpError('reply line too long'));
    this.#partial = text;
  }

  #onLine(line: string): void {
    const match = /^(\d{3})([ -]|$)(.*)$/.exec(line);
    if (!match) return this.#replies.fail(new SmtpError(`malformed reply line: ${JSON.stringify(line.slice(0, 80))}`));
    this.#lines.push(match[3]);
    if (match[2] === '-') return; // RFC 5321 4.2.1: more lines follow
    const lines = this.#lines;
    this.#lines = [];
    this.#replies.push({ code: Number(match[1]), lines });
  }

  /** The next reply; rejects if the connection fails or `deadline` (a Date.now() value) passes. */
  readReply(deadline: number): Promise<SmtpReply> {
    return this.#replies.next(deadline);
  }

  /** Sends one command line (CRLF added). */
  send(line: string): void {
    this.#socket.write(line + '\r\n', 'latin1');
  }

  /** Writes raw bytes, waiting for the socket to drain if its buffer is full. */
  async write(data: Buffer, deadline: number): Promise<void> {
    if (this.#replies.failure) throw this.#replies.failure;
    if (this.#socket.write(data)) return;
    let timedOut = false;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      const timer = setTimeout(() => {
        timedOut = true;
        done();
      }, Math.max(0, deadline - Date.now()));
      this.#socket.on('drain', done);
      this.#socket.on('close', done);
    });
    if (this.#replies.failure) throw this.#replies.failure;
    if (timedOut) throw new SmtpError('timed out sending data');
  }

  /** Sends a command and reads its reply. */
  async command(line: string, deadline: number): Promise<SmtpReply> {
    this.send(line);
    return this.readReply(deadline);
  }

  /** QUIT politely (bounded by `deadline`), then close. Never throws. */
  async quit(deadline: number): Promise<void> {
    try {
      if (!this.#replies.failure) await this.command('QUIT', Math.min(deadline, Date.now() + 2000));
    } catch {
      // Closing anyway.
    }
    this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/**
 * Dot-stuffs a block of complete CRLF lines (RFC 5321 4.5.2): a "." is
 * added before every line that starts with ".". The block must start at a
 * line start; the end-of-data line is NOT added (see END_OF_DATA).
 */
export function dotStuff(block: Buffer): Buffer {
  const starts: number[] = [];
  if (block[0] === 0x2e) starts.push(0);
  for (let at = block.indexOf('\n.'); at >= 0; at = block.indexOf('\n.', at + 1)) starts.push(at + 1);
  if (starts.length === 0) return block;
  const out = Buffer.allocUnsafe(block.length + starts.length);
  let from = 0;
  let to = 0;
  for (const start of starts) {
    to += block.copy(out, to, from, start);
    out[to++] = 0x2e;
    from = start;
  }
  block.copy(out, to, from);
  return out;
}

/** RFC 5321 4.1.1.4: after the last CRLF of the message, "." CRLF ends it. */
export const END_OF_DATA = Buffer.from('.\r\n');

/** One line of a reply for error messages: "550 5.1.1 User unknown". */
export function describeReply(reply: SmtpReply): string {
  return `${reply.code} ${reply.lines.join(' / ')}`.slice(0, 200);
}
