// bench-imap's raw-socket IMAP client (scripts/lib/imap-client.ts) against
// a scripted server on loopback: responses cut at awkward places (inside a
// literal's "{n}", between CR and LF, inside the literal's octets), literals
// of zero octets and several in one response, counted or kept; IDLE's
// continuation; and the failures: a malformed line, a closed connection, a
// silent server.

import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { ImapClient, ImapError } from '../../scripts/lib/imap-client.ts';

const servers: Server[] = [];
const clients: ImapClient[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const server of servers.splice(0)) await new Promise((done) => server.close(done));
});

/**
 * A server that greets, then answers each command line with `reply(tag,
 * command)`: a list of pieces written one by one (so the client sees them
 * as separate reads), with a pause between them.
 */
async function scripted(reply: (tag: string, command: string) => (string | Buffer)[]): Promise<ImapClient> {
  const server = createServer((socket: Socket) => {
    socket.write('* OK scripted server ready\r\n');
    let input = '';
    socket.on('data', async (data) => {
      input += data.toString('latin1');
      for (let nl = input.indexOf('\r\n'); nl >= 0; nl = input.indexOf('\r\n')) {
        const line = input.slice(0, nl);
        input = input.slice(nl + 2);
        const space = line.indexOf(' ');
        const [tag, command] = space < 0 ? [line, line] : [line.slice(0, space), line.slice(space + 1)];
        for (const piece of reply(tag, command)) {
          socket.write(piece);
          await new Promise((done) => setTimeout(done, 5));
        }
      }
    });
  });
  servers.push(server);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const port = (server.address() as { port: number }).port;
  const client = await ImapClient.open('127.0.0.1', port, 5000);
  clients.push(client);
  const greeting = await client.read(Date.now() + 5000);
  assert.equal(greeting.kind, 'untagged');
  assert.equal(greeting.status, 'OK');
  return client;
}

const soon = () => Date.now() + 5000;

// A FETCH answer cut everywhere a naive parser slips: "{1" | "2}\r" | "\n" | literal halves.
const fetchPieces = (tag: string) => [
  '* 1 FETCH (UID 7 BODY[] {1',
  '3}\r',
  '\nHello, w',
  'orld! FLAGS (\\Seen))\r\n* 2 FETCH (UID 8 BODY[] {0}\r\n BODY[HEADER] {3}\r\nab',
  'c)\r\n',
  `${tag} OK FETCH completed\r\n`,
];

test('literals split across reads are counted, and kept when asked', async () => {
  const client = await scripted((tag) => fetchPieces(tag));
  const result = await client.command('FETCH 1:2 (UID BODY[])', soon(), { keepUntagged: true, keepLiteralBytes: 5 });
  assert.equal(result.status, 'OK');
  assert.equal(result.text, 'FETCH completed');
  assert.equal(result.untaggedCount, 2);
  assert.equal(result.literalBytes, 13 + 0 + 3);
  assert.deepEqual(
    result.untagged.map((r) => r.text),
    ['* 1 FETCH (UID 7 BODY[] {13} FLAGS (\\Seen))', '* 2 FETCH (UID 8 BODY[] {0} BODY[HEADER] {3})'],
  );
  assert.deepEqual(
    result.untagged.map((r) => r.literals.map((l) => l.toString())),
    [['Hello'], ['', 'abc']],
  );
});

test('without keepUntagged the same responses are only counted', async () => {
  const client = await scripted((tag) => fetchPieces(tag));
  const result = await client.command('FETCH 1:2 (UID BODY[])', soon());
  assert.equal(result.untaggedCount, 2);
  assert.equal(result.literalBytes, 16);
  assert.deepEqual(result.untagged, []);
  // The client is back in step: the next command gets its own answer.
  assert.equal((await client.command('NOOP', soon())).status, 'OK');
});

test('IDLE: the continuation, updates while idling, then DONE', async () => {
  let idleTag = '';
  const client = await scripted((tag, command) => {
    if (command === 'IDLE') {
      idleTag = tag;
      return ['+ idling\r\n', '* 3 EXISTS\r\n'];
    }
    return [`${tag === 'DONE' ? idleTag : tag} OK IDLE terminated\r\n`];
  });
  let updates = 0;
  client.onUntagged = () => updates++;
  const tag = await client.idle(soon());
  while (updates === 0) await new Promise((done) => setTimeout(done, 5));
  client.sendLine('DONE');
  const result = await client.finish(tag, 0, soon());
  assert.equal(result.status, 'OK');
  assert.equal(result.untaggedCount, 1);
  assert.equal(updates, 1);
});

test('NO and BAD come back as statuses; ok() turns them into errors', async () => {
  const client = await scripted((tag, command) => [`${tag} ${command === 'SELECT Nope' ? 'NO' : 'BAD'} [NONEXISTENT] not here\r\n`]);
  const result = await client.command('SELECT Nope', soon());
  assert.equal(result.status, 'NO');
  assert.equal(result.text, '[NONEXISTENT] not here');
  await assert.rejects(client.ok('FOO', soon()), /FOO failed: BAD/);
});

test('a line that is no IMAP response fails the command', async () => {
  const client = await scripted(() => ['HTTP/1.1 400 Bad Request\r\n']);
  await assert.rejects(client.command('NOOP', soon()), (err: Error) => err instanceof ImapError && /malformed response/.test(err.message));
});

test('a server that hangs up or stays silent fails the command, not the benchmark', async () => {
  const silent = await scripted(() => []);
  await assert.rejects(silent.command('NOOP', Date.now() + 100), /timed out/);
  const closing = await scripted(() => []);
  closing.socket.end();
  await assert.rejects(closing.command('NOOP', soon()), /closed|connection/);
});
