// The limits of the shared connection layer, against the real server over
// real sockets: a command line has a deadline however slowly its bytes
// arrive, a whole session has a deadline, and a client that sends commands
// without reading the replies is not served further (back-pressure) and is
// cut off. Every protocol gets these from wire/connection.ts.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { connect, openSocket } from '../helpers/smtp-client.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(limits: Record<string, number>): Promise<TestServer> {
  const server = await startTestServer({ config: { limits } });
  servers.push(server);
  return server;
}

/** Send one byte every `everyMs` until the connection closes or `maxMs` passes; true if it closed first. */
async function drip(client: { socket: Socket; sendRaw(data: string): void; isEnded: boolean }, bytes: string, everyMs: number, maxMs: number): Promise<boolean> {
  const stop = Date.now() + maxMs;
  for (let i = 0; Date.now() < stop; i++) {
    if (client.isEnded) return true;
    if (!client.socket.destroyed) client.sendRaw(bytes[i % bytes.length]);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return client.isEnded;
}

test('a command line dripped one byte at a time must still be complete within the deadline (421, closed)', async () => {
  const server = await start({ idleTimeoutSeconds: 1 });
  const client = server.track(await connect(server.port));
  assert.equal((await client.readReply()).code, 220);
  // A byte every 200 ms: an idle timer that restarts at every byte would never fire.
  const closedWhileDripping = await drip(client, 'NOOP and on and on ', 200, 8000);
  assert.ok(closedWhileDripping, 'the server hung up while the client was still sending');
  const rest = client.rest();
  assert.match(rest, /^421 4\.4\.2 /m);
});

test('a whole session has a deadline, however busy the client keeps it', async () => {
  const server = await start({ sessionSeconds: 1 });
  const client = server.track(await connect(server.port));
  assert.equal((await client.readReply()).code, 220);
  let closed = false;
  const stop = Date.now() + 8000;
  while (!closed && Date.now() < stop) {
    client.send('NOOP');
    const reply = await client.readReply().catch(() => null);
    if (!reply || reply.code === 421) closed = true;
    else assert.equal(reply.code, 250);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(closed, 'the session was ended while the client was still busy');
});

/**
 * A client that writes `total` bytes of `command` lines and never reads a
 * reply. Resolves 'drained' if the server took every byte, 'closed' if the
 * server hung up first.
 */
async function floodWithoutReading(port: number, command: string, total: number): Promise<'drained' | 'closed'> {
  const socket = await openSocket(port);
  socket.pause(); // never read: our receive window fills, and the server's replies back up
  socket.on('error', () => {});
  const data = Buffer.alloc(total, command);
  return new Promise((resolve) => {
    socket.once('close', () => resolve('closed'));
    if (socket.write(data)) resolve('drained');
    else socket.once('drain', () => resolve('drained'));
  });
}

for (const [protocol, command] of [
  ['SMTP', 'NOOP\r\n'],
  ['POP3', 'CAPA\r\n'],
  ['IMAP', 'a NOOP\r\n'],
] as const) {
  test(`${protocol}: a client that never reads its replies is not served further and is cut off`, { timeout: 60_000 }, async () => {
    const server = await start({ idleTimeoutSeconds: 1, pop3IdleTimeoutSeconds: 1, imapIdleTimeoutSeconds: 1 });
    const port = protocol === 'SMTP' ? server.port : protocol === 'POP3' ? server.server.pop3.ports.pop3 : server.server.imap.ports.imap;
    // 32 MB of commands is more than the kernel's socket buffers hold, so the
    // write can only drain if the server reads (and answers) all of them.
    const outcome = await floodWithoutReading(port, command, 32 * 1024 * 1024);
    assert.equal(outcome, 'closed', 'the server stopped reading and hung up instead of queueing every reply');
    // The server itself is fine.
    const next = server.track(await connect(port));
    assert.match((await next.readLine()) ?? '', { SMTP: /^220 /, POP3: /^\+OK /, IMAP: /^\* OK / }[protocol]);
  });
}
