// CAPA, STLS, implicit TLS (pop3s) and logging in: USER/PASS and AUTH with
// SASL PLAIN and LOGIN (RFC 5034), over real loopback sockets and real TLS
// that the client verifies against the server's own certificate.
//
// The rule under test: a password only travels under TLS (RFC 2595 4,
// RFC 8314), or in clear from loopback when config.auth.allowPlaintextOnLoopback
// says so. After STLS the session starts AUTHORIZATION afresh, and nothing
// the client sent in clear behind the STLS command is ever run.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { sendMail } from '../helpers/smtp-client.ts';
import { connectPop3, connectPop3s, openPop3, upgradeToTls } from '../helpers/pop3-client.ts';
import type { Pop3Client } from '../helpers/pop3-client.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const PLAIN = (user: string, password: string, authzid = '') => b64(`${authzid}\0${user}\0${password}`);

/** Always offered (RFC 2449 6), in every state. */
const ALWAYS = ['TOP', 'UIDL', 'RESP-CODES', 'PIPELINING', 'IMPLEMENTATION jjordan-mail'];

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    trace: true,
    ...options,
  });
  t.after(() => server.close());
  const sent = await sendMail(server.port, { from: 'a@example.org', to: ['jjordan@localhost'], data: 'Subject: hi\r\n\r\nhello\r\n' });
  assert.equal(sent.final.code, 250);
  return server;
}

const plainPort = (server: TestServer) => server.server.pop3.ports.pop3;
const ca = (server: TestServer) => server.server.tls.certPem;

/** Connect in clear, STLS, and return the verified TLS client. */
async function stls(server: TestServer): Promise<Pop3Client> {
  const plain = server.track(await openPop3(plainPort(server)));
  assert.deepEqual(await plain.command('STLS'), { ok: true, text: 'Begin TLS negotiation' });
  const { client, leftover } = await upgradeToTls(plain, ca(server));
  assert.equal(leftover, '', 'nothing in clear after the +OK');
  return server.track(client);
}

/** A verified pop3s connection, greeting read. */
async function pop3s(server: TestServer): Promise<Pop3Client> {
  const client = server.track(await connectPop3s(server.server.pop3.ports.pop3s, ca(server)));
  const greeting = await client.readResponse();
  assert.equal(greeting.ok, true);
  return client;
}

function assertCapa(lines: string[], present: string[], absent: string[]): void {
  for (const line of [...ALWAYS, ...present]) assert.ok(lines.includes(line), `CAPA lists ${line}: ${lines.join(' | ')}`);
  for (const word of absent) {
    assert.ok(!lines.some((line) => line.split(' ')[0] === word), `CAPA does not list ${word}: ${lines.join(' | ')}`);
  }
}

test('CAPA in clear offers STLS and no password login; after STLS, USER and SASL and no STLS', async (t) => {
  const server = await serverFor(t);
  const plain = server.track(await openPop3(plainPort(server)));
  assertCapa(await plain.capa(), ['STLS'], ['USER', 'SASL']);
  await plain.quit();

  const client = await stls(server);
  assertCapa(await client.capa(), ['USER', 'SASL PLAIN LOGIN'], ['STLS']);
  const again = await client.command('STLS');
  assert.equal(again.ok, false, 'no second STLS');
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  // In TRANSACTION: neither login nor STLS is on offer any more.
  assertCapa(await client.capa(), [], ['USER', 'SASL', 'STLS']);
  const retr = await client.retr(1);
  assert.equal(retr.ok, true);
  assert.match(retr.bytes.toString(), /\r\n\r\nhello\r\n$/);
  assert.equal((await client.quit()).ok, true);
});

test('pop3s: implicit TLS from the first byte, verified certificate; USER and SASL offered, STLS not', async (t) => {
  const server = await serverFor(t);
  const client = await pop3s(server);
  assertCapa(await client.capa(), ['USER', 'SASL PLAIN LOGIN'], ['STLS']);
  assert.equal((await client.command('STLS')).ok, false);
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  assert.equal((await client.stat()).count, 1);
  assert.equal((await client.quit()).ok, true);
  assert.ok(server.logLines.some((l) => /pop3\[\w+\] connect .*listener=pop3s tls=true/.test(l)), 'logged as a TLS connection');
});

test('STLS injection: a command sent in clear right behind STLS is discarded, and AUTHORIZATION starts afresh', async (t) => {
  const server = await serverFor(t, { config: { auth: { allowPlaintextOnLoopback: true } } });
  const plain = server.track(await openPop3(plainPort(server)));
  // With loopback logins allowed, USER in clear is fine: STLS must make the server forget it.
  assert.equal((await plain.command('USER jjordan')).ok, true);
  plain.sendRaw('STLS\r\nCAPA\r\nPASS secret\r\n');
  assert.deepEqual(await plain.readResponse(), { ok: true, text: 'Begin TLS negotiation' });
  const { client: secure, leftover } = await upgradeToTls(plain, ca(server));
  server.track(secure);
  assert.equal(leftover, '', 'nothing answered in clear');
  // Had the injected lines run, their replies would be waiting now, encrypted.
  assert.equal(await secure.readLine(300).catch(() => 'no reply'), 'no reply', 'no reply to the injected CAPA and PASS');
  assert.equal((await secure.command('PASS secret')).ok, false, 'the USER given in clear was forgotten');
  assert.equal((await secure.command('STAT')).ok, false, 'not logged in');
  assertCapa(await secure.capa(), ['USER', 'SASL PLAIN LOGIN'], ['STLS']);
  assert.equal((await secure.userPass('jjordan', 'secret')).ok, true);
  assert.equal((await secure.stat()).count, 1);
});

test('USER/PASS and AUTH in clear are refused before any password check; the session stays in AUTHORIZATION', async (t) => {
  const server = await serverFor(t);
  const client = server.track(await openPop3(plainPort(server)));
  const user = await client.command('USER jjordan');
  assert.equal(user.ok, false);
  assert.match(user.text, /STLS/);
  assert.equal((await client.command('PASS secret')).ok, false);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).ok, false);
  client.send('AUTH LOGIN');
  const login = await client.readLine();
  assert.ok(login?.startsWith('-ERR'), `no "+ " challenge in clear: ${login}`);
  client.send('AUTH PLAIN');
  assert.ok((await client.readLine())?.startsWith('-ERR'), 'no challenge for PLAIN either');
  assert.equal((await client.command('STAT')).ok, false, 'not logged in');
  assert.ok(!server.logLines.some((l) => /auth-(ok|failed)/.test(l)), 'no password was even checked');
  // The same client can still upgrade and log in.
  assert.equal((await client.command('STLS')).ok, true);
  const secure = server.track((await upgradeToTls(client, ca(server))).client);
  assert.equal((await secure.userPass('jjordan', 'secret')).ok, true);
});

test('in clear from loopback, when the config allows it: USER, SASL and STLS offered, and logins work', async (t) => {
  const server = await serverFor(t, { config: { auth: { allowPlaintextOnLoopback: true } } });
  const client = server.track(await openPop3(plainPort(server)));
  assertCapa(await client.capa(), ['USER', 'SASL PLAIN LOGIN', 'STLS'], []);
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  await client.quit();
  const other = server.track(await openPop3(plainPort(server)));
  assert.equal((await other.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).ok, true);
});

test('AUTH PLAIN with an initial response, and with an empty "+ " challenge (RFC 5034)', async (t) => {
  const server = await serverFor(t);
  const one = await pop3s(server);
  const ok = await one.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`);
  assert.equal(ok.ok, true);
  assert.match(ok.text, /jjordan's maildrop has 1 messages/);
  assert.equal((await one.stat()).count, 1);
  await one.quit();

  const two = await pop3s(server);
  two.send('AUTH PLAIN');
  assert.equal(await two.readLine(), '+ ', 'an empty challenge');
  assert.equal((await two.command(PLAIN('jjordan@localhost', 'secret', 'jjordan@localhost'))).ok, true);
  await two.quit();

  const three = await pop3s(server);
  assert.equal((await three.command(`auth plain ${PLAIN('JJordan', 'secret')}`)).ok, true, 'case does not matter, except in the password');
  await three.quit();
  const four = await pop3s(server);
  assert.equal((await four.command(`AUTH PLAIN ${PLAIN('jjordan', 'SECRET')}`)).ok, false);
});

test('AUTH LOGIN asks "Username:" then "Password:" in base64', async (t) => {
  const server = await serverFor(t);
  const client = await pop3s(server);
  client.send('AUTH LOGIN');
  assert.equal(await client.readLine(), `+ ${b64('Username:')}`);
  client.send(b64('jjordan'));
  assert.equal(await client.readLine(), `+ ${b64('Password:')}`);
  const done = await client.command(b64('secret'));
  assert.equal(done.ok, true);
  assert.equal((await client.stat()).count, 1);
  await client.quit();

  const initial = await pop3s(server);
  initial.send(`AUTH LOGIN ${b64('jjordan')}`);
  assert.equal(await initial.readLine(), `+ ${b64('Password:')}`, 'the user name as an initial response');
  assert.equal((await initial.command(b64('secret'))).ok, true);
});

test('AUTH: "*" cancels; unknown mechanisms and bad base64 are -ERR; the session can still log in', async (t) => {
  const server = await serverFor(t);
  const client = await pop3s(server);
  const list = await client.multiline('AUTH');
  assert.deepEqual([list.ok, list.lines], [true, ['PLAIN', 'LOGIN']]);

  client.send('AUTH LOGIN');
  assert.equal(await client.readLine(), `+ ${b64('Username:')}`);
  client.send(b64('jjordan'));
  assert.equal(await client.readLine(), `+ ${b64('Password:')}`);
  assert.deepEqual(await client.command('*'), { ok: false, text: 'Authentication cancelled' });

  client.send('AUTH PLAIN');
  assert.equal(await client.readLine(), '+ ');
  assert.deepEqual(await client.command('*'), { ok: false, text: 'Authentication cancelled' });

  assert.equal((await client.command('AUTH CRAM-MD5')).ok, false);
  assert.equal((await client.command('AUTH PLAIN not!base64')).ok, false);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret', 'ana')}`)).ok, false, 'no acting as another user');
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')} extra`)).ok, false);
  assert.equal((await client.command('STAT')).ok, false, 'still not logged in');
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).ok, true);

  // The trace never shows a password, nor its base64.
  const log = server.logLines.join('\n');
  for (const secret of ['secret', b64('secret'), PLAIN('jjordan', 'secret')]) assert.ok(!log.includes(secret), `log leaks ${secret}`);
  assert.match(log, /C: AUTH PLAIN \*\*\*\*/);
});

test('a wrong password is -ERR [AUTH]; after repeated failures the right password is delayed, not refused', async (t) => {
  const server = await serverFor(t, { throttle: { baseDelayMs: 10, maxDelayMs: 20 } });
  const client = await pop3s(server);
  const bad = await client.userPass('jjordan', 'guess0');
  assert.deepEqual(bad, { ok: false, text: '[AUTH] Invalid login' });
  assert.deepEqual(await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'guess1')}`), { ok: false, text: '[AUTH] Invalid login' });
  assert.deepEqual(await client.userPass('nobody', 'secret'), { ok: false, text: '[AUTH] Invalid login' }, 'an unknown user looks the same');
  assert.equal((await client.command('STAT')).ok, false);
  const right = await client.userPass('jjordan', 'secret');
  assert.equal(right.ok, true, 'the right password is never locked out');
  assert.ok(server.logLines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)));
  assert.ok(server.logLines.some((l) => /auth-delayed ip=127\.0\.0\.1/.test(l)));
  assert.ok(!server.logLines.join('\n').includes('guess0'), 'the log does not show the password');
});

test('a client that sends garbage instead of a TLS handshake after STLS is dropped; the server carries on', async (t) => {
  const server = await serverFor(t);
  const plain = server.track(await connectPop3(plainPort(server)));
  assert.equal((await plain.readResponse()).ok, true);
  assert.equal((await plain.command('STLS')).ok, true);
  plain.sendRaw('USER jjordan\r\nPASS secret\r\n');
  await plain.waitClosed();
  const client = await stls(server);
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  assert.ok(server.logLines.some((l) => /tls-failed/.test(l)));
});
