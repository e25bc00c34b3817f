// Graceful shutdown (what SIGTERM does): stop accepting, tell idle sessions
// 421 4.3.2 at once, let a message in flight finish and get its 250, and
// cut off whatever is still running after shutdownGraceSeconds.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, openSession } from '../helpers/smtp-client.ts';
import type { SmtpClient } from '../helpers/smtp-client.ts';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';

const SHUTTING_DOWN: [number, string] = [421, '4.3.2 localhost Service shutting down, try again later'];

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer(options);
  t.after(() => server.close());
  return server;
}

async function startData(server: TestServer): Promise<SmtpClient> {
  const client = server.track(await openSession(server.port));
  assert.equal((await client.command('MAIL FROM:<alice@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  return client;
}

test('an idle session gets 421 4.3.2 at once, and new connections are refused', { timeout: 60_000 }, async (t) => {
  // A grace period longer than the test's timeout: if the idle session held
  // the shutdown, stop() would not return and the test would time out.
  const server = await serverFor(t, { config: { limits: { shutdownGraceSeconds: 3600 } } });
  const idle = server.track(await openSession(server.port));
  await server.stop();
  const reply = await idle.readReply();
  assert.deepEqual([reply.code, reply.lines[0]], SHUTTING_DOWN);
  await idle.waitClosed();
  await assert.rejects(connect(server.port), /ECONNREFUSED/);
});

test('a session in the middle of DATA finishes, gets 250, then 421 and the close', async (t) => {
  const server = await serverFor(t, { config: { limits: { shutdownGraceSeconds: 5 } } });
  const idle = server.track(await openSession(server.port));
  const client = await startData(server);
  await client.sendRawAndFlush('Subject: in flight\r\n\r\nfirst half\r\n');

  let stopped = false;
  const stopping = server.stop().then(() => (stopped = true));
  assert.deepEqual([(await idle.readReply()).code], [421], 'the idle one is told at once');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(stopped, false, 'the shutdown waits for the transaction');

  client.sendRaw('second half\r\n.\r\n');
  const final = await client.readReply();
  assert.equal(final.code, 250);
  const after = await client.readReply();
  assert.deepEqual([after.code, after.lines[0]], SHUTTING_DOWN);
  await client.waitClosed();
  await stopping;

  const messages = await server.messages('jjordan');
  assert.equal(messages.length, 1);
  assert.match(messages[0].content.toString(), /\n\nfirst half\nsecond half\n$/);
});

test('a QUIT pipelined after the final dot is answered normally during shutdown', async (t) => {
  const server = await serverFor(t, { config: { limits: { shutdownGraceSeconds: 5 } } });
  const client = await startData(server);
  await client.sendRawAndFlush('Subject: last\r\n\r\nbody\r\n');
  const stopping = server.stop();
  client.sendRaw('.\r\nQUIT\r\n');
  assert.equal((await client.readReply()).code, 250);
  assert.equal((await client.readReply()).code, 221);
  await client.waitClosed();
  await stopping;
  assert.equal((await server.messages('jjordan')).length, 1);
});

test('a transaction still running after shutdownGraceSeconds is cut off and nothing is stored', async (t) => {
  const server = await serverFor(t, { config: { limits: { shutdownGraceSeconds: 1 } } });
  const client = await startData(server);
  await client.sendRawAndFlush('Subject: too slow\r\n\r\nnever finished\r\n');
  // The grace period itself (a transaction is not cut at once) is the
  // test above; here: it does end, the session is cut without a 250.
  await server.stop();
  assert.equal(await client.readLine(), null, 'closed without a reply to the unfinished DATA');
  await client.waitClosed();
  assert.deepEqual(await server.messages('jjordan'), []);
  assert.deepEqual(await server.tmpFiles(), []);
});
