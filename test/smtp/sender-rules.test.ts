// Who may say who they are: the sender rules of the hardening issue, over
// real sockets. Port 25 takes no AUTH and refuses our own domains as the
// sender from outside the trusted networks; submission checks the header's
// From: as well as the envelope's; addresses and EHLO names must be UTF-8.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { connect, dotStuff } from '../helpers/smtp-client.ts';
import type { SmtpClient } from '../helpers/smtp-client.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const PLAIN = (user: string, password: string) => b64(`\0${user}\0${password}`);

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(config: TestServerOptions['config'] = {}): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
    aliases: 'webmaster: jjordan\n',
    config: { auth: { allowPlaintextOnLoopback: true }, ...config },
  });
  servers.push(server);
  return server;
}

async function greeted(port: number, localAddress?: string): Promise<SmtpClient> {
  const client = await connect(port, { localAddress });
  assert.equal((await client.readReply()).code, 220);
  assert.equal((await client.command('EHLO client.example')).code, 250);
  return client;
}

test('port 25: our own domain as the sender is refused (550 5.7.1) from outside the trusted networks', async () => {
  const server = await start({ trustedNetworks: ['127.0.0.1'] });
  const outsider = await greeted(server.port, '127.0.0.2');
  const forged = await outsider.command('MAIL FROM:<jjordan@localhost>');
  assert.equal(forged.code, 550);
  assert.match(forged.lines[0], /^5\.7\.1 /);
  // Mail from other domains, and bounces, are what port 25 is for.
  assert.equal((await outsider.command('MAIL FROM:<friend@example.net>')).code, 250);
  assert.equal((await outsider.command('RSET')).code, 250);
  assert.equal((await outsider.command('MAIL FROM:<>')).code, 250);
  // A program on the trusted address (a cron job) may still send as us.
  const local = await greeted(server.port, '127.0.0.1');
  assert.equal((await local.command('MAIL FROM:<jjordan@localhost>')).code, 250);
  assert.ok(server.logLines.some((line) => /refused reason=local-sender-without-login from=<jjordan@localhost>/.test(line)));
});

/** Log in on submission, then send a message with this header From:; returns the final reply. */
async function submit(server: TestServer, from: string): Promise<number> {
  const client = await greeted(server.server.smtp.ports.submission);
  assert.equal((await client.command(`AUTH PLAIN ${PLAIN('jjordan', 'secret')}`)).code, 235);
  assert.equal((await client.command('MAIL FROM:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('RCPT TO:<ana@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw(dotStuff(`From: ${from}\r\nSubject: test\r\n\r\nbody\r\n`));
  const reply = await client.readReply();
  await client.command('QUIT');
  return reply.code;
}

test("submission: the header From: must be one of the user's addresses, or nothing is stored", async () => {
  const server = await start();
  assert.equal(await submit(server, 'Ana <ana@localhost>'), 550);
  assert.equal(await submit(server, 'ana@localhost'), 550);
  assert.equal(await submit(server, '"jjordan@localhost" <ana@localhost>'), 550, 'a display name is not the address');
  assert.equal(await submit(server, 'J <jjordan@localhost>, ana@localhost'), 550, 'every author must be the user');
  assert.deepEqual(await server.messages('ana'), [], 'nothing was delivered');
  assert.ok(server.logLines.some((line) => /refused reason=header-from-not-owned account=jjordan headerFrom=<ana@localhost>/.test(line)));

  assert.equal(await submit(server, 'J. Jordan <jjordan@localhost>'), 250);
  assert.equal(await submit(server, '"Jordan, J." (work) <JJordan@LOCALHOST>'), 250, 'quoted comma, comment, case');
  assert.equal(await submit(server, 'webmaster@localhost'), 250, 'an alias of the user');
  assert.equal((await server.messages('ana')).length, 3);
});

test('SMTPUTF8: an EHLO name or an address that is not valid UTF-8 is refused (RFC 6531 3.3)', async () => {
  const server = await start();
  const client = await connect(server.port);
  await client.readReply();
  client.sendRaw(Buffer.concat([Buffer.from('EHLO bad'), Buffer.from([0xff, 0xfe]), Buffer.from('.example\r\n')]));
  const ehlo = await client.readReply();
  assert.equal(ehlo.code, 501);
  assert.match(ehlo.lines[0], /^5\.5\.4 /);
  assert.equal((await client.command('EHLO ok.example')).code, 250);
  client.sendRaw(Buffer.concat([Buffer.from('MAIL FROM:<b'), Buffer.from([0xc3, 0x28]), Buffer.from('d@example.net> SMTPUTF8\r\n')]));
  const mail = await client.readReply();
  assert.equal(mail.code, 553);
  assert.match(mail.lines[0], /^5\.6\.7 /);
  // Real UTF-8 with SMTPUTF8 is welcome.
  assert.equal((await client.command('MAIL FROM:<dörte@example.net> SMTPUTF8')).code, 250);
  client.sendRaw(Buffer.concat([Buffer.from('RCPT TO:<'), Buffer.from([0xe2, 0x82]), Buffer.from('@localhost>\r\n')]));
  assert.equal((await client.readReply()).code, 553);
});
