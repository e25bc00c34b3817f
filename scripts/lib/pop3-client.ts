// A minimal POP3 client for the benchmark: connect (plain or implicit TLS),
// send commands, read responses, one at a time or pipelined. Like
// smtp-client.ts it imports nothing from src/, so it measures any POP3
// server, and a bug in the server's own wire code cannot hide itself by
// being on both ends.
//
// What it follows:
// - RFC 1939 3: a response is a status line "+OK ..." or "-ERR ..."; a
//   multi-line response continues with lines ending in CRLF, a line that
//   starts with "." has one more "." in front (byte-stuffing), and the
//   response ends with a line holding a single ".".
// - RFC 2449 6.6: with PIPELINING the client may send commands without
//   waiting; responses come back in order. The client therefore keeps a
//   queue of what each command it sent expects back.
// - RFC 5034 4: an AUTH exchange answers "+ challenge" lines.
//
// Message bodies (RETR) are not kept: the parser counts their octets as the
// server declares them in LIST (CRLF line endings, byte-stuffing undone, the
// final "." line excluded) and keeps the first few hundred bytes, so 50,000
// messages cost no memory and little CPU. Whole lines are kept for the
// other multi-line responses (CAPA, LIST, UIDL).
//
// Every wait is bounded by a deadline, so a silent server fails the
// benchmark instead of hanging it (reply-queue.ts).

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { ReplyQueue } from './reply-queue.ts';

/** What a command's response looks like when it is +OK. */
export type Expect =
  /** A status line only (USER, PASS, STAT, QUIT, LIST n...). */
  | 'single'
  /** Status line, then lines kept as strings (CAPA, LIST, UIDL). */
  | 'lines'
  /** Status line, then a message whose octets are counted (RETR, TOP). */
  | 'count';

export interface Pop3Response {
  ok: boolean;
  /** A "+ challenge" line of an AUTH exchange (RFC 5034 4). */
  continuation: boolean;
  /** The status line after "+OK " / "-ERR " / "+ ". */
  text: string;
  /** 'lines' responses: the lines, byte-stuffing undone. */
  lines?: string[];
  /** 'count' responses: the message's octets, as LIST counts them. */
  octets?: number;
  /** 'count' responses: lines that ended in a bare LF (should be 0). */
  bareLf?: number;
  /** 'count' responses: the first HEAD_BYTES of the message as received. */
  head?: Buffer;
  /** performance.now() when the response was complete. */
  at: number;
}

export class Pop3Error extends Error {}

export interface OpenOptions {
  host: string;
  port: number;
  /** Implicit TLS (RFC 8314), without certificate verification. */
  tls: boolean;
  timeoutMs: number;
}

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;
const LF_DOT = Buffer.from('\n.');
/** Longest status or list line we accept; longer means the peer is not speaking POP3. */
const MAX_LINE = 64 * 1024;
/** Bytes of each message kept for checks (its header). */
export const HEAD_BYTES = 512;
/** Responses held without being read (a server that floods us is broken). */
const MAX_QUEUED = 100_000;

type Mode = 'status' | 'lines' | 'count';

export class Pop3Client {
  readonly #socket: Socket;
  /** Bytes received on this connection so far (after TLS), all included. */
  bytesReceived = 0;
  readonly #expected: Expect[] = ['single']; // the greeting comes first
  readonly #responses = new ReplyQueue<Pop3Response>({
    limit: MAX_QUEUED,
    error: (message) => new Pop3Error(message),
    noun: ['response', 'responses'],
  });
  #mode: Mode = 'status';
  #carry: Buffer | null = null; // an unfinished line, or a "." whose meaning is not known yet
  #current: Pop3Response | null = null; // the multi-line response being received
  #atLineStart = true;
  #lastWasCr = false;
  #headUsed = 0;
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#responses.fail(new Pop3Error(`connection error: ${err.message}`)));
    this.closed = new Promise((done) =>
      socket.once('close', () => {
        this.#responses.fail(new Pop3Error('connection closed by the server'));
        done();
      }),
    );
  }

  /** Opens a connection (TCP, or TLS without verification); rejects after `timeoutMs`. */
  static open(opts: OpenOptions): Promise<Pop3Client> {
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tlsConnect({ host: opts.host, port: opts.port, rejectUnauthorized: false })
        : connect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Pop3Error(`connect to ${opts.host}:${opts.port} timed out`));
      }, opts.timeoutMs);
      // The client is built at once so no byte of the greeting is missed.
      const client = new Pop3Client(socket);
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve(client);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new Pop3Error(`connect to ${opts.host}:${opts.port}: ${err.message}`));
      });
    });
  }

  // -------------------------------------------------------------------------
  // Receiving

  #onData(data: Buffer): void {
    this.bytesReceived += data.length;
    let chunk = data;
    if (this.#carry) {
      chunk = Buffer.concat([this.#carry, data]);
      this.#carry = null;
    }
    let p = 0;
    while (p < chunk.length && !this.#responses.failure) {
      if (this.#mode === 'count') {
        p = this.#countBody(chunk, p);
        continue;
      }
      const nl = chunk.indexOf(LF, p);
      if (nl < 0) {
        if (chunk.length - p > MAX_LINE) return this.#responses.fail(new Pop3Error('response line too long'));
        this.#carry = chunk.subarray(p);
        return;
      }
      const end = nl > p && chunk[nl - 1] === CR ? nl - 1 : nl;
      const line = chunk.toString('latin1', p, end);
      p = nl + 1;
      if (this.#mode === 'status') this.#onStatus(line);
      else this.#onListLine(line);
    }
  }

  #onStatus(line: string): void {
    const expect = this.#expected.shift();
    if (expect === undefined) return this.#responses.fail(new Pop3Error(`unexpected line from the server: ${JSON.stringify(line.slice(0, 80))}`));
    const match = /^(\+OK|-ERR|\+)(?: (.*))?$/.exec(line);
    if (!match) return this.#responses.fail(new Pop3Error(`malformed status line: ${JSON.stringify(line.slice(0, 80))}`));
    const response: Pop3Response = { ok: match[1] !== '-ERR', continuation: match[1] === '+', text: match[2] ?? '', at: 0 };
    if (response.continuation) {
      this.#expected.unshift(expect); // the command's own answer is still to come
    } else if (response.ok && expect === 'lines') {
      response.lines = [];
      this.#current = response;
      this.#mode = 'lines';
      return;
    } else if (response.ok && expect === 'count') {
      response.octets = 0;
      response.bareLf = 0;
      response.head = Buffer.allocUnsafe(HEAD_BYTES);
      this.#headUsed = 0;
      this.#current = response;
      this.#atLineStart = true;
      this.#lastWasCr = false;
      this.#mode = 'count';
      return;
    }
    this.#deliver(response);
  }

  #onListLine(line: string): void {
    const response = this.#current!;
    if (line === '.') {
      this.#mode = 'status';
      this.#current = null;
      return this.#deliver(response);
    }
    response.lines!.push(line.startsWith('.') ? line.slice(1) : line); // RFC 1939 3: byte-stuffing
  }

  /**
   * Counts the octets of a message body from chunk[p], in big steps: only
   * lines that start with "." need a look (the end, or a stuffed dot), so
   * the search jumps from one "\n." to the next. Returns where to go on in
   * `chunk` (chunk.length when all of it belongs to the body).
   */
  #countBody(chunk: Buffer, p: number): number {
    const response = this.#current!;
    let i = p;
    for (;;) {
      if (this.#atLineStart) {
        if (i >= chunk.length) return i;
        if (chunk[i] === DOT) {
          if (chunk.length - i < 3) {
            this.#carry = chunk.subarray(i); // "." or ".\r": decided by the next bytes
            return chunk.length;
          }
          if (chunk[i + 1] === CR && chunk[i + 2] === LF) {
            // RFC 1939 3: CRLF "." CRLF ends the response.
            response.head = response.head!.subarray(0, this.#headUsed);
            this.#mode = 'status';
            this.#current = null;
            this.#deliver(response);
            return i + 3;
          }
          i++; // a stuffed dot: not part of the message
        }
        this.#atLineStart = false;
      }
      const next = chunk.indexOf(LF_DOT, i);
      const stop = next < 0 ? chunk.length : next + 1;
      this.#take(response, chunk, i, stop);
      if (next < 0) {
        this.#atLineStart = chunk[chunk.length - 1] === LF;
        return chunk.length;
      }
      i = stop;
      this.#atLineStart = true;
    }
  }

  // Counts chunk[from, to) as message octets; keeps the head; counts bare LFs.
  #take(response: Pop3Response, chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    response.octets! += to - from;
    if (this.#headUsed < HEAD_BYTES) this.#headUsed += chunk.copy(response.head!, this.#headUsed, from, Math.min(to, from + HEAD_BYTES - this.#headUsed));
    // A bare LF makes the octet count differ from the server's; only check
    // where it is cheap: the LF before each "." line and at the chunk's end.
    if (chunk[to - 1] === LF && (to - 2 >= from ? chunk[to - 2] !== CR : !this.#lastWasCr)) response.bareLf!++;
    this.#lastWasCr = chunk[to - 1] === CR;
  }

  #deliver(response: Pop3Response): void {
    response.at = performance.now();
    this.#responses.push(response);
  }

  // -------------------------------------------------------------------------
  // The caller's side

  /** The next response; rejects if the connection fails or `deadline` (a Date.now() value) passes. */
  read(deadline: number): Promise<Pop3Response> {
    return this.#responses.next(deadline);
  }

  /** Sends one command line (CRLF added); `expect` says what its +OK carries. */
  send(line: string, expect: Expect = 'single'): void {
    if (this.#responses.failure) throw this.#responses.failure;
    this.#expected.push(expect);
    this.#socket.write(line + '\r\n', 'latin1');
  }

  /** Sends a command and reads its response. */
  async command(line: string, deadline: number, expect: Expect = 'single'): Promise<Pop3Response> {
    this.send(line, expect);
    return this.read(deadline);
  }

  /** An AUTH continuation: a line that answers "+ challenge" (nothing new expected). */
  answer(line: string): void {
    this.#socket.write(line + '\r\n', 'latin1');
  }

  /**
   * QUIT, then wait until the server closes the connection (a server
   * releases the maildrop before it closes, so the next login finds it
   * free). Bounded by `deadline`; never throws.
   */
  async quit(deadline: number): Promise<void> {
    try {
      if (!this.#responses.failure) await this.command('QUIT', deadline);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.closed, new Promise((done) => (timer = setTimeout(done, Math.max(0, deadline - Date.now()))))]);
      clearTimeout(timer);
    } catch {
      // Closing anyway.
    }
    this.#socket.destroy();
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.#socket.destroy();
  }
}
