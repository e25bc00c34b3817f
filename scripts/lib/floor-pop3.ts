// The least a POP3 server written in Node must do to hand over mail kept in
// an mbox, as a floor to hold this project's server against
// (scripts/bench-budget.ts --floor). Not a mail server: any user name and
// password are taken, one maildrop, no DELE, no limits (with --layer, the
// shared layer's), no TLS, no logging.
//
//   node scripts/lib/floor-pop3.ts PORT MBOX [--layer]
//
// (PORT 0: any free port.) Its first line of output says where it listens:
// "floor-pop3 listening on 127.0.0.1:PORT, pid N".
//
// What it does keep is what a server must do per message:
//  - at PASS, a scan of the mbox (RFC 4155: a line starting "From " opens a
//    message), keeping each message's place, size on the wire and CRC-32;
//  - RETR (RFC 1939 7): the message read from the file into one buffer kept
//    for the next, checked against its CRC (so a file changed behind our
//    back is never served as the message), ">From " unquoted (mboxrd), a
//    leading dot doubled, LF made CRLF, and the status line, the message and
//    the "." sent in one write. The conversions are this project's own
//    (store/mboxrd.ts unquoteMboxrdText, wire/dot-writer.ts pushLastText):
//    the cheapest this project knows, measured against a regular expression
//    and replaceAll here (7-9 us a RETR less), so what the floor leaves out
//    is only the server's lookups, checks and session work;
//  - pipelined commands (RFC 2449 6.6) answered in one write per read.
// The figures it gives say how far above the least work the real server is.
//
// With --layer, the same answers go through the project's shared protocol
// layer, as every protocol of the server runs on it (wire/connection.ts,
// protocol/session.ts): lines cut with a length limit, a deadline per
// command, back-pressure, a command table, replies queued and written
// together. Its figures say what that layer costs per command, and how far
// above it the real server's POP3 (its store, its checks) is.
//
// Safe: listens on 127.0.0.1 only; stops on SIGTERM.

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { createLogger } from '../../src/log.ts';
import { unquoteMboxrdText } from '../../src/store/mboxrd.ts';
import { DotWriter } from '../../src/wire/dot-writer.ts';
import type { Wire } from '../../src/wire/reply-queue.ts';
import { ProtocolSession } from '../../src/protocol/session.ts';
import type { LoginService } from '../../src/auth/login.ts';
import type { Dialect, PhaseState } from '../../src/protocol/types.ts';
import { Connection } from '../../src/wire/connection.ts';

const [portText, mboxPath, mode] = process.argv.slice(2);

interface Message {
  /** Where the message starts (after its From line) and its stored length. */
  offset: number;
  length: number;
  /** Octets as RETR sends them, without the dot-stuffing (LIST, RFC 1939 5). */
  size: number;
  crc: number;
}

let messages: Message[] = [];
let fd = -1;

/** Octets of the stored message as RETR sends it, without the dot-stuffing (LIST, RFC 1939 5). */
function wireSize(stored: Buffer): number {
  const text = unquoteMboxrdText(stored.toString('latin1'));
  let lineEnds = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lineEnds++;
  const open = text.length > 0 && !text.endsWith('\n') ? 2 : 0; // RETR closes an open last line (RFC 1939 3)
  return text.length + lineEnds + open;
}

/**
 * Reads the mbox once and notes every message: it runs from after its From
 * line to the line end before the blank line that precedes the next From
 * line (or the end of the file).
 */
function scan(): void {
  if (fd >= 0) closeSync(fd);
  fd = openSync(mboxPath, 'r');
  const text = readFileSync(fd, 'latin1'); // (a floor may hold the file while it scans; the server does not)
  const starts: number[] = text.startsWith('From ') ? [0] : [];
  for (let at = text.indexOf('\nFrom '); at >= 0; at = text.indexOf('\nFrom ', at + 1)) starts.push(at + 1);
  messages = starts.map((start, i) => {
    const offset = text.indexOf('\n', start) + 1;
    let end = i + 1 < starts.length ? starts[i + 1] : text.length;
    if (text.endsWith('\n\n', end)) end--; // the blank line that separates messages
    const stored = Buffer.from(text.slice(offset, end), 'latin1');
    return { offset, length: stored.length, size: wireSize(stored), crc: crc32(stored) };
  });
}

/** Where RETR reads a message: one buffer, grown to the largest message read so far, kept for the next. */
let readBuffer = Buffer.alloc(0);

function retr(n: number): Wire {
  const message = messages[n - 1];
  if (!message) return '-ERR no such message\r\n';
  if (readBuffer.length < message.length) readBuffer = Buffer.allocUnsafe(message.length);
  const stored = readBuffer.subarray(0, readSync(fd, readBuffer, 0, message.length, message.offset));
  if (stored.length !== message.length || crc32(stored) !== message.crc) return '-ERR the mailbox changed\r\n';
  return new DotWriter().pushLastText(unquoteMboxrdText(stored.toString('latin1')), `+OK ${message.size} octets\r\n`);
}

function answer(line: string): Wire {
  const [verb, argument] = line.split(' ');
  switch (verb.toUpperCase()) {
    case 'CAPA':
      return '+OK\r\nUSER\r\nPIPELINING\r\nUIDL\r\n.\r\n';
    case 'USER':
    case 'NOOP':
      return '+OK\r\n';
    case 'PASS':
      scan();
      return `+OK ${messages.length} messages\r\n`;
    case 'STAT':
      return `+OK ${messages.length} ${messages.reduce((sum, m) => sum + m.size, 0)}\r\n`;
    case 'LIST':
      return `+OK\r\n${messages.map((m, i) => `${i + 1} ${m.size}\r\n`).join('')}.\r\n`;
    case 'UIDL':
      return `+OK\r\n${messages.map((m, i) => `${i + 1} ${m.offset.toString(36)}\r\n`).join('')}.\r\n`;
    case 'RETR':
      return retr(Number(argument));
    default:
      return '-ERR not here\r\n';
  }
}

/** One reply to the socket: text as latin1 (every reply here is one byte per character), bytes as they are. */
function write(socket: Socket, reply: Wire): void {
  if (typeof reply === 'string') socket.write(reply, 'latin1');
  else if (Buffer.isBuffer(reply)) socket.write(reply);
  else socket.write(reply.latin1, 'latin1');
}

function session(socket: Socket): void {
  let input = '';
  socket.on('error', () => socket.destroy());
  socket.write('+OK floor POP3\r\n');
  socket.on('data', (chunk: Buffer) => {
    input += chunk.toString('latin1');
    const replies: Wire[] = [];
    let quit = false;
    for (let lf = input.indexOf('\n'); lf >= 0 && !quit; lf = input.indexOf('\n')) {
      const line = input.slice(0, lf).trimEnd();
      input = input.slice(lf + 1);
      quit = line.toUpperCase() === 'QUIT';
      replies.push(quit ? '+OK bye\r\n' : answer(line));
    }
    // The replies to what came in one read go out together (corked: one writev).
    if (replies.length > 1) socket.cork();
    for (const reply of replies) write(socket, reply);
    if (replies.length > 1) socket.uncork();
    if (quit) socket.end();
  });
}

/** --layer: one command per handler call of the shared session loop; a reply is its bytes on the wire. */
type LayerRequest = { verb: string; line: string };
const layerCommand = { allowedIn: ['transaction'], handler: (_view: unknown, request: LayerRequest) => ({ reply: answer(request.line) }) };
const layerDialect: Dialect<unknown, LayerRequest, Wire, PhaseState> = {
  name: 'floor-pop3',
  greeting: () => '+OK floor POP3\r\n',
  parse: (line) => ({ request: { verb: line.split(' ')[0].toUpperCase(), line } }),
  commands: {
    ...Object.fromEntries(['CAPA', 'USER', 'PASS', 'NOOP', 'STAT', 'LIST', 'UIDL', 'RETR'].map((verb) => [verb, layerCommand])),
    QUIT: { allowedIn: ['transaction'], handler: () => ({ reply: '+OK bye\r\n', next: { kind: 'close' } }) },
  },
  format: (reply) => reply,
  isError: (reply) => typeof reply === 'string' && reply.startsWith('-ERR'),
  saslChallenge: (challenge) => `+ ${challenge}`,
  afterTls: () => ({}),
  replies: {
    unknownCommand: () => '-ERR not here\r\n',
    wrongPhase: () => '-ERR not now\r\n',
    lineTooLong: () => '-ERR line too long\r\n',
    idle: () => '-ERR idle\r\n',
    shuttingDown: () => '-ERR shutting down\r\n',
    tooManyErrors: () => '-ERR too many errors\r\n',
    internalError: () => '-ERR internal error\r\n',
  },
};
const quiet = createLogger({ quiet: true });

function sessionOnLayer(socket: Socket): void {
  // The POP3 server's limits (pop3/server.ts: 1024-octet lines, RFC 1939's 10-minute idle timer).
  const conn = new Connection(socket, { maxLineBytes: 1024, idleTimeoutMs: 600_000 });
  // No login service: PASS is answered by the table like any command, so the loop never asks for one.
  const settings = { maxErrors: 20, isShuttingDown: () => false, login: null as unknown as LoginService, tls: null, log: quiet };
  void new ProtocolSession(conn, layerDialect, { phase: 'transaction' }, null, settings).run();
}

const server = createServer(mode === '--layer' ? sessionOnLayer : session);
server.listen(Number(portText), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`floor-pop3 listening on 127.0.0.1:${port}, pid ${process.pid}`);
});
process.on('SIGTERM', () => process.exit(0));
