// XCLIENT ADDR (Postfix's extension) on submission: a trusted client (the
// webmail, in auth.trustedClients) says which browser it acts for, and
// failed logins are then throttled under that address, not the webmail's.
// Anyone else is refused, as Postfix refuses hosts outside
// smtpd_authorized_xclient_hosts. Real implicit TLS over loopback.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';

const PLAIN = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64');

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(trustedClients?: string[]): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [{ name: 'jjordan', password: 'secret' }],
    throttle: { baseDelayMs: 10, maxDelayMs: 20 },
    ...(trustedClients ? { config: { auth: { trustedClients } } } : {}),
  });
  servers.push(server);
  return server;
}

/** A verified implicit-TLS session on the smtps port, greeted and EHLO said; returns the EHLO lines too. */
async function session(server: TestServer): Promise<{ client: SmtpClient; ehlo: string[] }> {
  const secure = tlsConnect({ port: server.server.smtp.ports.smtps, host: '127.0.0.1', ca: server.server.tls.certPem, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  const client = new SmtpClient(secure);
  assert.equal((await client.readReply()).code, 220);
  const ehlo = await client.command('EHLO webmail.example');
  assert.equal(ehlo.code, 250);
  return { client, ehlo: ehlo.lines };
}

test('XCLIENT ADDR from a trusted client: a fresh 220, and failed logins count against the given address', async () => {
  const server = await start();
  const { client, ehlo } = await session(server);
  assert.ok(ehlo.includes('XCLIENT ADDR'), 'offered to a trusted client (loopback is, by default)');
  assert.equal((await client.command('XCLIENT ADDR=not-an-address')).code, 501);
  const done = await client.command('XCLIENT ADDR=192.0.2.7');
  assert.equal(done.code, 220, 'the session starts again, as in Postfix');
  assert.equal((await client.command('MAIL FROM:<jjordan@localhost>')).code, 530, 'not logged in: XCLIENT is no login');
  assert.equal((await client.command('EHLO webmail.example')).code, 250);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'wrong')}`)).code, 535);
  assert.ok(server.logLines.some((l) => /auth-failed ip=192\.0\.2\.7/.test(l)), server.logLines.filter((l) => l.includes('auth')).join('\n'));
  assert.ok(!server.logLines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)), 'not against the webmail itself');
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
  assert.equal((await client.command('XCLIENT ADDR=192.0.2.8')).code, 503, 'not after AUTH');
  assert.equal((await client.command('XCLIENT ADDR=IPV6:2001:db8::1')).code, 503);
});

test('XCLIENT from a client that is not trusted is refused, not offered, and changes nothing', async () => {
  const server = await start([]);
  const { client, ehlo } = await session(server);
  assert.ok(!ehlo.some((l) => l.startsWith('XCLIENT')), 'not offered');
  const refused = await client.command('XCLIENT ADDR=192.0.2.7');
  assert.equal(refused.code, 550);
  assert.match(refused.lines[0], /^5\.7\.0 /);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'wrong')}`)).code, 535);
  assert.ok(server.logLines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)), 'counted against the real address');
  assert.ok(!server.logLines.some((l) => /192\.0\.2\.7/.test(l)));
});
