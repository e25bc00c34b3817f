// RETR one command at a time with read-ahead (pop3/read-ahead.ts): while the
// client reads message n the server makes n + 1 ready. What it must never
// do: answer with bytes other than the message's, answer for a message
// marked deleted or expunged meanwhile, hold a prepared answer past its
// freshness, or hold more than its budget across sessions, or anything
// after a session has ended.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestServer, eventually } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { sendMail } from '../helpers/smtp-client.ts';
import { openPop3 } from '../helpers/pop3-client.ts';
import type { Pop3Client } from '../helpers/pop3-client.ts';
import { openMailbox } from '../../src/store/mailbox.ts';
import { READ_AHEAD_BYTES, readAheadBytes } from '../../src/pop3/read-ahead.ts';

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({ trace: false, ...options, config: { auth: { allowPlaintextOnLoopback: true } } });
  t.after(() => server.close());
  return server;
}

async function deliver(server: TestServer, subject: string, body = `Body of ${subject}.\r\n`, to = 'jjordan@localhost'): Promise<void> {
  const data = `Subject: ${subject}\r\n\r\n${body}`;
  const result = await sendMail(server.port, { from: 'sender@example.org', to: [to], data });
  assert.equal(result.final.code, 250, `delivery of ${subject}`);
}

async function login(server: TestServer, user = 'jjordan', password = 'secret'): Promise<Pop3Client> {
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await client.userPass(user, password)).ok, true, `login of ${user}`);
  return client;
}

/** The message as the mbox holds it, with CRLF line ends: what RETR must give (RFC 1939 3). */
async function storedAsSent(server: TestServer, n: number, account = 'jjordan'): Promise<Buffer> {
  const stored = (await server.messages(account))[n - 1].content;
  return Buffer.from(stored.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

test('one command at a time, the next message is made ready after each RETR: every message comes byte for byte, and QUIT lets go of it', async (t) => {
  const server = await serverFor(t);
  for (let i = 1; i <= 4; i++) await deliver(server, `message ${i}`, `Line one.\r\n.a line with a dot\r\nFrom the desk of ${i}\r\n`);
  const client = await login(server);
  assert.equal(readAheadBytes(), 0, 'nothing made ready before the first RETR');
  for (let n = 1; n <= 4; n++) {
    const message = await client.retr(n);
    assert.equal(message.ok, true);
    assert.deepEqual(message.bytes, await storedAsSent(server, n), `message ${n}`);
    assert.equal(message.bytes.length, message.size, `message ${n}: as many octets as announced`);
    // The server made the next one ready while this one went out (the last has none after it).
    if (n < 4) assert.ok(readAheadBytes() > 0, `message ${n + 1} made ready`);
    else assert.equal(readAheadBytes(), 0);
  }
  await client.retr(2); // prepares message 3 again
  assert.ok(readAheadBytes() > 0);
  assert.equal((await client.quit()).ok, true);
  await eventually(() => readAheadBytes() === 0, 'QUIT to let go of the prepared message');
});

test('a message made ready and then marked deleted, or expunged by an IMAP session, gets -ERR, not the prepared answer', async (t) => {
  const server = await serverFor(t);
  for (let i = 1; i <= 4; i++) await deliver(server, `message ${i}`);
  const client = await login(server);
  assert.equal((await client.retr(1)).ok, true); // message 2 made ready
  assert.equal((await client.command('DELE 2')).ok, true);
  const deleted = await client.command('RETR 2');
  assert.equal(deleted.ok, false);
  assert.match(deleted.text, /No such message|deleted/i);

  assert.equal((await client.retr(3)).ok, true); // message 4 made ready
  const imap = await openMailbox(server.mboxPath('jjordan'));
  try {
    const uid4 = imap.snapshot().uids[3];
    assert.deepEqual(await imap.expunge([uid4]), [uid4]);
  } finally {
    await imap.close();
  }
  const expunged = await client.command('RETR 4');
  assert.equal(expunged.ok, false);
  assert.match(expunged.text, /No such message/);
  assert.equal((await client.command('NOOP')).ok, true, 'the session goes on');
});

test('nothing is read ahead for a client that pipelines, even when it later waits for a reply', async (t) => {
  const server = await serverFor(t);
  for (let i = 1; i <= 3; i++) await deliver(server, `message ${i}`);
  const client = await login(server);
  client.sendRaw('RETR 1\r\nNOOP\r\n'); // NOOP is there while RETR 1 is answered: a client that pipelines
  assert.equal((await client.readResponse()).ok, true);
  assert.deepEqual(await client.readMultilineBytes(), await storedAsSent(server, 1));
  assert.equal((await client.readResponse()).ok, true);
  assert.equal(readAheadBytes(), 0, 'nothing made ready');
  assert.equal((await client.retr(2)).ok, true); // one at a time now
  assert.equal(readAheadBytes(), 0, 'nothing made ready for it, ever');
  assert.deepEqual((await client.retr(3)).bytes, await storedAsSent(server, 3));
});

test('a read-ahead that fails its check (the message changed in place) leaves the session as it was; the RETR says -ERR', async (t) => {
  const server = await serverFor(t);
  for (let i = 1; i <= 3; i++) await deliver(server, `message ${i}`, `the body of message ${i}\r\n`);
  const client = await login(server);
  const mbox = server.mboxPath('jjordan');
  const before = await readFile(mbox);
  await writeFile(mbox, Buffer.from(before.toString('latin1').replace('body of message 2', 'BODY OF MESSAGE 2'), 'latin1'));
  assert.deepEqual((await client.retr(1)).bytes, await storedAsSent(server, 1));
  assert.equal(readAheadBytes(), 0, 'nothing made ready from a message that fails its check');
  const changed = await client.command('RETR 2');
  assert.equal(changed.ok, false);
  assert.match(changed.text, /^\[SYS\/TEMP\] |^No such message/); // (the failed check had the index looked at again)
  assert.equal((await client.command('NOOP')).ok, true, 'the session goes on');
});

test('a prepared answer is given only while fresh: a message rewritten in place after it was made ready is checked again by a later RETR', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'one');
  await deliver(server, 'two', 'the second message\r\n');
  const client = await login(server);
  const original = await storedAsSent(server, 2);
  assert.equal((await client.retr(1)).ok, true); // message 2 made ready, read and checked now
  // Another program changes message 2 in place, keeping every size.
  const mbox = server.mboxPath('jjordan');
  const before = await readFile(mbox);
  const after = Buffer.from(before.toString('latin1').replace('the second message', 'THE SECOND MESSAGE'), 'latin1');
  assert.equal(after.length, before.length);
  await writeFile(mbox, after);
  // Within a second: the message as it was checked when read (never other bytes).
  const soon = await client.retr(2);
  assert.deepEqual(soon.bytes, original);
  // The file as it was; message 2 made ready again by RETR 1, then changed
  // again and left past its freshness: read again, so the change is seen.
  await writeFile(mbox, before);
  assert.equal((await client.retr(1)).ok, true);
  assert.ok(readAheadBytes() > 0, 'message 2 made ready');
  await writeFile(mbox, after);
  await sleep(1100);
  const late = await client.command('RETR 2');
  assert.equal(late.ok, false, 'a rewritten message is not served from an old read');
  assert.match(late.text, /^\[SYS\/TEMP\] /);
});

test('the read-ahead of all sessions together stays within READ_AHEAD_BYTES, and a session that ends in any way lets go of its part', async (t) => {
  const accounts = Array.from({ length: 12 }, (_, i) => ({ name: `user${i}`, password: `pw${i}` }));
  const server = await serverFor(t, { accounts });
  const body = `${'x'.repeat(76)}\r\n`.repeat(1300); // about 100 KB: still read at once (up to 128 KiB)
  for (const { name } of accounts) {
    await deliver(server, `first for ${name}`, 'short\r\n', `${name}@localhost`);
    await deliver(server, `second for ${name}`, body, `${name}@localhost`);
  }
  const clients: Pop3Client[] = [];
  for (const { name, password } of accounts) {
    const client = await login(server, name, password);
    clients.push(client);
    assert.equal((await client.retr(1)).ok, true);
    assert.ok(readAheadBytes() <= READ_AHEAD_BYTES, `${readAheadBytes()} bytes held after ${name}`);
  }
  const messageBytes = body.length + 100;
  assert.ok(readAheadBytes() > READ_AHEAD_BYTES - 2 * messageBytes, `the budget is used: ${readAheadBytes()} bytes held`);
  // Every session gets its second message right, made ready or not.
  for (const [i, client] of clients.entries()) {
    const second = await client.retr(2);
    assert.deepEqual(second.bytes, await storedAsSent(server, 2, accounts[i].name), `second message of ${accounts[i].name}`);
    assert.equal((await client.retr(1)).ok, true); // makes message 2 ready again, where the budget allows
  }
  assert.ok(readAheadBytes() > 0);
  // Half leave with QUIT, half vanish.
  for (const [i, client] of clients.entries()) {
    if (i % 2 === 0) await client.quit();
    else client.destroy();
  }
  await eventually(() => readAheadBytes() === 0, 'every session to let go of its prepared message');
});
