// A small scriptable SMTP server for the relay client's tests, on 127.0.0.1
// with a port the system picks. Each test says what the server offers (EHLO
// keywords, STARTTLS, implicit TLS, AUTH PLAIN and LOGIN), how it answers
// (per command, per recipient), where it misbehaves (drop the connection,
// say nothing, stop reading), and then looks at what it received: every
// command line, how the lines were grouped into reads (PIPELINING, RFC
// 2920), and the exact bytes of each DATA, end marker included.
//
// It is deliberately not the project's own SMTP server: a test of the client
// against our server could pass with the same mistake on both sides.

import { createServer as createNetServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, TLSSocket } from 'node:tls';

export type Verb = 'EHLO' | 'HELO' | 'STARTTLS' | 'AUTH' | 'MAIL' | 'RCPT' | 'DATA' | 'DOT' | 'RSET' | 'QUIT';

export interface FakeServerOptions {
  /** EHLO keywords after the first line, e.g. ['PIPELINING', 'SIZE 1000', 'STARTTLS']. */
  ehlo?: string[];
  /** Keywords after STARTTLS; default: `ehlo` without STARTTLS. */
  ehloAfterTls?: string[];
  /** The greeting; null to stay silent. Default `220 fake.test ESMTP`. */
  greeting?: string | null;
  /** Fixed replies (lines separated by \n), e.g. { MAIL: '451 4.3.0 Try later', EHLO: '502 5.5.2 Unknown' }. */
  replies?: Partial<Record<Verb, string>>;
  /** Replies to RCPT by address; others get 250. */
  rcpt?: Record<string, string>;
  /** Close the connection instead of answering: at a command, at once ('GREETING') or once message bytes arrive ('BODY'). */
  dropAt?: Verb | 'GREETING' | 'BODY';
  /** Stop reading after the 354 (a server that stalls mid-DATA). */
  stallData?: boolean;
  /** Key and certificate: STARTTLS works (when listed in `ehlo`), or implicit TLS. */
  tls?: { keyPem: string; certPem: string };
  implicitTls?: boolean;
  /** Accepted AUTH PLAIN or LOGIN credentials: 235 for these, 535 for others. */
  auth?: { username: string; password: string };
  /** Sent in clear right after the 220 to STARTTLS, as a man in the middle would (RFC 3207 4.2). */
  injectAfterStarttls?: string;
  /** Say 220 to STARTTLS, then answer the client's TLS hello with clear text: the handshake fails at once. */
  brokenTls?: boolean;
}

/** What one connection received. */
export interface FakeSession {
  commands: { line: string; tls: boolean }[];
  /** The text of each read in command mode: pipelined commands arrive together. */
  reads: string[];
  /** Each DATA as received: dot-stuffed, CRLF, end marker included. */
  messages: Buffer[];
  tls: boolean;
  authenticated: string | null;
}

export interface FakeServer {
  port: number;
  sessions: FakeSession[];
  close(): Promise<void>;
}

const END = Buffer.from('\r\n.\r\n');

export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const sessions: FakeSession[] = [];
  const sockets = new Set<Socket>();
  const secureContext = options.tls ? createSecureContext({ key: options.tls.keyPem, cert: options.tls.certPem }) : undefined;
  const onConnection = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const session: FakeSession = { commands: [], reads: [], messages: [], tls: options.implicitTls === true, authenticated: null };
    sessions.push(session);
    serve(socket, session, options, secureContext);
  };
  const server: Server = options.implicitTls
    ? createTlsServer({ key: options.tls!.keyPem, cert: options.tls!.certPem }, onConnection)
    : createNetServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return {
    port: address.port,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** One connection: lines in command mode, raw bytes in data mode. */
function serve(socket: Socket, session: FakeSession, options: FakeServerOptions, secureContext: ReturnType<typeof createSecureContext> | undefined): void {
  const replies = options.replies ?? {};
  let current: Socket = socket;
  let buffer = Buffer.alloc(0);
  let inData = false;
  let mailOk = false;
  let accepted = 0;
  let stopped = false;
  // An AUTH LOGIN exchange in progress: the username is asked for, then the password (each line base64).
  let login: { username?: string } | null = null;

  const send = (text: string) => {
    if (!current.destroyed) current.write(text.split('\n').map((line) => line + '\r\n').join(''));
  };
  const drop = () => {
    stopped = true;
    current.destroy();
  };
  const ehloReply = () => {
    const keywords = session.tls ? (options.ehloAfterTls ?? (options.ehlo ?? []).filter((k) => k !== 'STARTTLS')) : (options.ehlo ?? []);
    const lines = ['fake.test Hello', ...keywords];
    return lines.map((line, i) => `250${i < lines.length - 1 ? '-' : ' '}${line}`).join('\n');
  };

  /** Handle one command line; returns false when the connection is finished. */
  const command = (line: string): boolean => {
    session.commands.push({ line, tls: session.tls });
    if (login) return loginAnswer(line);
    const verb = (line.split(' ')[0] ?? '').toUpperCase() as Verb;
    if (options.dropAt === verb) {
      drop();
      return false;
    }
    const fixed = replies[verb];
    switch (verb) {
      case 'EHLO':
        send(fixed ?? ehloReply());
        return true;
      case 'HELO':
        send(fixed ?? '250 fake.test');
        return true;
      case 'STARTTLS': {
        send(fixed ?? '220 2.0.0 Ready to start TLS' + (options.injectAfterStarttls ? `\n${options.injectAfterStarttls}` : ''));
        if (!fixed && options.brokenTls) {
          current.removeAllListeners('data');
          current.once('data', () => current.write('this is not TLS\r\n'));
          return false;
        }
        if (fixed || !secureContext) return true;
        // Throw away anything pipelined after STARTTLS and read through TLS from now on.
        buffer = Buffer.alloc(0);
        current.removeAllListeners('data');
        const secure = new TLSSocket(current, { isServer: true, secureContext });
        secure.on('error', () => {});
        secure.once('secure', () => (session.tls = true));
        current = secure;
        listen(secure);
        return false; // nothing more from the clear-text buffer
      }
      case 'AUTH': {
        const [, mechanism, initial] = line.split(' ');
        if (fixed) send(fixed);
        else if (options.auth && mechanism?.toUpperCase() === 'LOGIN' && !initial) {
          login = {};
          send(`334 ${Buffer.from('Username:').toString('base64')}`);
        } else if (!options.auth || mechanism?.toUpperCase() !== 'PLAIN' || !initial) send('504 5.5.4 Unrecognized authentication type');
        else {
          const [, user, password] = Buffer.from(initial, 'base64').toString('utf8').split('\0');
          const ok = user === options.auth.username && password === options.auth.password;
          if (ok) session.authenticated = user;
          send(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
        }
        return true;
      }
      case 'MAIL': {
        const answer = fixed ?? '250 2.1.0 Ok';
        mailOk = answer.startsWith('2');
        accepted = 0;
        send(answer);
        return true;
      }
      case 'RCPT': {
        const address = /<(.*)>/.exec(line)?.[1] ?? '';
        const answer = !mailOk ? '503 5.5.1 Error: need MAIL command' : (options.rcpt?.[address] ?? fixed ?? '250 2.1.5 Ok');
        if (answer.startsWith('2')) accepted++;
        send(answer);
        return true;
      }
      case 'DATA': {
        const answer = fixed ?? (accepted > 0 ? '354 End data with <CR><LF>.<CR><LF>' : '554 5.5.1 Error: no valid recipients');
        send(answer);
        if (!answer.startsWith('354')) return true;
        inData = true;
        if (options.stallData) {
          stopped = true;
          current.pause();
          return false;
        }
        return true;
      }
      case 'RSET':
        mailOk = false;
        accepted = 0;
        send(fixed ?? '250 2.0.0 Ok');
        return true;
      case 'QUIT':
        send(fixed ?? '221 2.0.0 Bye');
        current.end();
        return false;
      default:
        send('502 5.5.2 Error: command not recognized');
        return true;
    }
  };

  /** A line of an AUTH LOGIN exchange: the username, then the password. */
  const loginAnswer = (line: string): boolean => {
    const text = Buffer.from(line, 'base64').toString('utf8');
    if (login!.username === undefined) {
      login!.username = text;
      send(`334 ${Buffer.from('Password:').toString('base64')}`);
      return true;
    }
    const ok = login!.username === options.auth!.username && text === options.auth!.password;
    if (ok) session.authenticated = login!.username;
    login = null;
    send(ok ? '235 2.7.0 Authentication successful' : '535 5.7.8 Authentication credentials invalid');
    return true;
  };

  /** Work through the buffer: commands line by line, DATA up to its end marker. */
  const work = () => {
    while (!stopped) {
      if (inData) {
        if (options.dropAt === 'BODY' && buffer.length > 0) return drop();
        const atStart = buffer.subarray(0, 3).equals(Buffer.from('.\r\n'));
        const end = atStart ? 0 : buffer.indexOf(END);
        if (end < 0) return;
        const length = atStart ? 3 : end + END.length;
        session.messages.push(Buffer.from(buffer.subarray(0, length)));
        buffer = buffer.subarray(length);
        inData = false;
        mailOk = false;
        accepted = 0;
        if (options.dropAt === 'DOT') return drop();
        send(options.replies?.DOT ?? '250 2.0.0 Ok: queued as FAKE');
        continue;
      }
      const lf = buffer.indexOf(0x0a);
      if (lf < 0) return;
      const line = buffer.subarray(0, lf).toString('utf8').replace(/\r$/, '');
      buffer = buffer.subarray(lf + 1);
      if (!command(line)) return;
    }
  };

  const listen = (stream: Socket) => {
    stream.on('data', (chunk: Buffer) => {
      if (!inData) session.reads.push(chunk.toString('utf8'));
      buffer = Buffer.concat([buffer, chunk]);
      work();
    });
  };

  socket.on('error', () => {});
  // Replies go out as soon as written: Nagle's algorithm would hold a second
  // small reply back for the client's delayed ACK, 40 ms per pipelined group.
  socket.setNoDelay(true);
  listen(socket);
  if (options.dropAt === 'GREETING') return drop();
  if (options.greeting !== null) send(options.greeting ?? '220 fake.test ESMTP');
}
