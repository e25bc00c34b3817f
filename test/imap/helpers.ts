// Shared set-up for the IMAP tests: a test server with logins in clear from
// loopback, a logged-in client, and deliveries over real SMTP.

import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { connectImap } from '../helpers/imap-client.ts';
import type { ImapClient } from '../helpers/imap-client.ts';
import { sendMail } from '../helpers/smtp-client.ts';

export async function imapServer(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
    ...options,
    config: { ...options.config, auth: { allowPlaintextOnLoopback: true } },
  });
  t.after(() => server.close());
  return server;
}

/** A client logged in as `user` (INBOX selected unless `select` is null). */
export async function loggedIn(server: TestServer, user = 'jjordan', password = 'secret', select: string | null = 'INBOX'): Promise<ImapClient> {
  const client = server.track(await connectImap(server.server.imap.ports.imap));
  await client.greeting();
  assert.equal((await client.command(`LOGIN ${user} ${password}`)).status, 'OK');
  if (select) assert.equal((await client.command(`SELECT ${select}`)).status, 'OK');
  return client;
}

export async function deliver(server: TestServer, subject: string, to = 'jjordan@localhost', body = `This is ${subject}.\r\n`): Promise<void> {
  const result = await sendMail(server.port, { from: 'sender@example.net', to: [to], data: `Subject: ${subject}\r\nFrom: Sender <sender@example.net>\r\n\r\n${body}` });
  assert.equal(result.final.code, 250);
}

/** `[uid, subject]` of every message, as FETCH reports them. */
export async function uidsAndSubjects(client: ImapClient): Promise<[number, string][]> {
  const reply = await client.command('UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (Subject)])');
  assert.equal(reply.status, 'OK', reply.text);
  return reply.untagged
    .filter((line) => / FETCH /.test(line))
    .map((line) => [Number(/UID (\d+)/.exec(line)![1]), /Subject: ([^\r\n]*)/.exec(line)?.[1] ?? ''] as [number, string]);
}

export async function uidValidity(client: ImapClient, mailbox = 'INBOX'): Promise<number> {
  const reply = await client.command(`STATUS ${mailbox} (UIDVALIDITY)`);
  return Number(/UIDVALIDITY (\d+)/.exec(reply.untagged[0])![1]);
}
