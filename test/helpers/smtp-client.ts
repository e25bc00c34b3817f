// A small, real SMTP client for the tests, over a real loopback socket.
//
// Two layers, like the server: `LineClient` cuts whatever the server sends
// into lines and knows no protocol (POP3 and IMAP tests can use it as it is);
// `SmtpClient` adds SMTP's replies (RFC 5321 4.2: `250-...` lines continue a
// reply, `250 ...` ends it) and `sendMail` runs a whole transaction.
//
// Every read has a deadline, so a server that never answers fails the test
// with a message instead of hanging it.

import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';

/** How long a read waits before the test fails. */
const READ_TIMEOUT_MS = 5000;

export interface ConnectOptions {
  host?: string;
  /** Source address, e.g. '127.0.0.2' to look like a second client machine. */
  localAddress?: string;
}

/** Open a TCP connection; resolves once it is established. */
export function openSocket(port: number, options: ConnectOptions = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: options.host ?? '127.0.0.1', localAddress: options.localAddress });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Lines in (CRLF or LF stripped), bytes out. Protocol-neutral. */
export class LineClient {
  readonly socket: Socket;
  /** Bytes received and not yet read. */
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly closedPromise: Promise<void>;
  private wake: (() => void) | null = null;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.notify();
    });
    socket.on('end', () => {
      this.ended = true;
      this.notify();
    });
    // A reset from the server is a way of closing too; tests look at what was read.
    socket.on('error', () => {
      this.ended = true;
      this.notify();
    });
    this.closedPromise = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => {
      this.ended = true;
      this.notify();
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Wait until more bytes arrive or the connection ends; false on timeout. */
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

  /** The next line without its line ending, or null once the server has closed and nothing is left. */
  async readLine(timeoutMs = READ_TIMEOUT_MS): Promise<string | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.pending.indexOf(0x0a);
      if (end >= 0) {
        const raw = this.pending.subarray(0, end);
        this.pending = this.pending.subarray(end + 1);
        const text = raw.length > 0 && raw[raw.length - 1] === 0x0d ? raw.subarray(0, -1) : raw;
        return text.toString('utf8');
      }
      if (this.ended) {
        if (this.pending.length > 0) throw new Error(`connection closed inside a line: ${JSON.stringify(this.rest())}`);
        return null;
      }
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForData(left))) {
        throw new Error(`no line from the server within ${timeoutMs} ms`);
      }
    }
  }

  /** Exactly `length` raw bytes (an IMAP literal in a response). */
  async readExact(length: number, timeoutMs = READ_TIMEOUT_MS): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.pending.length >= length) {
        const bytes = this.pending.subarray(0, length);
        this.pending = this.pending.subarray(length);
        return bytes;
      }
      if (this.ended) throw new Error(`connection closed after ${this.pending.length} of ${length} bytes`);
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForData(left))) throw new Error(`no ${length} bytes from the server within ${timeoutMs} ms`);
    }
  }

  /** Bytes received but not read yet (and forget them). */
  rest(): string {
    const text = this.pending.toString('utf8');
    this.pending = Buffer.alloc(0);
    return text;
  }

  /** Send one line; CRLF is added. */
  send(line: string): void {
    this.socket.write(line + '\r\n');
  }

  /** Send bytes exactly as given. */
  sendRaw(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send bytes and wait until they have been handed to the kernel. */
  sendRawAndFlush(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(data, (err) => (err ? reject(err) : resolve())));
  }

  /** True once the server has closed its side (or the connection broke). */
  get isEnded(): boolean {
    return this.ended;
  }

  /** Close our side and wait until the socket is fully closed. */
  async close(): Promise<void> {
    this.socket.end();
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    await this.closedPromise;
    clearTimeout(timer);
  }

  /** Drop the connection at once, as a crashing client would. */
  destroy(): void {
    this.socket.destroy();
  }

  /**
   * Wait until the server closes the connection (we then close ours).
   * Rejects if it is still open after `timeoutMs`.
   */
  async waitClosed(timeoutMs = READ_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0 || !(await this.waitForData(left))) {
        throw new Error(`the server did not close the connection within ${timeoutMs} ms`);
      }
    }
    this.socket.end();
    await this.closedPromise;
  }
}

/** One SMTP reply: its code and the text of each line (after `250-` / `250 `). */
export interface SmtpReply {
  code: number;
  lines: string[];
}

export class SmtpClient extends LineClient {
  /** Read one reply, all of its lines (RFC 5321 4.2.1). */
  async readReply(timeoutMs = READ_TIMEOUT_MS): Promise<SmtpReply> {
    const lines: string[] = [];
    let code = 0;
    for (;;) {
      const line = await this.readLine(timeoutMs);
      if (line === null) {
        throw new Error(`connection closed while reading a reply${lines.length ? ` (got ${lines.join(' | ')})` : ''}`);
      }
      const match = /^(\d{3})([ -]|$)(.*)$/.exec(line);
      if (!match) throw new Error(`not an SMTP reply line: ${JSON.stringify(line)}`);
      const lineCode = Number(match[1]);
      if (lines.length > 0 && lineCode !== code) throw new Error(`reply code changed inside a reply: ${line}`);
      code = lineCode;
      lines.push(match[3]);
      if (match[2] !== '-') return { code, lines };
    }
  }

  /** Send a command line and read its reply. */
  async command(line: string): Promise<SmtpReply> {
    this.send(line);
    return this.readReply();
  }
}

/** Connect to an SMTP server. The 220 greeting is left for the caller to read. */
export async function connect(port: number, options: ConnectOptions = {}): Promise<SmtpClient> {
  return new SmtpClient(await openSocket(port, options));
}

/** Connect, read the greeting and say EHLO; both must succeed. */
export async function openSession(port: number, heloName = 'client.example'): Promise<SmtpClient> {
  const client = await connect(port);
  const greeting = await client.readReply();
  if (greeting.code !== 220) throw new Error(`greeting was ${greeting.code} ${greeting.lines.join(' ')}`);
  const ehlo = await client.command(`EHLO ${heloName}`);
  if (ehlo.code !== 250) throw new Error(`EHLO got ${ehlo.code} ${ehlo.lines.join(' ')}`);
  return client;
}

/**
 * A message as it goes on the wire after DATA (RFC 5321 4.5.2): every line
 * ending becomes CRLF (the input may use LF or CRLF), a line starting with
 * "." gets a second ".", and the end marker "." CRLF follows.
 */
export function dotStuff(message: string | Buffer): Buffer {
  const bytes = Buffer.isBuffer(message) ? message : Buffer.from(message, 'utf8');
  const out: Buffer[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    const last = end < 0;
    if (last) end = bytes.length;
    let line = bytes.subarray(start, end);
    if (!last && line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, -1);
    if (line.length > 0 && line[0] === 0x2e) out.push(Buffer.from('.'));
    out.push(line, Buffer.from('\r\n'));
    start = end + 1;
  }
  out.push(Buffer.from('.\r\n'));
  return Buffer.concat(out);
}

export interface MailOptions {
  from: string;
  to: string[];
  data: string | Buffer;
  /** ESMTP parameters after MAIL FROM, e.g. 'BODY=8BITMIME'. */
  mailParams?: string;
  heloName?: string;
}

export interface MailResult {
  /** The reply to the final dot, or the first refused step (MAIL, all RCPTs, DATA). */
  final: SmtpReply;
  mail: SmtpReply;
  rcpt: SmtpReply[];
  /** Whether the message itself was sent (DATA got 354). */
  sent: boolean;
}

/** A whole transaction on an open, greeted session: MAIL, RCPTs, DATA, the message. */
export async function transaction(client: SmtpClient, options: MailOptions): Promise<MailResult> {
  const params = options.mailParams ? ` ${options.mailParams}` : '';
  const mail = await client.command(`MAIL FROM:<${options.from}>${params}`);
  if (mail.code !== 250) return { final: mail, mail, rcpt: [], sent: false };
  const rcpt: SmtpReply[] = [];
  for (const to of options.to) rcpt.push(await client.command(`RCPT TO:<${to}>`));
  const data = await client.command('DATA');
  if (data.code !== 354) return { final: data, mail, rcpt, sent: false };
  client.sendRaw(dotStuff(options.data));
  return { final: await client.readReply(), mail, rcpt, sent: true };
}

/** Connect, EHLO, one transaction, QUIT. */
export async function sendMail(port: number, options: MailOptions): Promise<MailResult> {
  const client = await openSession(port, options.heloName);
  try {
    const result = await transaction(client, options);
    const quit = await client.command('QUIT');
    if (quit.code !== 221) throw new Error(`QUIT got ${quit.code}`);
    await client.waitClosed();
    return result;
  } finally {
    client.destroy();
  }
}
