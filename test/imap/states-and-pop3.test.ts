// IMAP over real sockets, beside what session.test.ts covers: AUTHENTICATE
// LOGIN (with and without an initial response, SASL-IR RFC 4959), commands
// in the wrong state (RFC 3501 3, 6: BAD, and the state is unchanged), and
// IMAP and POP3 on one account: a POP3 QUIT's deletion reaches a selected
// INBOX as EXPUNGE (RFC 3501 7.4.1), and both share one login throttle.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn, deliver, uidsAndSubjects } from './helpers.ts';
import { connectImap } from '../helpers/imap-client.ts';
import type { ImapClient } from '../helpers/imap-client.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { openPop3 } from '../helpers/pop3-client.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');

async function open(server: TestServer): Promise<ImapClient> {
  const client = server.track(await connectImap(server.server.imap.ports.imap));
  await client.greeting();
  return client;
}

test('AUTHENTICATE LOGIN: Username: and Password: challenges, or the username as an initial response (SASL-IR)', async (t) => {
  const server = await imapServer(t);
  const client = await open(server);
  client.sendRaw('a1 AUTHENTICATE LOGIN\r\n');
  assert.equal(await client.readLine(), `+ ${b64('Username:')}`);
  client.sendRaw(`${b64('jjordan')}\r\n`);
  assert.equal(await client.readLine(), `+ ${b64('Password:')}`);
  client.sendRaw(`${b64('secret')}\r\n`);
  const done = await client.readTagged('a1');
  assert.equal(done.status, 'OK');
  assert.match(done.text, /^\[CAPABILITY IMAP4rev1 /);
  assert.equal((await client.command('SELECT INBOX')).status, 'OK', 'authenticated');

  const withInitial = await open(server);
  withInitial.sendRaw(`a2 AUTHENTICATE LOGIN ${b64('ana')}\r\n`);
  assert.equal(await withInitial.readLine(), `+ ${b64('Password:')}`, 'the username came with the command');
  withInitial.sendRaw(`${b64('ana-pw')}\r\n`);
  assert.equal((await withInitial.readTagged('a2')).status, 'OK');

  const wrong = await open(server);
  wrong.sendRaw(`a3 AUTHENTICATE LOGIN ${b64('jjordan')}\r\n`);
  assert.equal(await wrong.readLine(), `+ ${b64('Password:')}`);
  wrong.sendRaw(`${b64('nope')}\r\n`);
  const refused = await wrong.readTagged('a3');
  assert.equal(refused.status, 'NO');
  assert.match(refused.text, /^\[AUTHENTICATIONFAILED\] /);
  assert.equal((await wrong.command('LIST "" "*"')).status, 'BAD', 'still not authenticated');
});

test('each state refuses the commands of another with BAD and stays as it was (RFC 3501 3)', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxErrors: 100 } } });
  await deliver(server, 'one');
  const client = await open(server);
  // Not authenticated: neither mailbox nor message commands.
  for (const command of ['SELECT INBOX', 'LIST "" "*"', 'APPEND INBOX {1+}\r\nx', 'FETCH 1 FLAGS', 'CLOSE', 'UID FETCH 1 FLAGS']) {
    const reply = await client.command(command);
    assert.equal(reply.status, 'BAD', command);
    assert.deepEqual(reply.untagged, [], command);
  }
  assert.match((await client.command('SELECT INBOX')).text, /needs a login first/);
  assert.equal((await client.command('CAPABILITY')).status, 'OK', 'any-state commands work in every state');
  // Authenticated: no login again, no message commands before a SELECT.
  assert.equal((await client.command('LOGIN jjordan secret')).status, 'OK');
  for (const command of ['LOGIN jjordan secret', 'AUTHENTICATE PLAIN', 'FETCH 1 FLAGS', 'STORE 1 +FLAGS (\\Seen)', 'SEARCH ALL', 'EXPUNGE', 'CHECK', 'UNSELECT', 'COPY 1 Trash', 'UID MOVE 1 Trash']) {
    const reply = await client.command(command);
    assert.equal(reply.status, 'BAD', command);
  }
  assert.match((await client.command('FETCH 1 FLAGS')).text, /needs a selected mailbox/);
  // Selected: authenticated-state commands still work; not-authenticated ones do not.
  assert.equal((await client.command('SELECT INBOX')).status, 'OK');
  assert.equal((await client.command('STARTTLS')).status, 'BAD');
  assert.equal((await client.command('LOGIN ana ana-pw')).status, 'BAD');
  assert.equal((await client.command('LIST "" INBOX')).status, 'OK');
  assert.equal((await client.command('FETCH 1 FLAGS')).status, 'OK');
  assert.deepEqual((await uidsAndSubjects(client)).map(([, subject]) => subject), ['one'], 'still jjordan, INBOX still selected');
  // Logout: nothing after BYE.
  assert.equal((await client.command('LOGOUT')).status, 'OK');
  await client.waitClosed();
});

test('a message a POP3 client deletes (DELE, QUIT) shows as EXPUNGE to an IMAP session on the INBOX at its next NOOP', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['one', 'two', 'three']) await deliver(server, subject);
  const imap = await loggedIn(server);
  const pop = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.ok((await pop.userPass('jjordan', 'secret')).ok);
  assert.ok((await pop.command('DELE 2')).ok);
  // Before QUIT nothing is deleted (RFC 1939 6: deletion happens in the UPDATE state).
  assert.deepEqual((await imap.command('NOOP')).untagged.filter((line) => /EXPUNGE/.test(line)), []);
  assert.ok((await pop.quit()).ok);
  const fetch = await imap.command('FETCH 1:* FLAGS');
  assert.deepEqual(fetch.untagged.map((line) => line.split(' ')[0]), ['1', '3'], 'not during FETCH (RFC 3501 7.4.1): the numbers stay put');
  assert.deepEqual([fetch.status, /^\[EXPUNGEISSUED\]/.test(fetch.text)], ['NO', true], 'message 2 is gone, and FETCH says so');
  const noop = await imap.command('NOOP');
  assert.deepEqual(noop.untagged.filter((line) => /EXPUNGE/.test(line)), ['2 EXPUNGE']);
  assert.deepEqual((await uidsAndSubjects(imap)).map(([, subject]) => subject), ['one', 'three']);
});

test('a failed POP3 login delays the next IMAP login from the same address: one throttle for both', async (t) => {
  // The throttle's clock stands still, so the penalty cannot wear off however
  // slowly the test runs: what is observed does not depend on timing.
  const frozen = Date.now();
  const server = await imapServer(t, { throttle: { baseDelayMs: 20, maxDelayMs: 40, now: () => frozen } });
  const delayed = () => server.logLines.filter((line) => / auth-delayed /.test(line)).length;
  const fresh = await open(server);
  assert.equal((await fresh.command('LOGIN jjordan secret')).status, 'OK');
  assert.equal(delayed(), 0, 'no penalty before any failure');
  const pop = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await pop.userPass('jjordan', 'guess')).ok, false);
  const imap = await open(server);
  const login = await imap.command('LOGIN jjordan secret');
  assert.equal(login.status, 'OK', 'delayed, never refused');
  const lines = server.logLines.filter((line) => / auth-delayed /.test(line));
  assert.equal(lines.length, 1, server.logLines.join('\n'));
  assert.ok(server.logLines.some((line) => /^\S+ pop3\[\w+\] auth-failed ip=127\.0\.0\.1/.test(line)), 'POP3 earned the penalty');
  assert.match(lines[0], /^\S+ imap\[\w+\] auth-delayed ip=127\.0\.0\.1 delayMs=\d+/, 'the IMAP login waited it out');
});
