// IMAP sessions over real sockets: greeting, CAPABILITY, the states, LOGIN
// and AUTHENTICATE, literals, malformed commands, LOGOUT; STARTTLS and the
// refusal of passwords in clear. The mailbox commands have their own files.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { ImapClient, connectImap, connectImaps } from '../helpers/imap-client.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function start(options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({ trace: true, ...options, config: { auth: { allowPlaintextOnLoopback: true }, ...options.config } });
  servers.push(server);
  return server;
}

const imapPort = (server: TestServer) => server.server.imap.ports.imap;
const b64 = (text: string) => Buffer.from(text).toString('base64');

async function open(server: TestServer): Promise<ImapClient> {
  const client = server.track(await connectImap(imapPort(server)));
  assert.match(await client.greeting(), /^\* OK \[CAPABILITY IMAP4rev1 .*\] localhost IMAP4rev1 jjordan-mail ready$/);
  return client;
}

test('CAPABILITY, NOOP and LOGOUT in the not-authenticated state', async () => {
  const server = await start();
  const client = await open(server);
  const caps = await client.command('CAPABILITY');
  assert.equal(caps.status, 'OK');
  assert.match(caps.untagged[0], /^CAPABILITY IMAP4rev1 .*\bLITERAL\+ .*\bIDLE\b.*\bSTARTTLS\b.*\bAUTH=PLAIN AUTH=LOGIN\b/);
  assert.equal((await client.command('noop')).status, 'OK', 'command names are not case-sensitive');
  const bye = await client.command('LOGOUT');
  assert.deepEqual([bye.untagged, bye.status], [['BYE Logging out'], 'OK']);
  await client.waitClosed();
});

test('LOGIN with a quoted password and with literals; a wrong one gets NO [AUTHENTICATIONFAILED]', async () => {
  const server = await start({ accounts: [{ name: 'jjordan', password: 'se"cr et' }] });
  const client = await open(server);
  const wrong = await client.command('LOGIN jjordan nope');
  assert.equal(wrong.status, 'NO');
  assert.match(wrong.text, /^\[AUTHENTICATIONFAILED\] /);
  const right = await client.commandWithLiterals(['LOGIN ', Buffer.from('jjordan'), ' ', Buffer.from('se"cr et')]);
  assert.equal(right.status, 'OK');
  assert.match(right.text, /^\[CAPABILITY IMAP4rev1 .*\] Logged in$/);
  assert.doesNotMatch(right.text, /AUTH=|STARTTLS|LOGINDISABLED/, 'after login only what matters now');
  assert.equal((await client.command('LOGIN jjordan x')).status, 'BAD', 'LOGIN is for the not-authenticated state');
  const quoted = await open(server);
  assert.equal((await quoted.command('LOGIN "jjordan" "se\\"cr et"')).status, 'OK');
  assert.ok(!server.logLines.some((line) => line.includes('cr et')), 'the password never reaches the trace');
});

test('AUTHENTICATE PLAIN with an initial response (SASL-IR) and with a continuation; "*" cancels', async () => {
  const server = await start();
  const client = await open(server);
  assert.equal((await client.command(`AUTHENTICATE PLAIN ${b64('\0jjordan\0secret')}`)).status, 'OK');
  const other = await open(server);
  other.sendRaw('a1 AUTHENTICATE PLAIN\r\n');
  assert.equal(await other.readLine(), '+ ');
  other.sendRaw(`${b64('\0jjordan\0secret')}\r\n`);
  assert.equal((await other.readTagged('a1')).status, 'OK');
  const third = await open(server);
  third.sendRaw('a2 AUTHENTICATE LOGIN\r\n');
  assert.equal(await third.readLine(), `+ ${b64('Username:')}`);
  third.sendRaw('*\r\n');
  assert.equal((await third.readTagged('a2')).status, 'BAD', 'RFC 3501 6.2.2: a cancelled exchange is BAD');
});

test('states: mailbox commands need a login; unknown and malformed commands get BAD, and too many close', async () => {
  const server = await start({ config: { limits: { maxErrors: 4 } } });
  const client = await open(server);
  const early = await client.command('ENABLE CONDSTORE');
  assert.equal(early.status, 'BAD');
  assert.match(early.text, /needs a login first/);
  assert.match((await client.command('FROBNICATE')).text, /^Unknown command FROBNICATE/);
  assert.match((await client.command('LOGIN "unterminated')).text, /^Error in IMAP command LOGIN: unterminated quoted string/);
  client.sendRaw('t9 LOGIN a\r\n');
  assert.equal((await client.readTagged('t9')).status, 'BAD');
  assert.equal(await client.readLine(), '* BYE Too many invalid commands');
  await client.waitClosed();
  const notag = await open(server);
  notag.sendRaw('\r\n');
  assert.match((await notag.readLine()) ?? '', /^\* BAD /);
});

test('a literal larger than the message size limit is refused before it is sent; a {n+} one is read, discarded and refused', async () => {
  const server = await start({ config: { limits: { maxMessageBytes: 1000 } } });
  const client = await open(server);
  await client.command('LOGIN jjordan secret');
  client.sendRaw('a1 APPEND INBOX {1001}\r\n');
  const refused = await client.readLine();
  assert.match(refused ?? '', /^a1 NO \[TOOBIG\] /, 'no "+": the client must not send it');
  assert.equal((await client.command('NOOP')).status, 'OK', 'the session goes on');
  client.sendRaw(`a2 APPEND INBOX {2000+}\r\n${'x'.repeat(2000)}\r\n`);
  assert.match((await client.readLine()) ?? '', /^a2 NO \[TOOBIG\] /, 'RFC 7889 4; the session stays in step');
  assert.equal((await client.command('NOOP')).status, 'OK');
});

test('passwords only over TLS: LOGINDISABLED in clear, then STARTTLS (injected commands discarded), then LOGIN', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: false } } });
  const client = await open(server);
  const caps = await client.command('CAPABILITY');
  assert.match(caps.untagged[0], /\bLOGINDISABLED\b/);
  assert.doesNotMatch(caps.untagged[0], /AUTH=PLAIN/);
  const clear = await client.command('LOGIN jjordan secret');
  assert.equal(clear.status, 'NO');
  assert.match(clear.text, /^\[PRIVACYREQUIRED\] /);
  // CVE-2011-0411: a command behind STARTTLS in the same packet must not run after the handshake.
  client.sendRaw('s1 STARTTLS\r\ns2 LOGIN jjordan secret\r\n');
  assert.equal(await client.readLine(), 's1 OK Begin TLS negotiation now');
  client.socket.removeAllListeners('data');
  const secure = tlsConnect({ socket: client.socket, ca: server.server.tls.certPem, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', () => resolve()).once('error', reject));
  const tls = new ImapClient(secure);
  assert.equal(await tls.readLine(300).catch(() => null), null, 'nothing answered the injected LOGIN');
  const after = await tls.command('CAPABILITY');
  assert.match(after.untagged[0], /AUTH=PLAIN/);
  assert.doesNotMatch(after.untagged[0], /STARTTLS|LOGINDISABLED/);
  assert.equal((await tls.command('LOGIN jjordan secret')).status, 'OK');
});

test('imaps: implicit TLS from the first byte, with a verified certificate', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: false } } });
  const client = server.track(await connectImaps(server.server.imap.ports.imaps, server.server.tls.certPem));
  assert.match(await client.greeting(), /^\* OK \[CAPABILITY IMAP4rev1 .*AUTH=PLAIN/);
  assert.equal((await client.command('LOGIN jjordan secret')).status, 'OK');
});

test('ID: the server names itself; a trusted client may pass on its user\'s address for the login throttle', async () => {
  const server = await start({ config: { auth: { allowPlaintextOnLoopback: true, trustedClients: ['127.0.0.1'] } } });
  const client = await open(server);
  const id = await client.command('ID ("name" "webmail" "x-originating-ip" "203.0.113.9")');
  assert.equal(id.status, 'OK');
  assert.match(id.untagged[0], /^ID \("name" "jjordan-mail" /);
  assert.equal((await client.command('LOGIN jjordan wrong')).status, 'NO');
  assert.ok(server.logLines.some((line) => /auth-failed ip=203\.0\.113\.9/.test(line)), 'counted against the user\'s address');
  const untrusted = server.track(await connectImap(imapPort(server), { localAddress: '127.0.0.2' }));
  await untrusted.greeting();
  await untrusted.command('ID ("x-originating-ip" "198.51.100.1")');
  assert.equal((await untrusted.command('LOGIN jjordan wrong')).status, 'NO');
  assert.ok(server.logLines.some((line) => /auth-failed ip=127\.0\.0\.2/.test(line)), 'an untrusted client cannot choose');
});
