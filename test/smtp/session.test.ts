// The SMTP conversation end to end, over real loopback sockets: the command
// table and its state rules, the replies to bad input, pipelining, and the
// limits that protect the server (line length, errors, idle time,
// connections, cross-protocol HTTP).

import { describe, test } from 'node:test';
import { unlink, writeFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, openSession, openSocket, sendMail } from '../helpers/smtp-client.ts';
import type { ConnectOptions, SmtpClient, SmtpReply } from '../helpers/smtp-client.ts';
import { startTestServer, eventually } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';

async function serverFor(t: TestContext, options: TestServerOptions = {}) {
  const server = await startTestServer(options);
  t.after(() => server.close());
  return server;
}

async function sessionFor(server: TestServer): Promise<SmtpClient> {
  return server.track(await openSession(server.port));
}

async function connectTo(server: TestServer, options: ConnectOptions = {}): Promise<SmtpClient> {
  return server.track(await connect(server.port, options));
}

/** `250 2.1.0 Ok` -> [250, '2.1.0 Ok'], for compact asserts on one-line replies. */
function brief(reply: SmtpReply): [number, string] {
  return [reply.code, reply.lines.join('\n')];
}

test('greeting, EHLO extensions, QUIT', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxMessageBytes: 12345 } } });
  const client = await connectTo(server);
  assert.deepEqual(brief(await client.readReply()), [220, 'localhost ESMTP jjordan-mail']);
  const ehlo = await client.command('EHLO client.example');
  assert.equal(ehlo.code, 250);
  assert.equal(ehlo.lines[0], 'localhost Hello client.example');
  // The extensions this server must offer (others, such as STARTTLS, may join them).
  for (const extension of ['PIPELINING', 'SIZE 12345', '8BITMIME', 'ENHANCEDSTATUSCODES', 'SMTPUTF8', 'HELP']) {
    assert.ok(ehlo.lines.includes(extension), `EHLO offers ${extension}: ${ehlo.lines.join(', ')}`);
  }
  assert.deepEqual(brief(await client.command('QUIT')), [221, '2.0.0 localhost Bye']);
  await client.waitClosed();
});

test('HELO gets a one-line reply; EHLO/HELO without a name is 501', async (t) => {
  const server = await serverFor(t);
  const client = await connectTo(server);
  await client.readReply();
  assert.deepEqual(brief(await client.command('EHLO')), [501, '5.5.4 Syntax: EHLO hostname']);
  assert.deepEqual(brief(await client.command('HELO')), [501, '5.5.4 Syntax: HELO hostname']);
  assert.deepEqual(brief(await client.command('HELO old.example')), [250, 'localhost']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org>')), [250, '2.1.0 Ok']);
});

test('verbs are case-insensitive; NOOP, RSET, VRFY, EXPN, HELP', async (t) => {
  const server = await serverFor(t);
  const client = await sessionFor(server);
  assert.deepEqual(brief(await client.command('noop')), [250, '2.0.0 Ok']);
  assert.deepEqual(brief(await client.command('VRFY jjordan')), [252, '2.5.2 Cannot VRFY user, but will accept message']);
  assert.deepEqual(brief(await client.command('EXPN staff')), [502, '5.5.1 EXPN not available']);
  const help = await client.command('HELP');
  assert.equal(help.code, 214);
  assert.equal(help.lines.length, 2);
  assert.match(help.lines[0], /^2\.0\.0 Commands: /);
  for (const verb of ['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'RSET', 'NOOP', 'QUIT', 'VRFY', 'HELP']) {
    assert.ok(help.lines[0].split(' ').includes(verb), `HELP lists ${verb}`);
  }
  // RSET ends the transaction: RCPT then needs a new MAIL.
  assert.equal((await client.command('mail from:<a@example.org>')).code, 250);
  assert.deepEqual(brief(await client.command('RSET')), [250, '2.0.0 Ok']);
  assert.deepEqual(brief(await client.command('RCPT TO:<jjordan@localhost>')), [503, '5.5.1 Need MAIL command']);
});

test('unknown command is 500 5.5.2 and the session goes on', async (t) => {
  const server = await serverFor(t);
  const client = await sessionFor(server);
  assert.deepEqual(brief(await client.command('FROB now')), [500, '5.5.2 Command not recognized']);
  assert.deepEqual(brief(await client.command('')), [500, '5.5.2 Command not recognized']);
  assert.equal((await client.command('NOOP')).code, 250);
});

test('out-of-sequence commands are 503', async (t) => {
  const server = await serverFor(t);
  const client = await sessionFor(server);
  assert.deepEqual(brief(await client.command('RCPT TO:<jjordan@localhost>')), [503, '5.5.1 Need MAIL command']);
  assert.deepEqual(brief(await client.command('DATA')), [503, '5.5.1 Need RCPT command']);
  assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  assert.deepEqual(brief(await client.command('MAIL FROM:<b@example.org>')), [503, '5.5.1 Nested MAIL command']);
  // MAIL with no accepted recipient: DATA is in sequence but has nobody to deliver to.
  assert.equal((await client.command('RCPT TO:<nobody@localhost>')).code, 550);
  assert.deepEqual(brief(await client.command('DATA')), [554, '5.5.1 No valid recipients']);
  // The failed DATA did not start reading a message: commands still work.
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
});

test('MAIL before EHLO is allowed (like Postfix) and is recorded as SMTP, helo unknown', async (t) => {
  const server = await serverFor(t);
  const client = await connectTo(server);
  await client.readReply();
  assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw('Subject: no helo\r\n\r\nhi\r\n.\r\n');
  assert.equal((await client.readReply()).code, 250);
  const [message] = await server.messages('jjordan');
  assert.match(message.content.toString(), /^Return-Path: <a@example\.org>\nReceived: from unknown \(\[127\.0\.0\.1\]\)\n\tby localhost \(jjordan-mail\) with SMTP id /);
});

test('bad MAIL and RCPT arguments: 501 for syntax, 555 for unknown parameters', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 100 } } });
  const client = await sessionFor(server);
  assert.deepEqual(brief(await client.command('MAIL FROM:a@example.org')), [501, '5.1.7 Syntax: MAIL FROM:<address>']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@>')), [501, '5.1.7 Address must be local-part@domain']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a..b@example.org>')), [501, '5.1.7 Bad local part']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@exa mple.org>')), [501, '5.1.7 Bad domain']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org>junk')), [501, '5.1.7 Syntax error after the address']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org> FOO=BAR')), [555, '5.5.4 Parameter FOO not supported']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org> SIZE=ten')), [501, '5.5.4 Bad SIZE parameter']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org> BODY=BINARYMIME')), [501, '5.5.4 BODY must be 7BIT or 8BITMIME']);
  assert.deepEqual(brief(await client.command('MAIL FROM:<jösé@example.org>')), [501, '5.1.7 Non-ASCII address needs SMTPUTF8']);
  // None of those started a transaction.
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 503);

  assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  assert.deepEqual(brief(await client.command('RCPT TO:jjordan@localhost')), [501, '5.1.3 Syntax: RCPT TO:<address>']);
  assert.deepEqual(brief(await client.command('RCPT TO:<>')), [501, '5.1.3 Empty recipient address']);
  assert.deepEqual(brief(await client.command('RCPT TO:<jjordan@localhost> NOTIFY=NEVER')), [555, '5.5.4 RCPT parameters not supported']);
  // The usual form, and the space after the colon that some clients send.
  assert.deepEqual(brief(await client.command('RCPT TO: <jjordan@LOCALHOST>')), [250, '2.1.5 Ok']);
});

test('SIZE in MAIL: at the limit accepted, above it 552 5.3.4', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxMessageBytes: 1000 } } });
  const client = await sessionFor(server);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org> SIZE=1001')), [
    552,
    '5.3.4 Message size exceeds fixed limit of 1000 bytes',
  ]);
  assert.deepEqual(brief(await client.command('MAIL FROM:<a@example.org> SIZE=1000 BODY=8BITMIME')), [250, '2.1.0 Ok']);
});

test('a command line of 512 octets is accepted; 513 gets 500 5.5.2 and the session goes on', async (t) => {
  const server = await serverFor(t);
  const client = await sessionFor(server);
  // RFC 5321 4.5.3.1.4: 512 octets including the CRLF.
  const exactly512 = 'NOOP ' + 'x'.repeat(512 - 'NOOP '.length - 2);
  assert.equal(Buffer.byteLength(exactly512 + '\r\n'), 512);
  assert.deepEqual(brief(await client.command(exactly512)), [250, '2.0.0 Ok']);
  assert.deepEqual(brief(await client.command(exactly512 + 'x')), [500, '5.5.2 Line too long']);

  // A long MAIL is not half-executed: no transaction was started by it.
  const longMail = `MAIL FROM:<${'a'.repeat(600)}@example.org>`;
  assert.deepEqual(brief(await client.command(longMail)), [500, '5.5.2 Line too long']);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 503);

  // A huge line arriving in pieces is skipped as it comes, then the next command works.
  for (let i = 0; i < 10; i++) await client.sendRawAndFlush('y'.repeat(10_000));
  client.sendRaw('\r\n');
  assert.deepEqual(brief(await client.readReply()), [500, '5.5.2 Line too long']);

  const result = await sendMailOn(client);
  assert.equal(result.code, 250);
  assert.equal((await server.messages('jjordan')).length, 1);
});

async function sendMailOn(client: SmtpClient): Promise<SmtpReply> {
  assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw('Subject: after the long line\r\n\r\nstill working\r\n.\r\n');
  return client.readReply();
}

test('pipelining: the replies come back complete and in order', async (t) => {
  const server = await serverFor(t);
  const client = await sessionFor(server);
  // RFC 2920: MAIL, RCPTs and DATA in one write; the client then waits for 354.
  client.sendRaw(
    'MAIL FROM:<a@example.org>\r\n' +
      'RCPT TO:<jjordan@localhost>\r\n' +
      'RCPT TO:<nobody@localhost>\r\n' +
      'RCPT TO:<jjordan@localhost>\r\n' +
      'DATA\r\n',
  );
  assert.deepEqual(brief(await client.readReply()), [250, '2.1.0 Ok']);
  assert.deepEqual(brief(await client.readReply()), [250, '2.1.5 Ok']);
  assert.deepEqual(brief(await client.readReply()), [550, '5.1.1 <nobody@localhost>: Recipient address rejected: User unknown']);
  assert.deepEqual(brief(await client.readReply()), [250, '2.1.5 Ok']);
  assert.equal((await client.readReply()).code, 354);
  // The message, the dot and the next commands in one write too.
  client.sendRaw('Subject: pipelined\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n');
  const final = await client.readReply();
  assert.equal(final.code, 250);
  assert.match(final.lines[0], /^2\.0\.0 Ok: queued as \w+$/);
  assert.deepEqual(brief(await client.readReply()), [250, '2.0.0 Ok']);
  assert.deepEqual(brief(await client.readReply()), [221, '2.0.0 localhost Bye']);
  await client.waitClosed();
  assert.equal(client.rest(), '', 'nothing after the 221');

  // Two accepted RCPTs for one account: one copy.
  const messages = await server.messages('jjordan');
  assert.equal(messages.length, 1);
  assert.match(messages[0].content.toString(), /\nSubject: pipelined\n\nbody\n$/);
});

test('pipelining: a whole session in one write, including EHLO and two messages', async (t) => {
  const server = await serverFor(t);
  const client = await connectTo(server);
  assert.equal((await client.readReply()).code, 220);
  const one = (n: number) =>
    `MAIL FROM:<a@example.org>\r\nRCPT TO:<jjordan@localhost>\r\nDATA\r\nSubject: ${n}\r\n\r\nmessage ${n}\r\n.\r\n`;
  client.sendRaw('EHLO client.example\r\n' + one(1) + one(2) + 'QUIT\r\n');
  const codes: number[] = [];
  for (;;) {
    const reply = await client.readReply();
    codes.push(reply.code);
    if (reply.code === 221) break;
  }
  assert.deepEqual(codes, [250, 250, 250, 354, 250, 250, 250, 354, 250, 221]);
  const messages = await server.messages('jjordan');
  assert.deepEqual(
    messages.map((m) => m.content.toString().split('\n\n')[1]),
    ['message 1\n', 'message 2\n'],
  );
});

test('too many errors: the maxErrors-th 5xx reply is followed by 421 and the connection closes', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 3 } } });
  const client = await sessionFor(server);
  assert.equal((await client.command('BOGUS 1')).code, 500);
  assert.equal((await client.command('NOOP')).code, 250); // a good command does not clear the count
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 503);
  assert.equal((await client.command('BOGUS 3')).code, 500);
  assert.deepEqual(brief(await client.readReply()), [421, '4.7.0 localhost Too many errors, closing connection']);
  await client.waitClosed();
  assert.ok(server.logLines.some((line) => / refused reason=too-many-errors$/.test(line)));
});

test('over-long lines count as errors: a client that sends only those is cut off at maxErrors', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 3 } } });
  const client = await sessionFor(server);
  const tooLong = 'NOOP ' + 'x'.repeat(600);
  assert.deepEqual(brief(await client.command(tooLong)), [500, '5.5.2 Line too long']);
  assert.deepEqual(brief(await client.command(tooLong)), [500, '5.5.2 Line too long']);
  assert.deepEqual(brief(await client.command(tooLong)), [500, '5.5.2 Line too long']);
  assert.deepEqual(brief(await client.readReply()), [421, '4.7.0 localhost Too many errors, closing connection']);
  await client.waitClosed();
});

test('4xx replies do not count as errors', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxErrors: 2, maxRecipients: 1 } } });
  const client = await sessionFor(server);
  assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  for (let i = 0; i < 5; i++) assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 452);
  assert.equal((await client.command('NOOP')).code, 250);
});

// These wait for real timeouts, so they run side by side.
describe('idle timeout', { concurrency: true }, () => {
  test('a silent client gets 421 4.4.2, then the connection closes', async (t) => {
    const server = await serverFor(t, { config: { limits: { idleTimeoutSeconds: 1 } } });
    const client = await sessionFor(server);
    // Not at once (the server's timer of 1 s against ours of 300 ms, in this process), then 421.
    const replying = client.readReply(3000);
    assert.equal(await Promise.race([replying, new Promise((resolve) => setTimeout(resolve, 300, 'still waiting'))]), 'still waiting');
    const reply = await replying;
    assert.deepEqual(brief(reply), [421, '4.4.2 localhost Idle for too long, closing connection']);
    await client.waitClosed();
  });

  test('silent mid-DATA: the connection closes and nothing is stored', async (t) => {
    const server = await serverFor(t, { config: { limits: { idleTimeoutSeconds: 1 } } });
    const client = await sessionFor(server);
    assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.sendRaw('Subject: never finished\r\n\r\nhalf a message\r\n');
    await client.waitClosed(3000);
    assert.deepEqual(await server.messages('jjordan'), []);
    assert.deepEqual(await server.tmpFiles(), []);
  });

  test('activity keeps a session alive past the idle timeout', async (t) => {
    const server = await serverFor(t, { config: { limits: { idleTimeoutSeconds: 1 } } });
    const client = await sessionFor(server);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal((await client.command('NOOP')).code, 250);
    }
  });

  test('a silent client is still timed out after a delivery that took longer than the idle time', async (t) => {
    const server = await serverFor(t, { config: { limits: { idleTimeoutSeconds: 1, lockTimeoutSeconds: 3 } } });
    const lock = server.mboxPath('jjordan') + '.lock';
    await writeFile(lock, `${process.pid}\n`); // another mbox program holds the mailbox
    const client = await sessionFor(server);
    assert.equal((await client.command('MAIL FROM:<a@example.org>')).code, 250);
    assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.sendRaw('Subject: slow\r\n\r\nslow disk\r\n.\r\n');
    setTimeout(() => void unlink(lock), 1300); // longer than the idle timeout
    assert.equal((await client.readReply(3000)).code, 250);
    // The idle clock ran out while the server itself was busy; it must start again.
    assert.deepEqual(brief(await client.readReply(2500)), [421, '4.4.2 localhost Idle for too long, closing connection']);
    await client.waitClosed();
  });
});

test('maxConnectionsPerIp: the extra connection gets 421 and is closed; a slot frees when a client leaves', async (t) => {
  // Loopback is a trusted client by default (exempt from the per-client count): not here.
  const server = await serverFor(t, { config: { limits: { maxConnectionsPerIp: 2, maxConnections: 10 }, auth: { trustedClients: [] } } });
  const first = await sessionFor(server);
  const second = await sessionFor(server);
  const third = await connectTo(server);
  assert.deepEqual(brief(await third.readReply()), [421, '4.7.0 localhost Too many connections, try again later']);
  await third.waitClosed();
  assert.equal((await second.command('NOOP')).code, 250, 'the refusal did not disturb the others');

  assert.equal((await first.command('QUIT')).code, 221);
  await first.waitClosed();
  await eventually(async () => {
    const next = await connect(server.port);
    const greeting = await next.readReply();
    await next.close();
    return greeting.code === 220;
  }, 'a connection to be accepted again');
});

test('a trusted client (the webmail, a proxy) is held to the total only, not to maxConnectionsPerIp', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxConnectionsPerIp: 1, maxConnections: 3 }, auth: { trustedClients: ['127.0.0.1'] } } });
  const sessions = [await sessionFor(server), await sessionFor(server), await sessionFor(server)];
  for (const session of sessions) assert.equal((await session.command('NOOP')).code, 250, 'three from one trusted address');
  const fourth = await connectTo(server);
  assert.equal((await fourth.readReply()).code, 421, 'the total still holds');
  await fourth.waitClosed();
});

test('maxConnectionsPerIp counts each client address separately', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxConnectionsPerIp: 1, maxConnections: 10 }, auth: { trustedClients: [] } } });
  const first = await sessionFor(server);
  let other: SmtpClient;
  try {
    other = await connectTo(server, { localAddress: '127.0.0.2' });
  } catch (err) {
    t.skip(`127.0.0.2 is not usable here: ${(err as Error).message}`);
    return;
  }
  assert.equal((await other.readReply()).code, 220, 'a second loopback address has its own count');
  const again = await connectTo(server);
  assert.equal((await again.readReply()).code, 421);
  assert.equal((await first.command('NOOP')).code, 250);
});

test('maxConnections: the extra connection gets 421 and is closed', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxConnectionsPerIp: 10, maxConnections: 2 } } });
  await sessionFor(server);
  await sessionFor(server);
  const third = await connectTo(server);
  assert.deepEqual(brief(await third.readReply()), [421, '4.7.0 localhost Too many connections, try again later']);
  await third.waitClosed();
  assert.ok(server.logLines.some((line) => / refused reason=too-many-connections ip=127\.0\.0\.1$/.test(line)));
});

test('an HTTP request as the first line: the connection closes without a reply, nothing is stored', async (t) => {
  const server = await serverFor(t);
  const client = await connectTo(server);
  assert.equal((await client.readReply()).code, 220);
  // A browser tricked into posting to the mail port: the body holds SMTP commands.
  const smtp = 'HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<jjordan@localhost>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n';
  client.sendRaw(
    `POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: ${smtp.length}\r\n\r\n${smtp}`,
  );
  await client.waitClosed();
  assert.equal(client.rest(), '', 'no reply at all to the request');
  assert.deepEqual(await server.messages('jjordan'), []);
  assert.ok(server.logLines.some((line) => / refused reason=http-request-on-mail-port$/.test(line)));
});

test('GET / HTTP/1.1 gets no reply either, and SMTP sent after it never runs', async (t) => {
  const server = await serverFor(t);
  const socket = server.track(await openSocket(server.port));
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  socket.write(
    'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n' +
      'MAIL FROM:<a@example.org>\r\nRCPT TO:<jjordan@localhost>\r\nDATA\r\nhi\r\n.\r\n',
  );
  await new Promise((resolve) => socket.once('close', resolve));
  assert.equal(Buffer.concat(received).toString(), '220 localhost ESMTP jjordan-mail\r\n', 'only the greeting');
  assert.deepEqual(await server.messages('jjordan'), []);
});

test('sendMail helper: a refused recipient is reported, not hidden', async (t) => {
  const server = await serverFor(t);
  const result = await sendMail(server.port, { from: 'a@example.org', to: ['nobody@localhost'], data: 'x\n' });
  assert.equal(result.sent, false);
  assert.equal(result.final.code, 554);
  assert.equal(result.rcpt[0].code, 550);
});
