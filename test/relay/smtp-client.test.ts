// The relay's SMTP client against scripted fake servers on loopback: what it
// sends (bytes, grouping, parameters), how it reads what comes back, and one
// test for each way a delivery can fail.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { deliverMessage } from '../../src/relay/smtp-client.ts';
import type { DeliveryOutcome, DeliveryRequest } from '../../src/relay/smtp-client.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';
import { dotStuff } from '../helpers/smtp-client.ts';
import { startFakeServer } from './fake-smtp-server.ts';
import type { FakeServer, FakeServerOptions } from './fake-smtp-server.ts';

const cert = createSelfSignedCertificate({ hostname: 'localhost' });
const otherCert = createSelfSignedCertificate({ hostname: 'localhost' });

const servers: FakeServer[] = [];
after(async () => {
  for (const server of servers) await server.close();
});

async function fake(options: FakeServerOptions = {}): Promise<FakeServer> {
  const server = await startFakeServer(options);
  servers.push(server);
  return server;
}

const MESSAGE = 'From: a@here.test\nTo: b@there.test\nSubject: dots\n\n.leading dot\n..two dots\n.\nlast line\n';

/** The message in awkward pieces: a chunk ends just before a line-leading dot, another mid-line. */
async function* chunks(text: string, sizes = [47, 1, 9]): AsyncIterable<Buffer> {
  const bytes = Buffer.from(text);
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length];
    yield bytes.subarray(at, at + size);
    at += size;
  }
}

function request(server: FakeServer | number, overrides: Partial<DeliveryRequest> = {}): DeliveryRequest {
  return {
    host: '127.0.0.1',
    port: typeof server === 'number' ? server : server.port,
    heloName: 'relay.here.test',
    from: 'a@here.test',
    recipients: ['b@there.test'],
    message: () => chunks(MESSAGE),
    size: dotStuff(MESSAGE).length,
    eightBit: false,
    smtputf8: false,
    tls: 'none',
    verifyCertificate: false,
    timeouts: { commandMs: 5000, dataStartMs: 5000, dataEndMs: 5000, greetingMs: 5000, connectMs: 5000, dataBlockMs: 5000 },
    ...overrides,
  };
}

/** RFC 5321 4.5.2 backwards: remove the end marker and one leading dot per line, CRLF to LF. */
function unstuff(data: Buffer): string {
  const text = data.toString('utf8');
  assert.ok(text.endsWith('\r\n.\r\n'), 'ends with the end marker');
  const lines = text.slice(0, -'.\r\n'.length).split('\r\n');
  lines.pop(); // after the last CRLF
  return lines.map((line) => (line.startsWith('.') ? line.slice(1) : line)).join('\n') + '\n';
}

function assertFailed(outcome: DeliveryOutcome, stage: string, permanent: boolean): Extract<DeliveryOutcome, { kind: 'failed' }> {
  assert.equal(outcome.kind, 'failed', JSON.stringify(outcome));
  if (outcome.kind !== 'failed') throw new Error('unreachable');
  assert.equal(outcome.stage, stage, JSON.stringify(outcome));
  assert.equal(outcome.permanent, permanent, JSON.stringify(outcome));
  return outcome;
}

function assertDone(outcome: DeliveryOutcome): Extract<DeliveryOutcome, { kind: 'done' }> {
  assert.equal(outcome.kind, 'done', JSON.stringify(outcome));
  if (outcome.kind !== 'done') throw new Error('unreachable');
  return outcome;
}

const verbs = (server: FakeServer, session = 0) => server.sessions[session].commands.map((c) => c.line.split(/[ :]/)[0].toUpperCase());

test('a delivery: the message arrives CRLF, dot-stuffed, and identical once un-stuffed', async () => {
  const server = await fake({ ehlo: ['PIPELINING', 'SIZE 10000000', '8BITMIME', 'ENHANCEDSTATUSCODES'] });
  const log: string[] = [];
  const outcome = assertDone(await deliverMessage(request(server, { recipients: ['b@there.test', 'c@there.test'], log: (line) => log.push(line) })));
  assert.deepEqual(outcome.finalReply, { code: 250, enhanced: '2.0.0', text: 'Ok: queued as FAKE' });
  assert.equal(outcome.tls, false);
  assert.deepEqual(outcome.recipients.map((r) => [r.address, r.delivered, r.permanent]), [['b@there.test', true, false], ['c@there.test', true, false]]);
  const [data] = server.sessions[0].messages;
  assert.deepEqual(data, dotStuff(MESSAGE), 'the independent test helper agrees on every byte');
  assert.equal(unstuff(data), MESSAGE);
  assert.equal(server.sessions[0].commands.find((c) => c.line.startsWith('MAIL'))?.line, `MAIL FROM:<a@here.test> SIZE=${dotStuff(MESSAGE).length}`);
  assert.deepEqual(verbs(server), ['EHLO', 'MAIL', 'RCPT', 'RCPT', 'DATA', 'QUIT']);
  assert.ok(log.includes('C: EHLO relay.here.test') && log.includes('S: 250 2.0.0 Ok: queued as FAKE'), log.join('\n'));
});

test('a message without a final newline and the null sender', async () => {
  const server = await fake();
  assertDone(await deliverMessage(request(server, { from: '', message: () => chunks('Subject: x\n\nno newline') })));
  assert.equal(server.sessions[0].commands.find((c) => c.line.startsWith('MAIL'))?.line, 'MAIL FROM:<>');
  assert.equal(server.sessions[0].messages[0].toString(), 'Subject: x\r\n\r\nno newline\r\n.\r\n');
});

test('PIPELINING offered: MAIL, every RCPT and DATA go in one write (RFC 2920 3.1)', async () => {
  const server = await fake({ ehlo: ['PIPELINING'] });
  assertDone(await deliverMessage(request(server, { recipients: ['b@there.test', 'c@there.test'] })));
  const group = server.sessions[0].reads.find((read) => read.startsWith('MAIL'));
  assert.equal(group, 'MAIL FROM:<a@here.test>\r\nRCPT TO:<b@there.test>\r\nRCPT TO:<c@there.test>\r\nDATA\r\n');
});

test('PIPELINING not offered: one command, one reply, in strict alternation', async () => {
  const server = await fake({ ehlo: ['SIZE 0'] });
  assertDone(await deliverMessage(request(server, { recipients: ['b@there.test', 'c@there.test'] })));
  const reads = server.sessions[0].reads.filter((read) => /^(MAIL|RCPT|DATA)/.test(read));
  assert.deepEqual(reads, ['MAIL FROM:<a@here.test> SIZE=' + dotStuff(MESSAGE).length + '\r\n', 'RCPT TO:<b@there.test>\r\n', 'RCPT TO:<c@there.test>\r\n', 'DATA\r\n']);
});

for (const pipelining of [true, false]) {
  test(`per-recipient replies 250/550/451 (${pipelining ? 'pipelined' : 'one by one'})`, async () => {
    const server = await fake({ ehlo: pipelining ? ['PIPELINING'] : [], rcpt: { 'no@there.test': '550 5.1.1 No such user', 'later@there.test': '451 4.2.0 Greylisted' } });
    const outcome = assertDone(await deliverMessage(request(server, { recipients: ['yes@there.test', 'no@there.test', 'later@there.test'] })));
    assert.deepEqual(
      outcome.recipients.map((r) => [r.address, r.delivered, r.permanent, r.reply.code, r.reply.enhanced]),
      [['yes@there.test', true, false, 250, '2.0.0'], ['no@there.test', false, true, 550, '5.1.1'], ['later@there.test', false, false, 451, '4.2.0']],
    );
    assert.equal(server.sessions[0].messages.length, 1);
  });

  test(`no recipient accepted: no message is sent (${pipelining ? 'pipelined' : 'one by one'})`, async () => {
    const server = await fake({ ehlo: pipelining ? ['PIPELINING'] : [], rcpt: { 'b@there.test': '550 5.1.1 No such user' } });
    const outcome = assertDone(await deliverMessage(request(server)));
    assert.deepEqual(outcome.recipients.map((r) => [r.delivered, r.permanent]), [[false, true]]);
    assert.equal(outcome.finalReply.code, 550);
    assert.equal(server.sessions[0].messages.length, 0);
    assert.equal(verbs(server).at(-1), 'QUIT');
    if (!pipelining) assert.ok(!verbs(server).includes('DATA'));
  });
}

test('pipelined, no recipient accepted, but the server says 354 to DATA: a lone dot ends it (RFC 2920 3.1)', async () => {
  const server = await fake({ ehlo: ['PIPELINING'], rcpt: { 'b@there.test': '450 4.2.1 Mailbox busy' }, replies: { DATA: '354 go ahead' } });
  const outcome = assertDone(await deliverMessage(request(server)));
  assert.deepEqual(outcome.recipients.map((r) => [r.delivered, r.permanent]), [[false, false]]);
  assert.deepEqual(server.sessions[0].messages.map(String), ['.\r\n']);
});

for (const [reply, permanent] of [['451 4.3.0 Try again later', false], ['550 5.7.1 Sender rejected', true]] as const) {
  for (const pipelining of [true, false]) {
    test(`MAIL answered ${reply.slice(0, 3)} (${pipelining ? 'pipelined' : 'one by one'}): the transaction fails, ${permanent ? 'permanently' : 'for now'}`, async () => {
      const server = await fake({ ehlo: pipelining ? ['PIPELINING'] : [], replies: { MAIL: reply } });
      const failed = assertFailed(await deliverMessage(request(server)), 'mail', permanent);
      assert.equal(failed.reply?.code, Number(reply.slice(0, 3)));
      assert.equal(failed.reply?.text, reply.slice(10));
      assert.equal(server.sessions[0].messages.length, 0);
      assert.equal(verbs(server).at(-1), 'QUIT', 'a polite goodbye');
    });
  }

  test(`the final dot answered ${reply.slice(0, 3)}: every accepted recipient fails, ${permanent ? 'permanently' : 'for now'}`, async () => {
    const server = await fake({ ehlo: ['PIPELINING'], replies: { DOT: reply }, rcpt: { 'no@there.test': '550 5.1.1 No such user' } });
    const outcome = assertDone(await deliverMessage(request(server, { recipients: ['b@there.test', 'c@there.test', 'no@there.test'] })));
    assert.equal(outcome.finalReply.code, Number(reply.slice(0, 3)));
    assert.deepEqual(outcome.recipients.map((r) => [r.delivered, r.permanent, r.reply.code]), [
      [false, permanent, Number(reply.slice(0, 3))],
      [false, permanent, Number(reply.slice(0, 3))],
      [false, true, 550],
    ]);
  });
}

test('DATA refused with 554 after accepted recipients: the transaction fails permanently', async () => {
  const server = await fake({ replies: { DATA: '554 5.3.0 No thanks' } });
  assertFailed(await deliverMessage(request(server)), 'data', true);
});

test('a 554 greeting (no service here) fails permanently; a 421 temporarily', async () => {
  const refusing = await fake({ greeting: '554 5.3.2 No SMTP service here' });
  assertFailed(await deliverMessage(request(refusing)), 'greeting', true);
  const busy = await fake({ greeting: '421 4.3.2 Too busy' });
  assertFailed(await deliverMessage(request(busy)), 'greeting', false);
});

test('multi-line replies are read whole, greeting included', async () => {
  const server = await fake({ greeting: '220-fake.test ESMTP\n220-no UCE\n220 welcome', replies: { DOT: '250-2.0.0 Ok\n250-2.0.0 queued\n250 2.0.0 as FAKE' } });
  const outcome = assertDone(await deliverMessage(request(server)));
  assert.deepEqual(outcome.finalReply, { code: 250, enhanced: '2.0.0', text: 'Ok queued as FAKE' });
});

test('connection refused: a temporary failure at connect', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as { port: number }).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const failed = assertFailed(await deliverMessage(request(port)), 'connect', false);
  assert.match(failed.error ?? '', /ECONNREFUSED/);
});

test('the server drops the connection mid-DATA: a temporary failure', async () => {
  const server = await fake({ dropAt: 'BODY' });
  const big = ('x'.repeat(999) + '\n').repeat(4000); // 4 MB, more than the socket buffers take
  const outcome = await deliverMessage(request(server, { message: () => chunks(big, [65536]), size: big.length * 1.001 }));
  assert.equal(outcome.kind, 'failed', JSON.stringify(outcome));
  if (outcome.kind === 'failed') {
    assert.ok(outcome.stage === 'data' || outcome.stage === 'dot', outcome.stage);
    assert.equal(outcome.permanent, false);
  }
});

test('the server drops the connection before answering MAIL', async () => {
  const server = await fake({ dropAt: 'MAIL' });
  assertFailed(await deliverMessage(request(server)), 'mail', false);
});

test('a silent server: the greeting times out', async () => {
  const server = await fake({ greeting: null });
  const failed = assertFailed(await deliverMessage(request(server, { timeouts: { greetingMs: 150 } })), 'greeting', false);
  assert.match(failed.error ?? '', /no reply within 150 ms/, 'ended by the greeting timeout, not by the server');
});

test('a server that stops reading mid-DATA: back-pressure, then the data block timeout', async () => {
  const server = await fake({ stallData: true });
  const total = 256 * 1024 * 1024;
  let pulled = 0;
  async function* huge(): AsyncIterable<Buffer> {
    const block = Buffer.from(('y'.repeat(1023) + '\n').repeat(64)); // 64 KiB
    for (; pulled < total; pulled += block.length) yield block;
  }
  const outcome = await deliverMessage(request(server, { message: huge, size: total, timeouts: { dataBlockMs: 300 } }));
  const failed = assertFailed(outcome, 'data', false);
  assert.match(failed.error ?? '', /timed out/);
  assert.ok(pulled < 64 * 1024 * 1024, `only what the socket buffers hold was read, not ${pulled} bytes`);
});

test('an error while reading the stored message: the connection is dropped without the end marker', async () => {
  const server = await fake();
  async function* broken(): AsyncIterable<Buffer> {
    yield Buffer.from('Subject: half\n\n');
    throw new Error('disk on fire');
  }
  const failed = assertFailed(await deliverMessage(request(server, { message: broken })), 'data', false);
  assert.match(failed.error ?? '', /disk on fire/);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(server.sessions[0].messages.length, 0, 'the server never saw the end of a message');
});

test('STARTTLS opportunistic: used when offered, EHLO again, the transaction over TLS', async () => {
  const server = await fake({ ehlo: ['PIPELINING', 'STARTTLS'], tls: cert });
  const outcome = assertDone(await deliverMessage(request(server, { tls: 'opportunistic' })));
  assert.equal(outcome.tls, true);
  assert.deepEqual(verbs(server), ['EHLO', 'STARTTLS', 'EHLO', 'MAIL', 'RCPT', 'DATA', 'QUIT']);
  assert.ok(server.sessions[0].commands.filter((c) => !c.tls).length === 2, 'only EHLO and STARTTLS in clear');
  assert.equal(unstuff(server.sessions[0].messages[0]), MESSAGE);
});

test('a reply injected in clear after the 220 to STARTTLS is thrown away (RFC 3207 4.2)', async () => {
  // If it were kept, it would be read as the answer to the EHLO sent over TLS
  // and every later reply would answer the command before it.
  const server = await fake({ ehlo: ['STARTTLS'], tls: cert, injectAfterStarttls: '250 fake.test' });
  const log: string[] = [];
  const outcome = assertDone(await deliverMessage(request(server, { tls: 'required', log: (l) => log.push(l) })));
  assert.equal(outcome.tls, true);
  assert.ok(log.includes('discarding bytes sent in clear after STARTTLS'), log.join('\n'));
  assert.equal(unstuff(server.sessions[0].messages[0]), MESSAGE);
});

test('STARTTLS opportunistic, not offered: delivered in clear', async () => {
  const server = await fake({ ehlo: ['PIPELINING'] });
  assert.equal(assertDone(await deliverMessage(request(server, { tls: 'opportunistic' }))).tls, false);
});

test('STARTTLS required but not offered: a temporary failure, nothing sent', async () => {
  const server = await fake({ ehlo: ['PIPELINING'] });
  const failed = assertFailed(await deliverMessage(request(server, { tls: 'required' })), 'starttls', false);
  assert.equal(failed.status, '4.7.4');
  assert.equal(failed.reply, undefined, 'our verdict, not a reply the server sent');
  assert.deepEqual(verbs(server), ['EHLO', 'QUIT']);
});

test('STARTTLS required and refused with 5xx: still temporary (our policy, not the message)', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], replies: { STARTTLS: '554 5.5.1 No TLS today' } });
  assertFailed(await deliverMessage(request(server, { tls: 'required' })), 'starttls', false);
});

test('verifyCertificate with the right CA succeeds; with a wrong one the handshake fails', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], tls: cert });
  const good = assertDone(await deliverMessage(request(server, { tls: 'required', verifyCertificate: true, ca: cert.certPem, servername: 'localhost' })));
  assert.equal(good.tls, true);
  const failed = assertFailed(
    await deliverMessage(request(server, { tls: 'required', verifyCertificate: true, ca: otherCert.certPem, servername: 'localhost' })),
    'starttls',
    false,
  );
  assert.match(failed.error ?? '', /certificate|signature/i);
  assert.ok(!server.sessions[1].commands.some((c) => c.line.startsWith('MAIL')));
});

test('opportunistic TLS without verification whose handshake fails: retried once in clear (RFC 7435, as Postfix)', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], brokenTls: true });
  const log: string[] = [];
  const outcome = assertDone(await deliverMessage(request(server, { tls: 'opportunistic', verifyCertificate: false, log: (l) => log.push(l) })));
  assert.equal(outcome.tls, false);
  assert.equal(server.sessions.length, 2);
  assert.ok(log.some((line) => line.includes('retrying without TLS')));
});

test('opportunistic TLS with verification: a certificate that fails verification fails the host (4.7.5), never a retry in clear', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], tls: cert });
  const log: string[] = [];
  const failed = assertFailed(
    await deliverMessage(request(server, { tls: 'opportunistic', verifyCertificate: true, ca: otherCert.certPem, servername: 'localhost', log: (l) => log.push(l) })),
    'starttls',
    false,
  );
  assert.equal(failed.status, '4.7.5');
  assert.equal(failed.tls, false);
  assert.equal(server.sessions.length, 1, 'no second connection in clear');
  assert.ok(!server.sessions[0].commands.some((c) => c.line.startsWith('MAIL')));
  assert.ok(!log.some((line) => line.includes('retrying without TLS')), log.join('\n'));
});

test('opportunistic TLS with verification and a handshake that breaks: no retry in clear either', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], brokenTls: true });
  const failed = assertFailed(await deliverMessage(request(server, { tls: 'opportunistic', verifyCertificate: true })), 'starttls', false);
  assert.equal(failed.status, '4.7.5');
  assert.equal(server.sessions.length, 1);
});

test('implicit TLS with a certificate that fails verification: a temporary failure with 4.7.5, nothing sent', async () => {
  const server = await fake({ implicitTls: true, tls: cert, ehlo: ['AUTH PLAIN'], auth: { username: 'relay', password: 's3cret' } });
  const failed = assertFailed(
    await deliverMessage(request(server, { tls: 'implicit', verifyCertificate: true, ca: otherCert.certPem, servername: 'localhost', auth: { username: 'relay', password: 's3cret' } })),
    'connect',
    false,
  );
  assert.equal(failed.status, '4.7.5');
  assert.match(failed.error ?? '', /certificate|signature/i);
  assert.deepEqual(server.sessions.flatMap((s) => s.commands), [], 'not even EHLO');
});

test('implicit TLS (RFC 8314), certificate verified', async () => {
  const server = await fake({ implicitTls: true, tls: cert, ehlo: ['PIPELINING'] });
  const outcome = assertDone(await deliverMessage(request(server, { tls: 'implicit', verifyCertificate: true, ca: cert.certPem, servername: 'localhost' })));
  assert.equal(outcome.tls, true);
  assert.equal(unstuff(server.sessions[0].messages[0]), MESSAGE);
});

test('AUTH PLAIN over TLS with the right credentials; the password never reaches the log', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], ehloAfterTls: ['AUTH PLAIN LOGIN'], tls: cert, auth: { username: 'relay', password: 's3cret' } });
  const log: string[] = [];
  assertDone(await deliverMessage(request(server, { tls: 'required', auth: { username: 'relay', password: 's3cret' }, log: (l) => log.push(l) })));
  assert.equal(server.sessions[0].authenticated, 'relay');
  assert.ok(server.sessions[0].commands.find((c) => c.line.startsWith('AUTH'))?.tls);
  const secrets = ['s3cret', Buffer.from('\0relay\0s3cret').toString('base64')];
  assert.ok(!log.some((line) => secrets.some((secret) => line.includes(secret))), log.join('\n'));
  assert.ok(log.includes('C: AUTH PLAIN ****'));
});

test('AUTH LOGIN when the server offers only that: both prompts answered, neither the name nor the password in the log', async () => {
  const server = await fake({ ehlo: ['STARTTLS'], ehloAfterTls: ['AUTH LOGIN'], tls: cert, auth: { username: 'relay', password: 's3cret' } });
  const log: string[] = [];
  assertDone(await deliverMessage(request(server, { tls: 'required', auth: { username: 'relay', password: 's3cret' }, log: (l) => log.push(l) })));
  assert.equal(server.sessions[0].authenticated, 'relay');
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  assert.deepEqual(server.sessions[0].commands.map((c) => c.line).filter((line) => line.startsWith('AUTH') || line === b64('relay') || line === b64('s3cret')), ['AUTH LOGIN', b64('relay'), b64('s3cret')]);
  const secrets = ['s3cret', b64('s3cret'), b64('relay')];
  assert.ok(!log.some((line) => secrets.some((secret) => line.includes(secret))), log.join('\n'));
  assert.deepEqual(log.filter((line) => line.startsWith('C: AUTH') || line === 'C: ****'), ['C: AUTH LOGIN', 'C: ****', 'C: ****']);
  // And a wrong password there: the same temporary failure as with PLAIN.
  const failed = assertFailed(await deliverMessage(request(server, { tls: 'required', auth: { username: 'relay', password: 'wrong' } })), 'auth', false);
  assert.equal(failed.reply?.code, 535);
});

test('AUTH with wrong credentials: a temporary failure (a config error should not bounce mail)', async () => {
  const server = await fake({ ehlo: ['STARTTLS', 'AUTH PLAIN'], tls: cert, auth: { username: 'relay', password: 's3cret' } });
  const failed = assertFailed(await deliverMessage(request(server, { tls: 'required', auth: { username: 'relay', password: 'wrong' } })), 'auth', false);
  assert.equal(failed.reply?.code, 535);
});

test('AUTH is never sent in clear, even when the server offers it there', async () => {
  const server = await fake({ ehlo: ['AUTH PLAIN LOGIN', 'PIPELINING'], auth: { username: 'relay', password: 's3cret' } });
  for (const tls of ['none', 'opportunistic'] as const) {
    assertFailed(await deliverMessage(request(server, { tls, auth: { username: 'relay', password: 's3cret' } })), 'auth', false);
  }
  for (const session of server.sessions) {
    assert.ok(!session.commands.some((c) => /^(AUTH|MAIL)/.test(c.line)), JSON.stringify(session.commands));
  }
});

test('a message larger than the server\'s SIZE is refused before MAIL (RFC 1870, 5.3.4)', async () => {
  const server = await fake({ ehlo: ['SIZE 1000', 'PIPELINING'] });
  const failed = assertFailed(await deliverMessage(request(server, { size: 1001 })), 'mail', true);
  assert.equal(failed.status, '5.3.4');
  assert.equal(failed.reply, undefined, 'our verdict, not a reply the server sent');
  assert.match(failed.error ?? '', /1001 octets is larger than the server's limit of 1000/);
  assert.deepEqual(verbs(server), ['EHLO', 'QUIT']);
});

test('BODY=8BITMIME and SMTPUTF8 are asked for when needed and offered', async () => {
  const server = await fake({ ehlo: ['8BITMIME', 'SMTPUTF8'] });
  assertDone(await deliverMessage(request(server, { eightBit: true, smtputf8: true, from: 'jörg@here.test' })));
  assert.equal(server.sessions[0].commands.find((c) => c.line.startsWith('MAIL'))?.line, 'MAIL FROM:<jörg@here.test> BODY=8BITMIME SMTPUTF8');
});

test('HELO fallback when EHLO gets a 5xx; no extensions then, so 8-bit and UTF-8 mail fail permanently', async () => {
  const server = await fake({ replies: { EHLO: '502 5.5.2 Error: command not recognized' } });
  assertDone(await deliverMessage(request(server)));
  assert.deepEqual(verbs(server), ['EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'QUIT']);
  assert.equal(server.sessions[0].commands[2].line, 'MAIL FROM:<a@here.test>');
  assert.equal(assertFailed(await deliverMessage(request(server, { eightBit: true })), 'mail', true).status, '5.6.3');
  assert.equal(assertFailed(await deliverMessage(request(server, { smtputf8: true })), 'mail', true).status, '5.6.7');
});

test('EHLO answered 4xx: a temporary failure, no HELO', async () => {
  const server = await fake({ replies: { EHLO: '421 4.3.2 Shutting down' } });
  assertFailed(await deliverMessage(request(server)), 'ehlo', false);
  assert.ok(!verbs(server).includes('HELO'));
});

test('an address with a line break cannot inject a command', async () => {
  const server = await fake({ ehlo: ['PIPELINING'] });
  assertFailed(await deliverMessage(request(server, { recipients: ['b@there.test>\r\nRCPT TO:<evil@there.test'] })), 'mail', true);
  assert.ok(!verbs(server).includes('RCPT'));
});
