// A small IMAP client for bench-imap.ts: one socket, tagged commands sent one
// at a time, responses read with their literals, and the wall time from the
// command's last byte written to its tagged status line. Like pop3-client.ts
// it imports nothing from src/, so it measures any IMAP server (Dovecot too),
// and a bug in the server's own wire code cannot hide by being on both ends.
//
// What it follows (RFC 3501):
// - 2.2.2 / 7: a response is untagged ("* ..."), a continuation request
//   ("+ ...") or tagged ("A1 OK ..."); the tagged one ends the command.
// - 4.3: a line may end in a literal "{n}" CRLF; then n octets follow, and
//   the same response goes on after them (a FETCH of BODY[] is one response
//   line, a literal of the whole message, and ")" CRLF).
// - 7.5: "+ " asks for more from the client (IDLE's "+ idling", RFC 2177).
//
// Literals are not kept whole: each is counted, and its first bytes kept
// (`keepLiteralBytes`), so a 25 MiB BODY[] costs this process no memory and
// the figure measured is the server's. Untagged responses are kept as text
// (a literal appears as "{n}" in it) only if the command asks for them, and
// at most MAX_KEPT of them.
//
// Every wait is bounded by a deadline (reply-queue.ts): a silent server
// fails the benchmark instead of hanging it.

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ReplyQueue } from './reply-queue.ts';

export class ImapError extends Error {}

/** One response: its text with each literal shown as "{n}", and the literals' heads. */
export interface ImapResponse {
  kind: 'untagged' | 'continuation' | 'tagged';
  /** For tagged responses. */
  tag: string;
  /** OK, NO, BAD (tagged); for untagged responses the first word after "*" (OK, BYE, FETCH's "5"...). */
  status: string;
  text: string;
  /** Octets of every literal in the response. */
  literalBytes: number;
  /** The first bytes of each literal (up to the command's keepLiteralBytes). */
  literals: Buffer[];
  /** performance.now() when the response was complete. */
  at: number;
}

export interface CommandResult {
  status: 'OK' | 'NO' | 'BAD';
  /** The tagged line after the status. */
  text: string;
  /** Untagged responses, when asked for (keepUntagged). */
  untagged: ImapResponse[];
  /** Untagged responses received, kept or not. */
  untaggedCount: number;
  /** Octets of all literals in all responses to this command. */
  literalBytes: number;
  /** Milliseconds from sending the command to its tagged response. */
  ms: number;
}

export interface CommandOptions {
  keepUntagged?: boolean;
  /** Bytes kept from the start of each literal (default 0). */
  keepLiteralBytes?: number;
}

const LF = 0x0a;
const CR = 0x0d;
/** A response line longer than this (literals apart) means the peer does not speak IMAP. */
const MAX_LINE = 1024 * 1024;
const MAX_KEPT = 1_000_000;
const MAX_QUEUED = 1_000_000;

export class ImapClient {
  readonly #socket: Socket;
  readonly #responses = new ReplyQueue<ImapResponse>({
    limit: MAX_QUEUED,
    error: (message) => new ImapError(message),
    noun: ['response', 'responses'],
  });
  #nextTag = 1;
  #carry: Buffer | null = null;
  /** The response being received: its text so far, and the literal in progress. */
  #current: ImapResponse | null = null;
  #literalLeft = 0;
  #keepLiteralBytes = 0;
  /** Called for every untagged response as it arrives (IDLE's updates). */
  onUntagged: ((response: ImapResponse) => void) | null = null;
  bytesReceived = 0;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#responses.fail(new ImapError(`connection error: ${err.message}`)));
    this.closed = new Promise((done) =>
      socket.once('close', () => {
        this.#responses.fail(new ImapError('connection closed by the server'));
        done();
      }),
    );
  }

  /** Connects; the greeting is the first response read(). */
  static open(host: string, port: number, timeoutMs: number): Promise<ImapClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ImapError(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      const client = new ImapClient(socket); // at once, so no byte of the greeting is missed
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(client);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new ImapError(`connect to ${host}:${port}: ${err.message}`));
      });
    });
  }

  /** The socket, for pausing reads (the slow-reader measurement). */
  get socket(): Socket {
    return this.#socket;
  }

  // -------------------------------------------------------------------------
  // Receiving: lines, and literals inside them (RFC 3501 4.3)

  #onData(data: Buffer): void {
    this.bytesReceived += data.length;
    let chunk = data;
    if (this.#carry) {
      chunk = Buffer.concat([this.#carry, data]);
      this.#carry = null;
    }
    let p = 0;
    while (p < chunk.length && !this.#responses.failure) {
      if (this.#literalLeft > 0) {
        const take = Math.min(this.#literalLeft, chunk.length - p);
        const response = this.#current!;
        const head = response.literals[response.literals.length - 1];
        const room = this.#keepLiteralBytes - head.length;
        if (room > 0) response.literals[response.literals.length - 1] = Buffer.concat([head, chunk.subarray(p, p + Math.min(room, take))]);
        this.#literalLeft -= take;
        p += take;
        continue;
      }
      const nl = chunk.indexOf(LF, p);
      if (nl < 0) {
        if (chunk.length - p > MAX_LINE) return this.#responses.fail(new ImapError('response line too long'));
        this.#carry = chunk.subarray(p);
        return;
      }
      const end = nl > p && chunk[nl - 1] === CR ? nl - 1 : nl;
      this.#onLine(chunk.toString('latin1', p, end));
      p = nl + 1;
    }
  }

  // A line, or the part of a response between two literals.
  #onLine(line: string): void {
    const response = this.#current ?? this.#begin(line);
    if (response === null) return;
    if (this.#current) response.text += line;
    const literal = /\{(\d+)\}$/.exec(line);
    if (literal) {
      const size = Number(literal[1]);
      response.literalBytes += size;
      response.literals.push(Buffer.alloc(0));
      this.#current = response; // the response goes on after the literal's octets
      this.#literalLeft = size;
      return;
    }
    this.#current = null;
    response.at = performance.now();
    if (response.kind === 'untagged' && this.onUntagged) this.onUntagged(response);
    this.#responses.push(response);
  }

  #begin(line: string): ImapResponse | null {
    const response: ImapResponse = { kind: 'untagged', tag: '', status: '', text: line, literalBytes: 0, literals: [], at: 0 };
    if (line.startsWith('* ')) {
      response.status = /^\* (\S+)/.exec(line)?.[1]?.toUpperCase() ?? '';
    } else if (line === '+' || line.startsWith('+ ')) {
      response.kind = 'continuation';
    } else {
      const match = /^(\S+) (OK|NO|BAD)\b/i.exec(line);
      if (!match) {
        this.#responses.fail(new ImapError(`malformed response: ${JSON.stringify(line.slice(0, 80))}`));
        return null;
      }
      response.kind = 'tagged';
      response.tag = match[1];
      response.status = match[2].toUpperCase();
    }
    return response;
  }

  // -------------------------------------------------------------------------
  // The caller's side

  /** The next response (the greeting first); rejects at `deadline` (a Date.now() value). */
  read(deadline: number): Promise<ImapResponse> {
    return this.#responses.next(deadline);
  }

  /** Sends `A<n> text` and returns the tag. */
  send(text: string): string {
    if (this.#responses.failure) throw this.#responses.failure;
    const tag = `A${this.#nextTag++}`;
    this.#socket.write(`${tag} ${text}\r\n`, 'latin1');
    return tag;
  }

  /** A line that is not a command (IDLE's DONE). */
  sendLine(text: string): void {
    this.#socket.write(`${text}\r\n`, 'latin1');
  }

  /** Sends a command and reads up to its tagged response. */
  async command(text: string, deadline: number, opts: CommandOptions = {}): Promise<CommandResult> {
    this.#keepLiteralBytes = opts.keepLiteralBytes ?? 0;
    const started = performance.now();
    const tag = this.send(text);
    return this.finish(tag, started, deadline, opts);
  }

  /** Reads the responses of the command sent as `tag` up to its tagged status. */
  async finish(tag: string, started: number, deadline: number, opts: CommandOptions = {}): Promise<CommandResult> {
    const result: CommandResult = { status: 'BAD', text: '', untagged: [], untaggedCount: 0, literalBytes: 0, ms: 0 };
    for (;;) {
      const response = await this.read(deadline);
      result.literalBytes += response.literalBytes;
      if (response.kind === 'untagged') {
        result.untaggedCount++;
        if (opts.keepUntagged && result.untagged.length < MAX_KEPT) result.untagged.push(response);
        continue;
      }
      if (response.kind === 'continuation') throw new ImapError(`unexpected continuation request: ${response.text.slice(0, 80)}`);
      if (response.tag !== tag) throw new ImapError(`tagged response for ${response.tag}, expected ${tag}`);
      result.status = response.status as CommandResult['status'];
      result.text = response.text.slice(tag.length + 1 + response.status.length).trim();
      result.ms = response.at - started;
      return result;
    }
  }

  /** Like command(), but a NO or BAD throws, with the command in the message. */
  async ok(text: string, deadline: number, opts: CommandOptions = {}): Promise<CommandResult> {
    const result = await this.command(text, deadline, opts);
    if (result.status !== 'OK') throw new ImapError(`${text.split(' ')[0]} failed: ${result.status} ${result.text}`);
    return result;
  }

  /** Sends IDLE and waits for its "+" (RFC 2177); returns the tag for done(). */
  async idle(deadline: number): Promise<string> {
    const tag = this.send('IDLE');
    for (;;) {
      const response = await this.read(deadline);
      if (response.kind === 'continuation') return tag;
      if (response.kind === 'tagged') throw new ImapError(`IDLE refused: ${response.text}`);
    }
  }

  /** LOGOUT, then wait (bounded) for the server to close; never throws. */
  async logout(deadline: number): Promise<void> {
    try {
      if (!this.#responses.failure) await this.command('LOGOUT', deadline);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.closed, new Promise((done) => (timer = setTimeout(done, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    } catch {
      // Closing anyway.
    }
    this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/** An IMAP quoted string (RFC 3501 9 "quoted"): for user names and passwords. */
export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
