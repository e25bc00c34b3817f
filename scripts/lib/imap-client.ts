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
const STAR = 0x2a;
const PLUS = 0x2b;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** A response line longer than this (literals apart) means the peer does not speak IMAP. */
const MAX_LINE = 1024 * 1024;
const MAX_KEPT = 1_000_000;
const MAX_QUEUED = 1_000_000;

/** The command in progress: what its untagged responses add up to. */
interface Pending {
  tag: string;
  keep: boolean;
  keepLiteralBytes: number;
  untagged: ImapResponse[];
  untaggedCount: number;
  literalBytes: number;
}

export class ImapClient {
  readonly #socket: Socket;
  /** Tagged responses, continuation requests, and untagged ones while no command runs (the greeting). */
  readonly #responses = new ReplyQueue<ImapResponse>({
    limit: MAX_QUEUED,
    error: (message) => new ImapError(message),
    noun: ['response', 'responses'],
  });
  #nextTag = 1;
  #pending: Pending | null = null;
  #carry: Buffer | null = null;
  /**
   * The response being received, between its literals: `inResponse` says
   * one has begun; `current` holds it as an object only where someone will
   * read it (tagged, continuation, kept or unsolicited untagged): the
   * 50,000 untagged lines of a FETCH 1:* that nobody keeps cost a count.
   */
  #inResponse = false;
  #untagged = false;
  #current: ImapResponse | null = null;
  #literalLeft = 0;
  /** Called for every untagged response as it completes (IDLE's updates). */
  onUntagged: (() => void) | null = null;
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
  // Receiving: lines, and literals inside them (RFC 3501 4.3). The parser
  // looks at bytes; it makes a string of a line only for a response
  // somebody reads, so its own cost stays far below the server's.

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
        this.#keepLiteral(chunk, p, take);
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
      this.#onLine(chunk, p, nl > p && chunk[nl - 1] === CR ? nl - 1 : nl);
      p = nl + 1;
    }
  }

  // The line chunk[start, end), or the part of a response after a literal.
  #onLine(chunk: Buffer, start: number, end: number): void {
    if (!this.#inResponse) {
      this.#inResponse = true;
      this.#untagged = chunk[start] === STAR;
      this.#current = this.#begin(chunk, start, end);
      if (this.#responses.failure) return;
    } else if (this.#current) {
      this.#current.text += chunk.toString('latin1', start, end);
    }
    const literal = literalAtEnd(chunk, start, end);
    if (literal >= 0) {
      if (this.#current) {
        this.#current.literalBytes += literal;
        this.#current.literals.push(Buffer.alloc(0));
      }
      if (this.#pending) this.#pending.literalBytes += literal;
      this.#literalLeft = literal; // the response goes on after the literal's octets
      return;
    }
    const response = this.#current;
    this.#inResponse = false;
    this.#current = null;
    if (this.#untagged && this.#pending) {
      this.#pending.untaggedCount++;
      if (response && this.#pending.untagged.length < MAX_KEPT) this.#pending.untagged.push(response);
      this.onUntagged?.();
      return;
    }
    // Tagged, continuation, or untagged with no command running (the greeting): for read().
    if (response) {
      response.at = performance.now();
      this.#responses.push(response);
    }
  }

  /** The response that begins with this line, as an object if anyone will read it; null otherwise. */
  #begin(chunk: Buffer, start: number, end: number): ImapResponse | null {
    const first = chunk[start];
    const untagged = first === STAR;
    if (untagged && this.#pending && !this.#pending.keep) return null; // only counted
    const line = chunk.toString('latin1', start, end);
    const response: ImapResponse = { kind: 'untagged', tag: '', status: '', text: line, literalBytes: 0, literals: [], at: 0 };
    if (untagged) {
      response.status = /^\* (\S+)/.exec(line)?.[1]?.toUpperCase() ?? '';
    } else if (first === PLUS) {
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

  // Keeps the first bytes of the literal in progress, for a response someone reads.
  #keepLiteral(chunk: Buffer, p: number, take: number): void {
    const response = this.#current;
    const limit = this.#pending?.keepLiteralBytes ?? 0;
    if (!response || limit === 0) return;
    const last = response.literals.length - 1;
    const room = limit - response.literals[last].length;
    if (room > 0) response.literals[last] = Buffer.concat([response.literals[last], chunk.subarray(p, p + Math.min(room, take))]);
  }

  // -------------------------------------------------------------------------
  // The caller's side

  /** The next response (the greeting first); rejects at `deadline` (a Date.now() value). */
  read(deadline: number): Promise<ImapResponse> {
    return this.#responses.next(deadline);
  }

  /**
   * Sends `A<n> text` and returns the tag. Its untagged responses are
   * counted (and kept, if asked) until finish() reads its tagged one.
   */
  send(text: string, opts: CommandOptions = {}): string {
    if (this.#responses.failure) throw this.#responses.failure;
    const tag = `A${this.#nextTag++}`;
    this.#pending = { tag, keep: opts.keepUntagged ?? false, keepLiteralBytes: opts.keepLiteralBytes ?? 0, untagged: [], untaggedCount: 0, literalBytes: 0 };
    this.#socket.write(`${tag} ${text}\r\n`, 'latin1');
    return tag;
  }

  /** A line that is not a command (IDLE's DONE). */
  sendLine(text: string): void {
    this.#socket.write(`${text}\r\n`, 'latin1');
  }

  /** Sends a command and reads up to its tagged response. */
  async command(text: string, deadline: number, opts: CommandOptions = {}): Promise<CommandResult> {
    const started = performance.now();
    const tag = this.send(text, opts);
    return this.finish(tag, started, deadline);
  }

  /** Reads up to the tagged response of the command sent as `tag`. */
  async finish(tag: string, started: number, deadline: number): Promise<CommandResult> {
    for (;;) {
      const response = await this.read(deadline);
      if (response.kind === 'continuation') throw new ImapError(`unexpected continuation request: ${response.text.slice(0, 80)}`);
      if (response.kind === 'untagged') continue; // from before the command (a late greeting line)
      if (response.tag !== tag) throw new ImapError(`tagged response for ${response.tag}, expected ${tag}`);
      const pending = this.#pending!;
      this.#pending = null;
      return {
        status: response.status as CommandResult['status'],
        text: response.text.slice(tag.length + 1 + response.status.length).trim(),
        untagged: pending.untagged,
        untaggedCount: pending.untaggedCount,
        literalBytes: pending.literalBytes + response.literalBytes,
        ms: response.at - started,
      };
    }
  }

  /** Like command(), but a NO or BAD throws, with the command in the message. */
  async ok(text: string, deadline: number, opts: CommandOptions = {}): Promise<CommandResult> {
    const result = await this.command(text, deadline, opts);
    if (result.status !== 'OK') throw new ImapError(`${text.split(' ')[0]} failed: ${result.status} ${result.text}`);
    return result;
  }

  /** Sends IDLE and waits for its "+" (RFC 2177); returns the tag for DONE and finish(). */
  async idle(deadline: number): Promise<string> {
    const tag = this.send('IDLE');
    const response = await this.read(deadline);
    if (response.kind !== 'continuation') throw new ImapError(`IDLE refused: ${response.text}`);
    return tag;
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

/** n if chunk[start, end) ends in a literal's "{n}", else -1. */
function literalAtEnd(chunk: Buffer, start: number, end: number): number {
  if (end - start < 3 || chunk[end - 1] !== CLOSE_BRACE) return -1;
  let n = 0;
  let scale = 1;
  let i = end - 2;
  for (; i > start && chunk[i] >= DIGIT_0 && chunk[i] <= DIGIT_9; i--) {
    n += (chunk[i] - DIGIT_0) * scale;
    scale *= 10;
  }
  return chunk[i] === OPEN_BRACE && i < end - 2 ? n : -1;
}

/** An IMAP quoted string (RFC 3501 9 "quoted"): for user names and passwords. */
export function quoted(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
