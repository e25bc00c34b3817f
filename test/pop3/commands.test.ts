// The RFC 1939 commands one by one, over real loopback sockets against the
// whole server: USER/PASS, STAT, LIST, RETR, TOP, UIDL, DELE, RSET, NOOP,
// QUIT, the state rules, and the failure paths (wrong state, unknown
// command, over-long line, too many errors). Mail gets into the maildrop the
// way it does in real life: over SMTP.
//
// These tests log in in clear from loopback (config.auth.allowPlaintextOnLoopback);
// TLS and the refusal of passwords in clear are in tls-auth.test.ts.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { sendMail } from '../helpers/smtp-client.ts';
import { connectPop3, openPop3 } from '../helpers/pop3-client.ts';
import type { Pop3Client } from '../helpers/pop3-client.ts';

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    trace: true,
    ...options,
    config: { ...options.config, auth: { allowPlaintextOnLoopback: true } },
  });
  t.after(() => server.close());
  return server;
}

async function deliver(server: TestServer, data: string, to = 'jjordan@localhost'): Promise<void> {
  const result = await sendMail(server.port, { from: 'sender@example.org', to: [to], data });
  assert.equal(result.final.code, 250, `delivery: ${result.final.lines.join(' ')}`);
}

/** `count` small messages, numbered in their Subject and body. */
async function deliverNumbered(server: TestServer, count: number): Promise<void> {
  for (let i = 1; i <= count; i++) {
    await deliver(server, `Subject: message ${i}\r\n\r\nThis is message ${i}.\r\n${'x'.repeat(i * 10)}\r\n`);
  }
}

async function login(server: TestServer, user = 'jjordan', password = 'secret'): Promise<Pop3Client> {
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  const reply = await client.userPass(user, password);
  assert.ok(reply.ok, `login: -ERR ${reply.text}`);
  return client;
}

/** The store's LF text as POP3 sends it: CRLF line endings (byte for byte). */
function crlf(lf: Buffer): Buffer {
  return Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
}

/** What each message should look like over POP3, read from the mbox file itself. */
async function expectedMessages(server: TestServer, account = 'jjordan'): Promise<Buffer[]> {
  return (await server.messages(account)).map((m) => crlf(m.content));
}

test('USER/PASS logs in; STAT counts the messages and their octets as RETR delivers them', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.deepEqual(await client.command('USER jjordan'), { ok: true, text: 'Send PASS' });
  const pass = await client.command('PASS secret');
  assert.equal(pass.ok, true);
  assert.match(pass.text, /has 3 messages/);

  const expected = await expectedMessages(server);
  const total = expected.reduce((sum, m) => sum + m.length, 0);
  assert.deepEqual(await client.stat(), { count: 3, octets: total });
  assert.match(pass.text, new RegExp(`\\(${total} octets\\)`));
  assert.deepEqual(await client.command('NOOP'), { ok: true, text: '' });
  const quit = await client.quit();
  assert.equal(quit.ok, true);
  assert.match(quit.text, /0 messages deleted/);
});

test('USER with the full address and any case of the command works; an empty maildrop is 0 0', async (t) => {
  const server = await serverFor(t);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await client.command('user jjordan@localhost')).ok, true);
  assert.equal((await client.command('pass secret')).ok, true);
  assert.deepEqual(await client.stat(), { count: 0, octets: 0 });
  const list = await client.multiline('LIST');
  assert.deepEqual([list.ok, list.lines], [true, []]);
  assert.deepEqual((await client.multiline('UIDL')).lines, []);
  assert.equal((await client.command('RETR 1')).ok, false);
});

test('LIST without an argument lists every message and its size; LIST n one; a bad number is -ERR', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = await login(server);
  const expected = await expectedMessages(server);

  const list = await client.multiline('LIST');
  assert.equal(list.ok, true);
  assert.deepEqual(list.lines, expected.map((m, i) => `${i + 1} ${m.length}`));
  assert.deepEqual(await client.command('LIST 2'), { ok: true, text: `2 ${expected[1].length}` });
  for (const bad of ['4', '0', '-1', 'x', '1x', '99999999999999', '1 2']) {
    const reply = await client.command(`LIST ${bad}`);
    assert.equal(reply.ok, false, `LIST ${bad}`);
  }
  // The errors did not end the session nor change anything.
  assert.equal((await client.stat()).count, 3);
});

test('RETR n sends message n, and only that; RETR of no message is -ERR', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = await login(server);
  const expected = await expectedMessages(server);
  for (const n of [2, 1, 3]) {
    const retr = await client.retr(n);
    assert.equal(retr.ok, true);
    assert.equal(retr.text, `${expected[n - 1].length} octets`);
    assert.deepEqual(retr.bytes, expected[n - 1], `message ${n}`);
    assert.match(retr.bytes.toString(), new RegExp(`^Return-Path: <sender@example\\.org>\\r\\nReceived: from `));
    assert.match(retr.bytes.toString(), new RegExp(`\\r\\nSubject: message ${n}\\r\\n\\r\\nThis is message ${n}\\.\\r\\n`));
  }
  for (const bad of ['0', '4', 'one', '']) assert.equal((await client.command(`RETR ${bad}`)).ok, false, `RETR ${bad}`);
  assert.equal(client.bareLineFeeds, 0, 'every line ended in CRLF');
});

test('the trace shows a RETR\'s status line, never the message text', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'Subject: secret plans\r\n\r\nThe text of the message.\r\n');
  const client = await login(server);
  const retr = await client.retr(1);
  assert.equal(retr.ok, true);
  assert.ok(server.logLines.some((line) => line.endsWith(`S: +OK ${retr.bytes.length} octets`)), 'the status line is traced');
  assert.ok(!server.logLines.some((line) => /secret plans|The text of the message/.test(line) && / S: /.test(line)), 'the message is not');
});

test('DELE marks a message: gone from STAT, LIST and UIDL; RETR, TOP, LIST, DELE of it are -ERR; RSET unmarks', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = await login(server);
  const expected = await expectedMessages(server);
  const uidlBefore = await client.uidl();

  assert.deepEqual(await client.command('DELE 2'), { ok: true, text: 'Message 2 deleted' });
  assert.deepEqual(await client.stat(), { count: 2, octets: expected[0].length + expected[2].length });
  assert.deepEqual((await client.multiline('LIST')).lines, [`1 ${expected[0].length}`, `3 ${expected[2].length}`]);
  assert.deepEqual([...(await client.uidl()).keys()], [1, 3], 'the others keep their numbers');
  for (const command of ['DELE 2', 'RETR 2', 'TOP 2 0', 'LIST 2', 'UIDL 2']) {
    const reply = await client.command(command);
    assert.equal(reply.ok, false, command);
  }
  assert.match((await client.command('DELE 2')).text, /already deleted/);
  assert.deepEqual((await client.retr(3)).bytes, expected[2], 'the others can still be read');

  const rset = await client.command('RSET');
  assert.equal(rset.ok, true);
  assert.deepEqual(await client.stat(), { count: 3, octets: expected.reduce((s, m) => s + m.length, 0) });
  assert.deepEqual(await client.uidl(), uidlBefore);
  assert.deepEqual((await client.retr(2)).bytes, expected[1]);
  assert.equal((await client.command('DELE 2')).ok, true, 'can be marked again');
  assert.equal((await client.command('RSET')).ok, true);
  const quit = await client.quit();
  assert.match(quit.text, /0 messages deleted/);
  assert.equal((await server.messages('jjordan')).length, 3, 'RSET then QUIT removes nothing');
});

test('TOP n 0 is the header and the blank line; TOP n 2 adds two body lines; a larger count gives the whole body', async (t) => {
  const server = await serverFor(t);
  const body = 'line one\r\n.line two starts with a dot\r\nFrom line three\r\nline four\r\n';
  await deliver(server, `Subject: top\r\nX-Long: a\r\n folded\r\n\r\n${body}`);
  const client = await login(server);
  const [full] = await expectedMessages(server);
  const headerEnd = full.indexOf('\r\n\r\n') + 4;
  const header = full.subarray(0, headerEnd);

  const zero = await client.top(1, 0);
  assert.equal(zero.ok, true);
  assert.deepEqual(zero.bytes.toString(), header.toString());
  assert.ok(zero.bytes.toString().endsWith('X-Long: a\r\n folded\r\n\r\n'));

  const two = await client.top(1, 2);
  assert.equal(two.bytes.toString(), header.toString() + 'line one\r\n.line two starts with a dot\r\n');
  assert.ok(two.wire.includes('\r\n..line two'), 'the dot line is stuffed on the wire');

  assert.equal((await client.top(1, 4)).bytes.toString(), full.toString());
  assert.equal((await client.top(1, 100)).bytes.toString(), full.toString());
  for (const bad of ['1', '1 x', '1 -1', '2 0', '0 0', 'x 1', '']) {
    assert.equal((await client.command(`TOP ${bad}`)).ok, false, `TOP ${bad}`);
  }
  assert.equal((await client.top(1, 1)).bytes.toString(), header.toString() + 'line one\r\n', 'still fine after the errors');
  assert.equal(client.bareLineFeeds, 0);
});

test('TOP of a message whose body starts with blank lines counts them as body lines', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'Subject: blank\r\n\r\n\r\n\r\nthird\r\n');
  const client = await login(server);
  const [full] = await expectedMessages(server);
  const header = full.subarray(0, full.indexOf('\r\n\r\n') + 4).toString();
  assert.equal((await client.top(1, 0)).bytes.toString(), header);
  assert.equal((await client.top(1, 1)).bytes.toString(), header + '\r\n');
  assert.equal((await client.top(1, 2)).bytes.toString(), header + '\r\n\r\n');
  assert.equal((await client.top(1, 3)).bytes.toString(), header + '\r\n\r\nthird\r\n');
});

test('UIDL lists a unique id of 1 to 70 printable characters per message; UIDL n gives one', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 4);
  const client = await login(server);
  const ids = await client.uidl();
  assert.deepEqual([...ids.keys()], [1, 2, 3, 4]);
  assert.equal(new Set(ids.values()).size, 4, 'unique');
  for (const id of ids.values()) assert.match(id, /^[\x21-\x7e]{1,70}$/, 'RFC 1939 7: 0x21 to 0x7E, at most 70');
  assert.deepEqual(await client.command('UIDL 3'), { ok: true, text: `3 ${ids.get(3)}` });
  assert.equal((await client.command('UIDL 5')).ok, false);
  assert.equal((await client.command('UIDL x')).ok, false);
});

test('commands in the wrong state are -ERR and change nothing', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 100 } } }); // many errors on purpose
  await deliverNumbered(server, 2);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  for (const command of ['STAT', 'LIST', 'LIST 1', 'RETR 1', 'DELE 1', 'UIDL', 'TOP 1 0', 'RSET', 'NOOP']) {
    const reply = await client.command(command);
    assert.equal(reply.ok, false, `${command} before login`);
    assert.match(reply.text, /needs a login/);
  }
  assert.equal((await client.command('PASS secret')).ok, false, 'PASS without USER');
  assert.equal((await client.command('USER')).ok, false, 'USER without a name');
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true, 'the errors did not spoil the login');

  for (const command of ['USER jjordan', 'PASS secret', 'AUTH PLAIN', 'STLS']) {
    const reply = await client.command(command);
    assert.equal(reply.ok, false, `${command} after login`);
    assert.match(reply.text, /not allowed after login/);
  }
  assert.equal((await client.stat()).count, 2, 'still logged in, nothing changed');
  assert.equal((await client.quit()).ok, true);
  assert.equal((await server.messages('jjordan')).length, 2);
});

test('PASS with a name from an earlier USER only: a failed PASS forgets the USER', async (t) => {
  const server = await serverFor(t);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await client.command('USER jjordan')).ok, true);
  const bad = await client.command('PASS wrong');
  assert.equal(bad.ok, false);
  assert.match(bad.text, /^\[AUTH\] /);
  assert.equal((await client.command('PASS secret')).ok, false, 'USER must come again');
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
});

test('an unknown command is -ERR and the session goes on', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 1);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  for (const line of ['HELO there', 'XYZZY', '', ' STAT', 'APOP jjordan c4c9334bac560ecc979e58001b3e22fb']) {
    const reply = await client.command(line);
    assert.equal(reply.ok, false, JSON.stringify(line));
  }
  assert.match((await client.command('FOO bar')).text, /^Unknown command FOO/);
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  assert.equal((await client.command('EXPN x')).ok, false);
  assert.equal((await client.stat()).count, 1);
});

test('a command line over 1024 octets is -ERR, discarded whole, and the session goes on', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 1);
  const client = await login(server);
  // Exactly 1024 octets with the CRLF: accepted.
  const longest = `NOOP ${'x'.repeat(1024 - 2 - 5)}`;
  assert.equal(Buffer.byteLength(longest + '\r\n'), 1024);
  assert.deepEqual(await client.command(longest), { ok: true, text: '' });
  // One more: refused.
  const reply = await client.command(`NOOP ${'x'.repeat(1024 - 2 - 4)}`);
  assert.deepEqual(reply, { ok: false, text: 'Line too long' });

  // A long line arriving in pieces, whose tail would be a command if it were cut short.
  await client.sendRawAndFlush(`DELE 1 ${'y'.repeat(1500)}`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  await client.sendRawAndFlush(`${'z'.repeat(1100)}\r\nDELE 1\r\nSTAT\r\n`);
  assert.deepEqual(await client.readResponse(), { ok: false, text: 'Line too long' });
  assert.deepEqual(await client.readResponse(), { ok: true, text: 'Message 1 deleted' }, 'the next line is a command again');
  assert.match((await client.readResponse()).text, /^0 0$/);
  assert.equal((await client.command('RSET')).ok, true);
  assert.equal((await client.stat()).count, 1);
});

test('too many errors close the session, and a session closed that way removes nothing', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 3 } } });
  await deliverNumbered(server, 2);
  const before = await server.messages('jjordan');

  const anonymous = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await anonymous.command('BAD1')).ok, false);
  assert.equal((await anonymous.command('BAD2')).ok, false);
  anonymous.send('BAD3');
  assert.equal((await anonymous.readResponse()).ok, false);
  assert.deepEqual(await anonymous.readResponse(), { ok: false, text: 'Too many errors, closing' });
  await anonymous.waitClosed();

  const client = await login(server);
  assert.equal((await client.command('DELE 1')).ok, true);
  assert.equal((await client.command('DELE 1')).ok, false);
  assert.equal((await client.command('RETR 9')).ok, false);
  assert.equal((await client.command('NOOP')).ok, true, 'a success in between does not reset the count');
  client.send('LIST 7');
  assert.equal((await client.readResponse()).ok, false);
  assert.deepEqual(await client.readResponse(), { ok: false, text: 'Too many errors, closing' });
  await client.waitClosed();

  const again = await login(server);
  assert.equal((await again.stat()).count, 2, 'the DELE was not carried out');
  assert.deepEqual(await server.messages('jjordan'), before);
});

test('pipelined commands (RFC 2449 PIPELINING) are answered in order', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 2);
  const expected = await expectedMessages(server);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  client.sendRaw('USER jjordan\r\nPASS secret\r\nSTAT\r\nLIST\r\nRETR 2\r\nDELE 1\r\nLIST 1\r\nUIDL\r\nNOOP\r\nRSET\r\nQUIT\r\n');
  assert.equal((await client.readResponse()).ok, true);
  assert.equal((await client.readResponse()).ok, true);
  assert.equal((await client.readResponse()).text, `2 ${expected[0].length + expected[1].length}`);
  assert.equal((await client.readResponse()).ok, true);
  assert.deepEqual(await client.readMultiline(), [`1 ${expected[0].length}`, `2 ${expected[1].length}`]);
  assert.equal((await client.readResponse()).text, `${expected[1].length} octets`);
  assert.deepEqual(await client.readMultilineBytes(), expected[1]);
  assert.equal((await client.readResponse()).text, 'Message 1 deleted');
  assert.equal((await client.readResponse()).ok, false);
  assert.equal((await client.readResponse()).ok, true);
  assert.equal((await client.readMultiline()).length, 1);
  assert.equal((await client.readResponse()).ok, true);
  assert.equal((await client.readResponse()).ok, true);
  const quit = await client.readResponse();
  assert.match(quit.text, /0 messages deleted/);
  await client.waitClosed();
  assert.equal((await server.messages('jjordan')).length, 2);
});

test('QUIT before login says goodbye and closes', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 1);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  const quit = await client.quit();
  assert.deepEqual(quit, { ok: true, text: 'localhost Bye' });
  assert.equal((await server.messages('jjordan')).length, 1);
});

test('the greeting is one +OK line with the hostname, then the server waits for a command', async (t) => {
  const server = await serverFor(t, { config: { hostname: 'pop.example.org' } });
  const client = server.track(await connectPop3(server.server.pop3.ports.pop3));
  assert.match((await client.readResponse()).text, /^pop\.example\.org POP3 /);
  await assert.rejects(client.readLine(200), /no line/, 'nothing more before a command');
  assert.ok((await client.capa()).includes('IMPLEMENTATION jjordan-mail'));
});

test('QUIT lets go of the maildrop before its +OK: a client that logs in again at once is never told [IN-USE]', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 1);
  // The next session waits with USER already given, and sends PASS the moment the +OK of QUIT arrives.
  for (let round = 0; round < 200; round++) {
    const first = await login(server);
    const next = server.track(await openPop3(server.server.pop3.ports.pop3));
    assert.ok((await next.command('USER jjordan')).ok);
    assert.ok((await first.command('QUIT')).ok);
    const reply = await next.command('PASS secret');
    assert.ok(reply.ok, `round ${round}: -ERR ${reply.text}`);
    assert.ok((await next.command('QUIT')).ok);
  }
});

test('an over-long line inside AUTH gets -ERR, and the session goes on', async (t) => {
  const server = await serverFor(t);
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  client.send('AUTH PLAIN');
  assert.equal(await client.readLine(), '+ ');
  client.send('A'.repeat(5000));
  assert.deepEqual(await client.readResponse(), { ok: false, text: 'Line too long' });
  assert.ok((await client.command('CAPA')).ok, 'still talking');
});
