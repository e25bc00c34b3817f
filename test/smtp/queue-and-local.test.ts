// One message, local and remote recipients: the mbox copies and the
// outbound queue file are written as one delivery. What RCPT accepts, the
// queue can carry (a quoted local part with a space included), and a reply
// of 4xx after DATA leaves no copy anywhere, so the client's retry delivers
// exactly one. Real server, real loopback sockets, real files.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSession, transaction } from '../helpers/smtp-client.ts';
import type { SmtpClient, SmtpReply } from '../helpers/smtp-client.ts';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { parseQueueEnvelope, queueDir } from '../../src/queue/queue-file.ts';
import type { QueueEnvelope } from '../../src/queue/queue-file.ts';

const PLAIN = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

async function serverFor(t: TestContext): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
    // Submission in clear from loopback, so the test needs no TLS client.
    config: { auth: { allowPlaintextOnLoopback: true }, limits: { lockTimeoutSeconds: 1 } },
  });
  t.after(() => server.close());
  return server;
}

/** A logged-in submission session (mail for other domains needs a login). */
async function submission(server: TestServer): Promise<SmtpClient> {
  const client = server.track(await openSession(server.server.smtp.ports.submission));
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
  return client;
}

async function send(client: SmtpClient, to: string[], body: string): Promise<{ final: SmtpReply; rcpt: number[] }> {
  const result = await transaction(client, { from: 'jjordan@localhost', to, data: `Subject: test\n\n${body}` });
  return { final: result.final, rcpt: result.rcpt.map((r) => r.code) };
}

/** The envelopes of the queue files the relay would see (queue/<id>.msg). */
async function queued(server: TestServer): Promise<QueueEnvelope[]> {
  const names = (await readdir(queueDir(server.dataDir))).filter((n) => n.endsWith('.msg'));
  return Promise.all(names.map(async (n) => parseQueueEnvelope(await readFile(join(queueDir(server.dataDir), n))).envelope));
}

async function queueTmpFiles(server: TestServer): Promise<string[]> {
  return readdir(join(queueDir(server.dataDir), 'tmp')).catch(() => []);
}

test('a quoted local part with a space: RCPT 250, DATA 250, queued as given, the local copy stored once', async (t) => {
  const server = await serverFor(t);
  const client = await submission(server);
  const { final, rcpt } = await send(client, ['"john smith"@example.net', 'ana@localhost'], 'hello john\n');
  assert.deepEqual(rcpt, [250, 250]);
  assert.equal(final.code, 250, final.lines.join(' '));
  const [envelope, ...more] = await queued(server);
  assert.equal(more.length, 0);
  // The relay will say RCPT TO:<"john smith"@example.net>, as the client did.
  assert.deepEqual(envelope.to, ['"john smith"@example.net']);
  assert.equal((await server.messages('ana')).length, 1);
  assert.deepEqual(await queueTmpFiles(server), []);
});

test('quoted local parts for local recipients: "jjordan" is jjordan (as Postfix), "john smith" is refused at RCPT', async (t) => {
  const server = await serverFor(t);
  const client = await submission(server);
  const { final, rcpt } = await send(client, ['"jjordan"@localhost', '"john smith"@localhost'], 'quoted\n');
  assert.deepEqual(rcpt, [250, 550]);
  assert.equal(final.code, 250);
  const stored = await server.messages('jjordan');
  assert.equal(stored.length, 1);
  assert.match(stored[0].content.toString(), /\tfor <jjordan@localhost>;/, 'the address as delivered: unquoted');
});

test('the queue cannot be written: 451 and no local copy; once it can, the retry delivers exactly one', async (t) => {
  const server = await serverFor(t);
  const client = await submission(server);
  // A file where queue/tmp should be: creating the queue file fails (as on a
  // broken disk; a permission change would not stop root, who runs the tests).
  const blocker = join(queueDir(server.dataDir), 'tmp');
  await rm(blocker, { recursive: true, force: true });
  await mkdir(queueDir(server.dataDir), { recursive: true });
  await writeFile(blocker, 'not a directory');

  const to = ['friend@example.net', 'ana@localhost'];
  const refused = await send(client, to, 'try me\n');
  assert.equal(refused.final.code, 451);
  assert.deepEqual(await server.messages('ana'), [], 'no local copy of a message answered 451');
  assert.deepEqual(await queued(server), []);

  await unlink(blocker);
  assert.equal((await send(client, to, 'try me\n')).final.code, 250);
  assert.equal((await server.messages('ana')).length, 1, 'exactly one copy after the retry');
  assert.equal((await queued(server)).length, 1);
  assert.deepEqual(await queueTmpFiles(server), []);
});

test('a local mailbox that cannot be written: 451 and no queue file; the retry queues exactly one', async (t) => {
  const server = await serverFor(t);
  const client = await submission(server);
  const lock = server.mboxPath('ana') + '.lock';
  await writeFile(lock, `${process.pid}\n`); // held by a live process: delivery gives up after lockTimeoutSeconds

  const to = ['friend@example.net', 'ana@localhost'];
  assert.equal((await send(client, to, 'blocked\n')).final.code, 451);
  assert.deepEqual(await queued(server), [], 'no remote copy of a message answered 451');
  assert.deepEqual(await queueTmpFiles(server), []);

  await unlink(lock);
  assert.equal((await send(client, to, 'blocked\n')).final.code, 250);
  assert.equal((await queued(server)).length, 1, 'exactly one queue file after the retry');
  assert.equal((await server.messages('ana')).length, 1);
});
