// STARTTLS, implicit TLS, AUTH and submission, over real loopback sockets
// with real TLS: the client verifies the server's self-signed certificate
// (made by the project's own generator) against that certificate.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { SmtpClient, connect, dotStuff } from '../helpers/smtp-client.ts';
import { parseQueueEnvelope, queueDir } from '../../src/queue/queue-file.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const PLAIN = (user: string, password: string) => b64(`\0${user}\0${password}`);

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
    aliases: 'webmaster: jjordan\n',
    trace: true,
    ...options,
  });
  servers.push(server);
  return server;
}

/** Upgrade a client after the server's 220 to STARTTLS, verifying the certificate. */
async function upgrade(server: TestServer, client: SmtpClient): Promise<SmtpClient> {
  client.socket.removeAllListeners('data');
  const secure: TLSSocket = tlsConnect({ socket: client.socket, ca: server.server.tls.certPem, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  assert.equal(secure.authorized, true, 'the certificate verifies');
  return new SmtpClient(secure);
}

/** A verified implicit-TLS connection to the smtps port. */
async function connectImplicit(server: TestServer): Promise<SmtpClient> {
  const secure = tlsConnect({ port: server.server.smtp.ports.smtps, host: '127.0.0.1', ca: server.server.tls.certPem, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  return new SmtpClient(secure);
}

/** Connect to a port, EHLO, STARTTLS, EHLO again; returns the TLS client and its EHLO lines. */
async function secureSession(server: TestServer, port: number): Promise<{ client: SmtpClient; ehlo: string[] }> {
  const plain = await connect(port);
  assert.equal((await plain.readReply()).code, 220);
  const before = await plain.command('EHLO client.example');
  assert.ok(before.lines.includes('STARTTLS'), 'STARTTLS offered in clear');
  assert.ok(!before.lines.some((l) => l.startsWith('AUTH')), 'AUTH not offered in clear');
  assert.equal((await plain.command('STARTTLS')).code, 220);
  const client = await upgrade(server, plain);
  const ehlo = await client.command('EHLO client.example');
  assert.equal(ehlo.code, 250);
  return { client, ehlo: ehlo.lines };
}

test('STARTTLS upgrades with a certificate the client verifies; then AUTH is offered, STARTTLS not', async () => {
  const server = await start();
  const { client, ehlo } = await secureSession(server, server.server.smtp.ports.submission);
  assert.ok(ehlo.includes('AUTH PLAIN LOGIN'));
  assert.ok(!ehlo.includes('STARTTLS'));
  assert.equal((await client.command('STARTTLS')).code, 503, 'no second STARTTLS');
  await client.command('QUIT');
});

test('port 25 offers no AUTH, even over TLS, and refuses it: AUTH belongs to submission (as Postfix)', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: true } } });
  const { client, ehlo } = await secureSession(server, server.port);
  assert.ok(!ehlo.some((line) => line.startsWith('AUTH')), `EHLO on port 25 over TLS: ${ehlo.join(' | ')}`);
  const refused = await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`);
  assert.equal(refused.code, 503);
  assert.match(refused.lines[0], /^5\.5\.1 /);
  // Not even in clear from loopback, where submission would allow it.
  const plain = await connect(server.port);
  await plain.readReply();
  assert.ok(!(await plain.command('EHLO client.example')).lines.some((line) => line.startsWith('AUTH')));
  assert.equal((await plain.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 503);
  assert.ok(!server.logLines.some((line) => / auth-ok /.test(line)), 'no login happened');
});

test('commands sent in clear after STARTTLS are discarded, never executed (CVE-2011-0411)', async () => {
  const server = await start();
  const plain = await connect(server.port);
  await plain.readReply();
  await plain.command('EHLO client.example');
  plain.sendRaw('STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.net>\r\n');
  assert.equal((await plain.readReply()).code, 220);
  const client = await upgrade(server, plain);
  // Had the injected lines run, their replies would be waiting now.
  assert.equal(await client.readLine(300).catch(() => null), null, 'no reply to the injected commands');
  const ehlo = await client.command('EHLO client.example');
  assert.equal(ehlo.code, 250);
  assert.match(ehlo.lines[0], /Hello client\.example/);
  // The session really was reset: MAIL is accepted as the first transaction.
  assert.equal((await client.command('MAIL FROM:<>')).code, 250);
  assert.ok(!server.logLines.some((l) => l.includes('evil@example.net')), 'the injected MAIL never ran');
});

test('AUTH is refused in clear, with 538', async () => {
  const server = await start();
  const client = await connect(server.server.smtp.ports.submission);
  await client.readReply();
  await client.command('EHLO client.example');
  const refused = await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`);
  assert.equal(refused.code, 538);
  assert.match(refused.lines[0], /^5\.7\.11 /);
  assert.equal((await client.command('MAIL FROM:<jjordan@localhost>')).code, 530, 'still not logged in');
});

test('AUTH in clear from loopback only when the config allows it', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: true } } });
  const client = await connect(server.server.smtp.ports.submission);
  await client.readReply();
  const ehlo = await client.command('EHLO client.example');
  assert.ok(ehlo.lines.includes('AUTH PLAIN LOGIN'));
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
});

test('a client that goes silent in the middle of AUTH is timed out with 421 4.4.2', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: true }, limits: { idleTimeoutSeconds: 1 } } });
  const client = await connect(server.server.smtp.ports.submission);
  await client.readReply();
  await client.command('EHLO client.example');
  assert.equal((await client.command('AUTH LOGIN')).code, 334);
  assert.deepEqual(await client.readReply(4000), { code: 421, lines: ['4.4.2 localhost Idle for too long, closing connection'] });
  await client.waitClosed();
  assert.ok(server.logLines.some((line) => / timeout during=greeted$/.test(line)));
});

test('AUTH PLAIN (initial response and empty challenge) and AUTH LOGIN succeed under TLS', async () => {
  const server = await start();
  const port = server.server.smtp.ports.submission;

  const one = (await secureSession(server, port)).client;
  const ok = await one.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`);
  assert.equal(ok.code, 235);
  assert.match(ok.lines[0], /^2\.7\.0 /);
  assert.equal((await one.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 503, 'only once');

  const two = (await secureSession(server, port)).client;
  const challenge = await two.command('AUTH PLAIN');
  assert.deepEqual([challenge.code, challenge.lines[0]], [334, '']);
  assert.equal((await two.command(PLAIN('ana', 'ana-pw'))).code, 235);

  const three = (await secureSession(server, port)).client;
  assert.deepEqual(await three.command('AUTH LOGIN'), { code: 334, lines: [b64('Username:')] });
  assert.deepEqual(await three.command(b64('jjordan@localhost')), { code: 334, lines: [b64('Password:')] });
  assert.equal((await three.command(b64('secret'))).code, 235);

  const four = (await secureSession(server, port)).client;
  await four.command('AUTH LOGIN');
  const cancelled = await four.command('*');
  assert.equal(cancelled.code, 501, 'RFC 4954: * cancels');
  assert.equal((await four.command('AUTH XOAUTH9')).code, 504);

  // The trace never shows a password, nor its base64.
  const log = server.logLines.join('\n');
  for (const secret of ['secret', 'ana-pw', b64('secret'), PLAIN('jjordan', 'secret'), PLAIN('ana', 'ana-pw')]) {
    assert.ok(!log.includes(secret), `log leaks ${secret}`);
  }
  assert.match(log, /C: AUTH PLAIN \*\*\*\*/);
  assert.match(log, /auth-ok account=jjordan/);
});

test('a wrong password gets 535 5.7.8; after repeated failures the right password is delayed, not refused', async () => {
  const server = await start({ throttle: { baseDelayMs: 10, maxDelayMs: 20 } });
  const { client } = await secureSession(server, server.server.smtp.ports.submission);
  for (let i = 0; i < 3; i++) {
    const bad = await client.command(`AUTH PLAIN ${PLAIN('jjordan', `guess${i}`)}`);
    assert.equal(bad.code, 535);
    assert.match(bad.lines[0], /^5\.7\.8 /);
  }
  const right = await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`);
  assert.equal(right.code, 235, 'the right password is never locked out');
  assert.ok(server.logLines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)));
  assert.ok(server.logLines.some((l) => /auth-delayed ip=127\.0\.0\.1/.test(l)));
});

test('submission: MAIL before AUTH is 530; a forged sender is 553; own address and alias are fine', async () => {
  const server = await start();
  const { client } = await secureSession(server, server.server.smtp.ports.submission);
  const early = await client.command('MAIL FROM:<jjordan@localhost>');
  assert.equal(early.code, 530);
  assert.match(early.lines[0], /^5\.7\.0 /);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
  const forged = await client.command('MAIL FROM:<ana@localhost>');
  assert.equal(forged.code, 553);
  assert.match(forged.lines[0], /^5\.7\.1 /);
  assert.equal((await client.command('MAIL FROM:<webmaster@localhost>')).code, 250, 'an alias of the user');
  assert.equal((await client.command('RSET')).code, 250);
  assert.equal((await client.command('MAIL FROM:<JJordan@LOCALHOST>')).code, 250, 'case does not matter');
});

test('an authenticated user: local recipient to the mbox, remote ones to one complete queue file', async () => {
  const server = await start();
  const client = await connectImplicit(server); // the 465 role
  assert.equal((await client.readReply()).code, 220);
  const ehlo = await client.command('EHLO client.example');
  assert.ok(ehlo.lines.includes('AUTH PLAIN LOGIN') && !ehlo.lines.includes('STARTTLS'));
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
  assert.equal((await client.command('MAIL FROM:<jjordan@localhost> BODY=8BITMIME')).code, 250);
  assert.equal((await client.command('RCPT TO:<ana@localhost>')).code, 250);
  assert.equal((await client.command('RCPT TO:<friend@example.net>')).code, 250);
  assert.equal((await client.command('RCPT TO:<other@example.com>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw(dotStuff('Subject: out\r\n\r\nhello .world\r\n.leading\r\n'));
  client.sendRaw('.\r\n');
  const done = await client.readReply();
  assert.equal(done.code, 250);

  const stored = await server.messages('ana');
  assert.equal(stored.length, 1);
  const local = stored[0].content.toString();
  assert.match(local, /with ESMTPSA id/);
  assert.match(local, /\(Authenticated sender: jjordan\)/);
  assert.match(local, /\(using TLSv1\.[23] /);

  const names = (await readdir(queueDir(server.dataDir))).filter((n) => n.endsWith('.msg'));
  assert.equal(names.length, 1, 'one queue file for all remote recipients');
  const bytes = await readFile(join(queueDir(server.dataDir), names[0]));
  const { envelope, bodyOffset } = parseQueueEnvelope(bytes);
  assert.deepEqual(envelope.to, ['friend@example.net', 'other@example.com']);
  assert.equal(envelope.from, 'jjordan@localhost');
  assert.equal(envelope.auth, 'jjordan');
  assert.equal(envelope.body, '8bitmime');
  const queued = bytes.subarray(bodyOffset).toString();
  assert.match(queued, /^Received: /, 'no Return-Path on a copy that travels on (RFC 5321 4.4)');
  assert.ok(queued.endsWith('\nSubject: out\n\nhello .world\n.leading\n'), 'complete, unstuffed, LF endings');
  assert.deepEqual(await readdir(join(queueDir(server.dataDir), 'tmp')), [], 'no half-written files');
});

test('without a login, mail for other domains is still refused on every port (never an open relay)', async () => {
  const server = await start();
  const { client } = await secureSession(server, server.port);
  assert.equal((await client.command('MAIL FROM:<someone@example.org>')).code, 250);
  const relay = await client.command('RCPT TO:<victim@example.net>');
  assert.equal(relay.code, 554);
  assert.match(relay.lines[0], /^5\.7\.1 /);
  // Local mail over STARTTLS without a login is fine, and its trace says ESMTPS.
  assert.equal((await client.command('RCPT TO:<ana@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw('Subject: tls\r\n\r\nover TLS\r\n.\r\n');
  assert.equal((await client.readReply()).code, 250);
  const [stored] = await server.messages('ana');
  assert.match(stored.content.toString(), /with ESMTPS id /);
  assert.doesNotMatch(stored.content.toString(), /Authenticated sender/);
});

test('a client that gives up in the middle of the TLS handshake changes nothing', async () => {
  const server = await start();
  const plain = await connect(server.port);
  await plain.readReply();
  await plain.command('EHLO client.example');
  assert.equal((await plain.command('STARTTLS')).code, 220);
  plain.sendRaw('this is not a TLS ClientHello\r\n');
  await plain.waitClosed();
  // The server is still fine for the next client.
  const { client } = await secureSession(server, server.port);
  assert.equal((await client.command('NOOP')).code, 250);
});
