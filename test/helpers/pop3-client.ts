// A small, real POP3 client for the tests, on the protocol-neutral LineClient.
//
// POP3 (RFC 1939 3) has two kinds of response: one status line, "+OK text"
// or "-ERR text"; and a multi-line response, the status line followed by
// lines in which a leading "." is doubled, ended by a line holding a single
// ".". This client undoes the dot-stuffing, and keeps count of the raw bytes
// on the wire so a test can check what really went over the socket: that
// every line ended in CRLF, and how many octets a message took.
//
// STLS and POP3S (RFC 2595 4, RFC 8314) verify the server's certificate
// against the one the test server made, as a careful mail client would.

import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { LineClient, openSocket } from './smtp-client.ts';
import type { ConnectOptions } from './smtp-client.ts';

export interface Pop3Response {
  ok: boolean;
  /** What follows "+OK " or "-ERR ". */
  text: string;
}

export interface RetrResult extends Pop3Response {
  /** The number in "+OK <n> octets" (RFC 1939 LIST/RETR size), or NaN. */
  size: number;
  /** The message as the client ends up with it: dot-stuffing undone, CRLF line endings. */
  bytes: Buffer;
  /** Every byte of the response as it came over the socket, status line and final "." included. */
  wire: Buffer;
}

const LF = 0x0a;
const CR = 0x0d;

export class Pop3Client extends LineClient {
  /** Line feeds received without a CR before them: RFC 1939 3 wants CRLF everywhere. */
  bareLineFeeds = 0;
  private lastByte = -1;
  /** While recording, every chunk received (for `wire` above). */
  private recording: Buffer[] | null = null;

  constructor(socket: Socket) {
    super(socket);
    socket.on('data', (chunk: Buffer) => {
      for (let i = chunk.indexOf(LF); i >= 0; i = chunk.indexOf(LF, i + 1)) {
        const before = i > 0 ? chunk[i - 1] : this.lastByte;
        if (before !== CR) this.bareLineFeeds++;
      }
      if (chunk.length > 0) this.lastByte = chunk[chunk.length - 1];
      this.recording?.push(chunk);
    });
  }

  /** Read one status line; throws if it is neither +OK nor -ERR, or the connection closed. */
  async readResponse(timeoutMs?: number): Promise<Pop3Response> {
    const line = await this.readLine(timeoutMs);
    if (line === null) throw new Error('connection closed while waiting for a POP3 response');
    const match = /^(\+OK|-ERR)(?: (.*))?$/.exec(line);
    if (!match) throw new Error(`not a POP3 status line: ${JSON.stringify(line)}`);
    return { ok: match[1] === '+OK', text: match[2] ?? '' };
  }

  /** Send a command and read its status line. */
  async command(line: string): Promise<Pop3Response> {
    this.send(line);
    return this.readResponse();
  }

  /**
   * The body of a multi-line response, after its +OK: the lines with the
   * extra "." removed, up to (not including) the terminating ".". With
   * `onLine`, lines are handed over one by one and not kept (large messages).
   */
  async readMultiline(onLine?: (line: string) => void): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line === null) throw new Error(`connection closed inside a multi-line response after ${lines.length} lines`);
      if (line === '.') return lines;
      // RFC 1939 3: a line starting with "." was sent with one more.
      const text = line.startsWith('.') ? line.slice(1) : line;
      if (onLine) onLine(text);
      else lines.push(text);
    }
  }

  /** A multi-line response as bytes: the un-stuffed lines, each ended by CRLF. */
  async readMultilineBytes(): Promise<Buffer> {
    const lines = await this.readMultiline();
    return Buffer.from(lines.map((line) => line + '\r\n').join(''), 'utf8');
  }

  /** Send a command; if it gets +OK, read the lines that follow. */
  async multiline(line: string): Promise<Pop3Response & { lines: string[] }> {
    const response = await this.command(line);
    return { ...response, lines: response.ok ? await this.readMultiline() : [] };
  }

  /** RETR n: the message exactly as received, and the raw bytes of the whole response. */
  async retr(n: number | string): Promise<RetrResult> {
    return this.fetch(`RETR ${n}`);
  }

  /** TOP n k, in the same form as retr(). */
  async top(n: number | string, lines: number | string): Promise<RetrResult> {
    return this.fetch(`TOP ${n} ${lines}`);
  }

  private async fetch(command: string): Promise<RetrResult> {
    this.recording = [];
    try {
      const response = await this.command(command);
      const size = Number(/^(\d+) octets/.exec(response.text)?.[1] ?? NaN);
      const bytes = response.ok ? await this.readMultilineBytes() : Buffer.alloc(0);
      return { ...response, size, bytes, wire: Buffer.concat(this.recording) };
    } finally {
      this.recording = null;
    }
  }

  /** USER then PASS; returns the reply to PASS (or to USER if that failed). */
  async userPass(user: string, password: string): Promise<Pop3Response> {
    const reply = await this.command(`USER ${user}`);
    if (!reply.ok) return reply;
    return this.command(`PASS ${password}`);
  }

  /** The CAPA list (RFC 2449 5). */
  async capa(): Promise<string[]> {
    const reply = await this.multiline('CAPA');
    if (!reply.ok) throw new Error(`CAPA failed: ${reply.text}`);
    return reply.lines;
  }

  /** UIDL without argument, as a map from message number to unique id. */
  async uidl(): Promise<Map<number, string>> {
    const reply = await this.multiline('UIDL');
    if (!reply.ok) throw new Error(`UIDL failed: ${reply.text}`);
    return new Map(reply.lines.map((line) => {
      const [n, id] = line.split(' ');
      return [Number(n), id];
    }));
  }

  /** STAT as numbers. */
  async stat(): Promise<{ count: number; octets: number }> {
    const reply = await this.command('STAT');
    const match = /^(\d+) (\d+)$/.exec(reply.text);
    if (!reply.ok || !match) throw new Error(`STAT failed: ${reply.ok ? '+OK' : '-ERR'} ${reply.text}`);
    return { count: Number(match[1]), octets: Number(match[2]) };
  }

  /** QUIT, its reply, and the server closing the connection. */
  async quit(): Promise<Pop3Response> {
    const reply = await this.command('QUIT');
    await this.waitClosed();
    return reply;
  }
}

/** Connect to a POP3 port in clear; the greeting is left for the caller. */
export async function connectPop3(port: number, options: ConnectOptions = {}): Promise<Pop3Client> {
  return new Pop3Client(await openSocket(port, options));
}

/** Connect and read the +OK greeting. */
export async function openPop3(port: number, options: ConnectOptions = {}): Promise<Pop3Client> {
  const client = await connectPop3(port, options);
  const greeting = await client.readResponse();
  if (!greeting.ok) throw new Error(`greeting was -ERR ${greeting.text}`);
  return client;
}

async function handshake(secure: TLSSocket): Promise<TLSSocket> {
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  if (!secure.authorized) throw new Error(`certificate not verified: ${secure.authorizationError}`);
  return secure;
}

/**
 * After "+OK" to STLS: run the TLS handshake on the same socket, verifying the
 * certificate `ca`, and return a client on the encrypted stream. Whatever the
 * plain client had received but not read is returned as `leftover` (it should
 * be nothing: the server must not say anything in clear after its +OK).
 */
export async function upgradeToTls(client: Pop3Client, ca: string): Promise<{ client: Pop3Client; leftover: string }> {
  const leftover = client.rest();
  client.socket.removeAllListeners('data');
  const secure = await handshake(tlsConnect({ socket: client.socket, ca, servername: 'localhost' }));
  return { client: new Pop3Client(secure), leftover };
}

/** A verified implicit-TLS connection (the pop3s port); the greeting is left for the caller. */
export async function connectPop3s(port: number, ca: string): Promise<Pop3Client> {
  const secure = await handshake(tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' }));
  return new Pop3Client(secure);
}
