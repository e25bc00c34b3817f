// The client side of SMTP framing: it cuts what a server sends into replies
// and knows nothing about which command a reply answers.
//
// RFC 5321 4.2: a reply is one or more lines `ddd<SP>text` or `ddd-text`; a
// hyphen after the code means more lines follow, a space (or nothing) ends the
// reply. RFC 3463 / RFC 2034: the text may start with an enhanced status code
// `class.subject.detail`, whose class matches the reply's first digit.
//
// Invariants:
// - Memory is bounded whatever the server sends. A reply line is kept up to
//   MAX_LINE_OCTETS and the rest of it is skipped; a reply keeps its first
//   MAX_REPLY_LINES lines and the rest are read and dropped (both as Postfix's
//   SMTP client does with line_length_limit: a chatty server still gets its
//   mail, it just is not quoted in full). Bytes that arrive while nobody
//   reads stop the socket at MAX_BUFFERED_BYTES until they are read.
// - Bytes that arrived ahead of the reply asked for stay buffered in order:
//   with PIPELINING (RFC 2920) several replies may come in one packet.
// - `discardBuffered()` throws away unread bytes; the client calls it before
//   a STARTTLS handshake so a man in the middle cannot inject a reply in
//   clear that would be read as if it came over TLS (RFC 3207 4.2, the
//   client-side twin of CVE-2011-0411).

import type { Socket } from 'node:net';

/** A reply as the relay reports it: `250`, `2.0.0`, `Ok`. */
export interface SmtpResult {
  code: number;
  /** `x.y.z` when the server sent one, otherwise '' (RFC 3463). */
  enhanced: string;
  /** The text of all lines, enhanced codes removed, joined by spaces. */
  text: string;
}

/** A reply with its lines kept apart (EHLO's keywords are one per line). */
export interface ServerReply extends SmtpResult {
  lines: string[];
}

export type ReadReplyResult =
  | { kind: 'reply'; reply: ServerReply }
  /** The server closed the connection (or it broke) before the reply was complete. */
  | { kind: 'closed'; error?: string }
  /** No complete reply within the time allowed. */
  | { kind: 'timeout' }
  /** A line that is not an SMTP reply line. */
  | { kind: 'malformed'; line: string };

const LF = 0x0a;
const CR = 0x0d;
/** RFC 5321 4.5.3.1.5 limits a reply line to 512 octets; real servers exceed it, so keep Postfix's 2048. */
export const MAX_LINE_OCTETS = 2048;
/** An EHLO reply has a dozen or two lines; no reply needs more than this many quoted. */
export const MAX_REPLY_LINES = 100;
/** Unread bytes held before the socket is paused (several pipelined replies fit). */
const MAX_BUFFERED_BYTES = 64 * 1024;

export class ReplyReader {
  private socket: Socket | null = null;
  private pending: Buffer = Buffer.alloc(0);
  private closed = false;
  private closeError: string | undefined;
  private wake: (() => void) | null = null;
  /** The start of a line longer than MAX_LINE_OCTETS, while the rest of it is skipped. */
  private overlong: Buffer | null = null;
  /** The socket is paused because MAX_BUFFERED_BYTES are waiting to be read. */
  private paused = false;
  private readonly onData = (chunk: Buffer) => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.pending.length > MAX_BUFFERED_BYTES && this.socket && !this.paused) {
      this.paused = true;
      this.socket.pause(); // back-pressure: TCP tells the server to wait
    }
    this.notify();
  };
  private readonly onEnd = () => this.markClosed();
  private readonly onError = (error: Error) => this.markClosed(error.message);

  /** Start reading from `socket`; also used for the TLS socket after STARTTLS. */
  attach(socket: Socket): void {
    this.detach();
    this.socket = socket;
    this.closed = false;
    this.closeError = undefined;
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    socket.on('error', this.onError);
  }

  /** Stop listening: before the TLS layer takes over the plain socket. */
  detach(): void {
    const socket = this.socket;
    if (!socket) return;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onEnd);
    socket.off('error', this.onError);
    // Keep one error listener: an unhandled 'error' event would crash the process.
    socket.on('error', () => {});
    // A TLS layer about to take over the socket must find it flowing.
    if (this.paused) socket.resume();
    this.paused = false;
    this.socket = null;
  }

  /** Throw away what arrived and was not read yet (see the header). */
  discardBuffered(): void {
    this.pending = Buffer.alloc(0);
    this.overlong = null;
  }

  hasBuffered(): boolean {
    return this.pending.length > 0;
  }

  /** Read one whole reply, waiting at most `timeoutMs` for all of it. */
  async readReply(timeoutMs: number): Promise<ReadReplyResult> {
    const deadline = Date.now() + timeoutMs;
    const lines: string[] = [];
    let code = 0;
    let lineCount = 0;
    for (;;) {
      const line = this.takeLine();
      if (line !== null) {
        const parsed = parseReplyLine(line);
        // RFC 5321 4.2.1: every line of one reply carries the same code.
        if (!parsed || (lineCount > 0 && parsed.code !== code)) return { kind: 'malformed', line };
        code = parsed.code;
        if (++lineCount <= MAX_REPLY_LINES) lines.push(parsed.text);
        if (parsed.last) return { kind: 'reply', reply: makeReply(code, lines) };
        continue;
      }
      if (this.closed) return { kind: 'closed', error: this.closeError };
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForData(left))) return { kind: 'timeout' };
    }
  }

  /**
   * The next line without its CRLF (a lone LF is accepted too), cut to
   * MAX_LINE_OCTETS, or null if none is complete.
   */
  private takeLine(): string | null {
    const end = this.pending.indexOf(LF);
    if (end < 0) {
      if (this.pending.length > MAX_LINE_OCTETS) {
        // Keep the start of the line, skip the rest as it comes.
        this.overlong ??= Buffer.from(this.pending.subarray(0, MAX_LINE_OCTETS));
        this.pending = Buffer.alloc(0);
        this.resumeIfDrained();
      }
      return null;
    }
    const stop = end > 0 && this.pending[end - 1] === CR ? end - 1 : end;
    const bytes = this.overlong ?? this.pending.subarray(0, Math.min(stop, MAX_LINE_OCTETS));
    this.overlong = null;
    const line = bytes.toString('utf8');
    this.pending = this.pending.subarray(end + 1);
    this.resumeIfDrained();
    return line;
  }

  private resumeIfDrained(): void {
    if (this.paused && this.pending.length <= MAX_BUFFERED_BYTES) {
      this.paused = false;
      this.socket?.resume();
    }
  }

  private waitForData(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null;
        resolve(false);
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  private markClosed(error?: string): void {
    this.closed = true;
    this.closeError ??= error;
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

/** `250-PIPELINING` -> code 250, not last; `250 Ok` and a bare `250` end a reply. */
export function parseReplyLine(line: string): { code: number; last: boolean; text: string } | null {
  const match = /^([2-5]\d\d)([ -]|$)(.*)$/.exec(line);
  if (!match) return null;
  return { code: Number(match[1]), last: match[2] !== '-', text: match[3] };
}

/**
 * Build a reply from its lines. The enhanced code is taken from the first
 * line when its class matches the reply code (RFC 3463 2: a 550 cannot carry
 * 2.x.x), and removed from every line that repeats it.
 */
export function makeReply(code: number, lines: string[]): ServerReply {
  const match = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(lines[0] ?? '');
  const enhanced = match && Number(match[1]) === Math.floor(code / 100) ? `${match[1]}.${match[2]}.${match[3]}` : '';
  const stripped = enhanced ? lines.map((line) => (line.startsWith(enhanced) ? line.slice(enhanced.length).trimStart() : line)) : lines;
  return { code, enhanced, text: stripped.join(' ').trim(), lines: stripped };
}
