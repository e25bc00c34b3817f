// The listeners (src/wire/listener.ts) over real loopback sockets: ports
// bound before they serve (nothing is read meanwhile), implicit TLS counted
// from the TCP accept with a handshake deadline, refusals that free their
// socket at once, and the per-client count (connection-limits.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { bindPorts, startListeners } from '../../src/wire/listener.ts';
import { ConnectionLimits } from '../../src/wire/connection-limits.ts';
import { createLogger } from '../../src/log.ts';
import { startTestServer, eventually } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { LineClient, connect, openSocket } from '../helpers/smtp-client.ts';

const REFUSAL = '421 4.7.0 localhost Too many connections, try again later';

async function serverWith(t: { after: (fn: () => Promise<void>) => void }, limits: Record<string, number>): Promise<TestServer> {
  const server = await startTestServer({ config: { limits } });
  t.after(() => server.close());
  return server;
}

/** A TCP connection that is kept open and never starts a TLS handshake. */
async function silentSocket(server: TestServer, port: number): Promise<Socket> {
  return server.track(await openSocket(port));
}

test('ports bound before serving: connections wait unread, then are served in order', async (t) => {
  const bound = await bindPorts([{ name: 'test', port: 0 }], '127.0.0.1', { maxConnections: 2 });
  const port = bound.ports.test;
  const clients = [new LineClient(await openSocket(port)), new LineClient(await openSocket(port))];
  t.after(() => Promise.all(clients.map((client) => client.socket.destroy())));
  clients[0].send('sent before the server served'); // held by the kernel, read later
  // A third one, beyond the bounded queue, is closed.
  const extra = new LineClient(await openSocket(port));
  assert.equal(await extra.readLine(), null, 'closed without a word');

  const seen: string[] = [];
  const listeners = await startListeners([{ name: 'test', port, implicitTls: false }], {
    component: 'test',
    host: '127.0.0.1',
    tls: null,
    limits: { maxConnections: 10, maxConnectionsPerIp: 10, idleTimeoutSeconds: 5, sessionSeconds: 60, shutdownGraceSeconds: 1, tlsHandshakeSeconds: 5 },
    maxLineBytes: 100,
    log: createLogger({ quiet: true }),
    refusal: 'no\r\n',
    bound,
    session: async ({ conn }) => {
      conn.send('hello\r\n');
      const line = await conn.readLine();
      if (line.kind === 'line') seen.push(line.text);
      conn.send('bye\r\n');
      conn.end();
    },
  });
  t.after(() => listeners.close());
  assert.equal(listeners.ports.test, port);
  assert.equal(await clients[0].readLine(), 'hello');
  assert.equal(await clients[0].readLine(), 'bye');
  assert.deepEqual(seen, ['sent before the server served'], 'the bytes sent early were kept for the session');
  assert.equal(await clients[1].readLine(), 'hello', 'the second waiting connection is served too');
});

test('implicit TLS: a connection counts from the TCP accept, before any handshake', async (t) => {
  const server = await serverWith(t, { maxConnections: 2, maxConnectionsPerIp: 10 });
  const smtps = server.server.smtp.ports.smtps;
  await silentSocket(server, smtps);
  await silentSocket(server, smtps);
  // The two silent sockets hold both slots of the SMTP listeners.
  await eventually(async () => {
    const plain = await connect(server.port);
    const reply = await plain.readReply();
    plain.socket.destroy();
    return reply.code === 421;
  }, 'a plain connection to be refused while two TLS handshakes wait');
});

test('implicit TLS: a handshake that never comes is cut off and frees its slot', async (t) => {
  const server = await serverWith(t, { maxConnections: 1, maxConnectionsPerIp: 10, tlsHandshakeSeconds: 1 });
  const silent = new LineClient(await silentSocket(server, server.server.smtp.ports.smtps));
  const refused = await connect(server.port);
  assert.equal((await refused.readReply()).code, 421, 'the slot is held during the handshake');
  assert.equal(await silent.readLine(3000), null, 'the server closed the silent connection');
  const accepted = server.track(await connect(server.port));
  assert.equal((await accepted.readReply()).code, 220, 'the slot was given back');
  assert.ok(server.logLines.some((line) => / tls-handshake-failed ip=127\.0\.0\.1 listener=smtps reason=timeout/.test(line)));
});

test('implicit TLS: a failed handshake never becomes a session and frees its slot', async (t) => {
  const server = await serverWith(t, { maxConnections: 1, maxConnectionsPerIp: 10 });
  const confused = new LineClient(await silentSocket(server, server.server.smtp.ports.smtps));
  confused.send('EHLO i-forgot-the-tls.example');
  assert.equal(await confused.readLine(), null, 'closed');
  await eventually(async () => {
    const plain = await connect(server.port);
    const code = (await plain.readReply()).code;
    plain.socket.destroy();
    return code === 220;
  }, 'the slot to be free again');
  assert.ok(!server.logLines.some((line) => / connect .*listener=smtps/.test(line)), 'no session started');

  // And a real TLS client still gets its session.
  const secure = tlsConnect({ port: server.server.smtp.ports.smtps, host: '127.0.0.1', ca: server.server.tls.certPem, servername: 'localhost' });
  t.after(() => secure.destroy());
  const client = new LineClient(secure);
  assert.match((await client.readLine()) ?? '', /^220 /);
});

test('a refused connection is answered and closed at once, even by a client that keeps its side open', async (t) => {
  const server = await serverWith(t, { maxConnections: 1, maxConnectionsPerIp: 10 });
  server.track(await connect(server.port));
  // allowHalfOpen: the client does not close its side when the server does.
  const socket = server.track(netConnect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true }));
  const client = new LineClient(socket);
  assert.equal(await client.readLine(), REFUSAL);
  assert.equal(await client.readLine(), null, 'the server closed its side');
  // The server's socket is gone entirely: what we send now is answered by a reset.
  let reset = false;
  socket.on('error', () => (reset = true));
  socket.on('close', () => (reset = true));
  await eventually(() => {
    if (!socket.destroyed) socket.write('QUIT\r\n');
    return reset;
  }, 'a reset from the closed server socket');
});

test('per-client limits: IPv6 clients of one /64 count as one client, IPv4 addresses apart', () => {
  const limits = new ConnectionLimits({ maxConnections: 10, maxConnectionsPerIp: 2 });
  const first = limits.admit('2001:db8:1:2::10');
  assert.ok(first);
  assert.ok(limits.admit('2001:db8:1:2:ffff::99'));
  assert.equal(limits.admit('2001:db8:1:2::abcd'), null, 'a third address in the same /64 is refused');
  assert.ok(limits.admit('2001:db8:1:3::10'), 'the next /64 is another client');
  assert.ok(limits.admit('192.0.2.1'));
  assert.ok(limits.admit('::ffff:192.0.2.1'), 'the same IPv4 client on a dual-stack socket');
  assert.equal(limits.admit('192.0.2.1'), null);
  assert.ok(limits.admit('192.0.2.2'));
  first();
  first(); // twice is harmless
  assert.ok(limits.admit('2001:db8:1:2::abcd'), 'a slot of that /64 was given back');
  assert.equal(limits.count, 6);
});

test('the total limit holds across clients', () => {
  const limits = new ConnectionLimits({ maxConnections: 2, maxConnectionsPerIp: 10 });
  assert.ok(limits.admit('192.0.2.1'));
  assert.ok(limits.admit('192.0.2.2'));
  assert.equal(limits.admit('192.0.2.3'), null);
});
