// The literal-aware command reader (wire/command-reader.ts), as IMAP will use
// it: over a real loopback socket, a Connection on the server side, a client
// that sends commands with synchronising ({n}) and non-synchronising ({n+})
// literals, whole or one byte at a time.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Connection } from '../../src/wire/connection.ts';
import { MemoryLiteral, readCommand } from '../../src/wire/command-reader.ts';
import type { LiteralPolicy } from '../../src/wire/command-reader.ts';
import { LineClient, openSocket } from '../helpers/smtp-client.ts';

const servers: Server[] = [];
after(() => servers.forEach((server) => server.close()));

/** A loopback server whose first connection is handed back as a Connection, and a client for it. */
async function pair(): Promise<{ conn: Connection; client: LineClient }> {
  let accepted!: (socket: Socket) => void;
  const socketPromise = new Promise<Socket>((resolve) => (accepted = resolve));
  const server = createServer((socket) => accepted(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new LineClient(await openSocket((server.address() as { port: number }).port));
  const conn = new Connection(await socketPromise, { maxLineBytes: 1000, idleTimeoutMs: 5000 });
  return { conn, client };
}

function policy(opened: number[] = []): LiteralPolicy<MemoryLiteral> {
  return {
    maxLiteralBytes: 100_000,
    maxNonSyncLiteralBytes: 4096,
    maxCommandBytes: 20_000,
    continuation: '+ Ready for literal data\r\n',
    openLiteral: (size) => {
      opened.push(size);
      return new MemoryLiteral();
    },
  };
}

test('a synchronising literal is invited with "+", read exactly, and the command goes on after it', async () => {
  const { conn, client } = await pair();
  const reading = readCommand(conn, policy());
  client.sendRaw('A1 LOGIN {7}\r\n');
  assert.equal(await client.readLine(), '+ Ready for literal data');
  client.sendRaw('jjordan {6}\r\n');
  assert.equal(await client.readLine(), '+ Ready for literal data');
  client.sendRaw('se\r\ncr\r\n'); // CR and LF inside a literal are data, not line ends
  const read = await reading;
  assert.equal(read.kind, 'command');
  if (read.kind !== 'command') return;
  assert.deepEqual(read.lines, ['A1 LOGIN {7}', ' {6}', '']);
  assert.deepEqual(read.literals.map((l) => l.bytes().toString()), ['jjordan', 'se\r\ncr']);
  conn.destroy();
});

test('non-synchronising literals ({n+}, LITERAL+) need no "+"; a command may be split at any byte', async () => {
  const { conn, client } = await pair();
  const reading = readCommand(conn, policy());
  const command = 'A2 APPEND INBOX (\\Seen) {11+}\r\nHello world UTF8 {3+}\r\n\x00\xff\x01 tail\r\n';
  const bytes = Buffer.from(command, 'latin1');
  for (let i = 0; i < bytes.length; i++) {
    await client.sendRawAndFlush(bytes.subarray(i, i + 1));
  }
  const read = await reading;
  assert.equal(read.kind, 'command');
  if (read.kind !== 'command') return;
  assert.deepEqual(read.lines, ['A2 APPEND INBOX (\\Seen) {11+}', ' UTF8 {3+}', ' tail']);
  assert.deepEqual(read.literals.map((l) => l.bytes()), [Buffer.from('Hello world'), Buffer.from([0, 0xff, 1])]);
  assert.equal(client.rest(), '', 'no continuation was sent');
  conn.destroy();
});

test('a literal larger than allowed is refused before a byte of it is read or allocated', async () => {
  const { conn, client } = await pair();
  const opened: number[] = [];
  const reading = readCommand(conn, policy(opened));
  client.sendRaw('A3 APPEND INBOX {999999999999}\r\n');
  const read = await reading;
  assert.deepEqual(read, { kind: 'literal-refused', lines: ['A3 APPEND INBOX {999999999999}'], size: 999999999999, synchronising: true });
  assert.deepEqual(opened, [], 'no sink was opened');
  assert.equal(await client.readLine(200).catch(() => null), null, 'no "+" invitation');
  // The client abandons the command; the next one reads normally.
  const next = readCommand(conn, policy(opened));
  client.sendRaw('A4 NOOP\r\n');
  assert.deepEqual(await next, { kind: 'command', lines: ['A4 NOOP'], literals: [] });
  conn.destroy();
});

test('a non-synchronising literal above the LITERAL- limit is refused (the caller hangs up: RFC 7888 4)', async () => {
  const { conn, client } = await pair();
  const reading = readCommand(conn, policy());
  client.sendRaw('A5 LOGIN {5000+}\r\n');
  const read = await reading;
  assert.equal(read.kind, 'literal-refused');
  if (read.kind === 'literal-refused') assert.equal(read.synchronising, false);
  conn.destroy();
});

test('the lines and in-memory literals of one command count against its limit', async () => {
  const { conn, client } = await pair();
  const reading = readCommand(conn, { ...policy(), maxCommandBytes: 100 });
  client.sendRaw(`A6 X {90+}\r\n${'y'.repeat(90)} more\r\n`);
  const read = await reading;
  assert.equal(read.kind, 'too-long');
  conn.destroy();
});

test('a client that leaves in the middle of a literal: the read reports it, nothing more', async () => {
  const { conn, client } = await pair();
  const reading = readCommand(conn, policy());
  client.sendRaw('A7 APPEND INBOX {100+}\r\nonly part of it');
  await new Promise((resolve) => setTimeout(resolve, 50));
  client.destroy();
  assert.deepEqual(await reading, { kind: 'closed' });
});
