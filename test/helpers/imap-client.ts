// A small, real IMAP client for the tests, over a real loopback socket (or
// TLS). It sends tagged commands, with literals when asked, and collects the
// untagged responses up to the tagged one. Responses are read as lines; a
// literal inside a response ({n} at a line's end) is read whole and kept in
// `literals`, so FETCH BODY[] can be checked byte for byte.

import { connect as tlsConnect } from 'node:tls';
import type { Socket } from 'node:net';
import { LineClient, openSocket } from './smtp-client.ts';
import type { ConnectOptions } from './smtp-client.ts';

export interface ImapReply {
  /** Untagged lines, without "* ". A line that ended in a literal has the literal's bytes after it, in `literals`. */
  untagged: string[];
  /** The tagged line's status: OK, NO or BAD. */
  status: string;
  /** The rest of the tagged line (response code and text). */
  text: string;
  /** Literals in the responses, in order, as raw bytes. */
  literals: Buffer[];
}

export class ImapClient extends LineClient {
  private counter = 0;

  nextTag(): string {
    return `t${++this.counter}`;
  }

  /** Read a raw chunk of exactly `length` bytes (a literal in a response). */
  async readBytes(length: number, timeoutMs = 5000): Promise<Buffer> {
    return this.readExact(length, timeoutMs);
  }

  /** Read responses until the tagged one for `tag`. */
  async readTagged(tag: string, timeoutMs = 5000): Promise<ImapReply> {
    const reply: ImapReply = { untagged: [], status: '', text: '', literals: [] };
    for (;;) {
      let line = await this.readLine(timeoutMs);
      if (line === null) throw new Error(`connection closed while waiting for ${tag}; got ${JSON.stringify(reply.untagged)}`);
      // A literal at the end of a line: read it, then the rest of the response line.
      while (/\{\d+\}$/.test(line)) {
        const size = Number(/\{(\d+)\}$/.exec(line)![1]);
        const bytes = await this.readBytes(size, timeoutMs);
        reply.literals.push(bytes);
        const rest = await this.readLine(timeoutMs);
        line = `${line}${bytes.toString('latin1')}${rest ?? ''}`;
      }
      if (line.startsWith('* ')) {
        reply.untagged.push(line.slice(2));
        continue;
      }
      const match = new RegExp(`^${tag} (OK|NO|BAD) ?(.*)$`).exec(line);
      if (match) {
        reply.status = match[1];
        reply.text = match[2];
        return reply;
      }
      if (line.startsWith('+')) throw new Error(`unexpected continuation ${JSON.stringify(line)} while waiting for ${tag}`);
      throw new Error(`unexpected line ${JSON.stringify(line)} while waiting for ${tag}`);
    }
  }

  /** Send a command (tag added) and read its responses. */
  async command(text: string, timeoutMs?: number): Promise<ImapReply> {
    const tag = this.nextTag();
    this.sendRaw(`${tag} ${text}\r\n`);
    return this.readTagged(tag, timeoutMs);
  }

  /**
   * Send a command with synchronising literals: `parts` alternate text and
   * literal bytes; after each `{n}` the client waits for the server's "+".
   */
  async commandWithLiterals(parts: (string | Buffer)[], timeoutMs?: number): Promise<ImapReply> {
    const tag = this.nextTag();
    let text = `${tag} `;
    for (const part of parts) {
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      this.sendRaw(`${text}{${part.length}}\r\n`);
      const go = await this.readLine(timeoutMs);
      if (!go?.startsWith('+')) {
        // Refused before the literal: the tagged reply came instead.
        const reply: ImapReply = { untagged: [], status: '', text: '', literals: [] };
        const match = new RegExp(`^${tag} (OK|NO|BAD) ?(.*)$`).exec(go ?? '');
        if (match) return { ...reply, status: match[1], text: match[2] };
        throw new Error(`expected "+", got ${JSON.stringify(go)}`);
      }
      this.sendRaw(part);
      text = '';
    }
    this.sendRaw(`${text}\r\n`);
    return this.readTagged(tag, timeoutMs);
  }

  /** The greeting line. */
  async greeting(): Promise<string> {
    const line = await this.readLine();
    if (line === null) throw new Error('no greeting');
    return line;
  }
}

export async function connectImap(port: number, options: ConnectOptions = {}): Promise<ImapClient> {
  return new ImapClient(await openSocket(port, options));
}

/** An implicit-TLS connection (port 993's role), verifying the server's certificate. */
export async function connectImaps(port: number, ca: string): Promise<ImapClient> {
  const socket: Socket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', () => resolve());
    socket.once('error', reject);
  });
  return new ImapClient(socket);
}
