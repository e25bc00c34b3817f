// The queue runner (src/relay/runner.ts) against real neighbours on loopback:
// the test DNS server answers Node's resolver, scripted fake SMTP servers play
// the MX hosts, local bounces land in real mbox files. The
// runner is built by relayDeps(), as the relay process builds it; only the
// clock is the test's, so retries and expiry are tested without sleeping.
//
// Every MX host resolves to a 127.0.0.x address and the runner connects to
// relay.port on it. The fake server listens on 127.0.0.1 only, so a second
// server for another MX is reached through aliasPort() on 127.0.0.2 (same
// port number), and 127.0.0.3 has nothing listening: "connection refused".
//
// TLS and the smarthost are in runner-tls.test.ts, DKIM in runner-dkim.test.ts.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { startTestServer } from '../helpers/test-server.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import type { FakeServerOptions } from './fake-smtp-server.ts';
import {
  aliasPort, commandsOf, HOUR, inbox, MINUTE, queueFiles, queueMessage, readDsn, readStateFile, received, RunnerTestBed, T0,
} from './relay-helpers.ts';
import { createLogger } from '../../src/log.ts';
import { parseQueueEnvelope, queueDir } from '../../src/queue/queue-file.ts';
import { listQueue } from '../../src/queue/queue-state.ts';
import { QueueRunner } from '../../src/relay/runner.ts';
import { relayDeps } from '../../src/relay/main.ts';
import { retryDelayMs } from '../../src/relay/schedule.ts';

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({
    'remote.example': { MX: [[10, 'mx1.remote.example']] },
    'mx1.remote.example': { A: ['127.0.0.1'] },
    // Listed backup first: the order of the answer must not matter, only the preference.
    'pref.example': { MX: [[20, 'backup.pref.example'], [10, 'primary.pref.example']] },
    'primary.pref.example': { A: ['127.0.0.1'] },
    'backup.pref.example': { A: ['127.0.0.2'] },
    'refusing.example': { MX: [[10, 'dead.refusing.example'], [20, 'live.refusing.example']] },
    'dead.refusing.example': { A: ['127.0.0.3'] },
    'live.refusing.example': { A: ['127.0.0.1'] },
    'busy.example': { MX: [[10, 'busy.busy.example'], [20, 'spare.busy.example']] },
    'busy.busy.example': { A: ['127.0.0.1'] },
    'spare.busy.example': { A: ['127.0.0.2'] },
    'implicit.example': { A: ['127.0.0.1'] },
    'nullmx.example': { MX: [[0, '']] },
    'elsewhere.example': { MX: [[10, 'mx.elsewhere.example']] },
    'mx.elsewhere.example': { A: ['127.0.0.1'] },
  });
});
after(() => dns.close());

const bed = new RunnerTestBed(() => dns.port);
afterEach(bed.closeAll);
const { defer, fake, setup } = bed;

// --- Where the mail goes -------------------------------------------------

test('MX preference: the lowest preference is tried first, whatever the order of the DNS answer', async () => {
  const { mx, env } = await setup();
  const backup = await fake();
  const alias = await aliasPort('127.0.0.2', mx.port, backup.port);
  defer(() => alias.close());
  const id = await queueMessage(env.dataDir, { to: ['friend@pref.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(received(mx).length, 1, 'the preference-10 host got it');
  assert.equal(alias.connections, 0, 'the preference-20 host was never contacted');
  assert.equal(backup.sessions.length, 0);
});

test('MX fallback: the first MX refuses the connection, the second one gets the message', async () => {
  const { mx, env } = await setup();
  const id = await queueMessage(env.dataDir, { to: ['friend@refusing.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  const [message] = received(mx);
  assert.match(message, /^Subject: relay test$/m);
  assert.ok(commandsOf(mx).includes('RCPT TO:<friend@refusing.example>'));
  assert.ok(
    env.logLines.some((l) => /attempt .*host=dead\.refusing\.example stage=connect/.test(l)),
    'the refused connection to the first MX is logged',
  );
  assert.deepEqual(await queueFiles(env.dataDir), [], 'message and state are gone');
});

test('MX fallback: the first MX greets with 421, the second one gets the message', async () => {
  const { mx: busy, env } = await setup({ fake: { greeting: '421 4.3.2 Too busy, try another MX' } });
  const spare = await fake();
  const alias = await aliasPort('127.0.0.2', busy.port, spare.port);
  defer(() => alias.close());
  const id = await queueMessage(env.dataDir, { to: ['friend@busy.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(busy.sessions.length, 1, 'the first MX was tried');
  assert.ok(!commandsOf(busy).some((c) => c.startsWith('MAIL')), 'and got no transaction');
  assert.equal(alias.connections, 1, 'one connection to the second MX');
  assert.equal(received(spare).length, 1, 'the second MX got the message');
  assert.ok(commandsOf(spare).includes('RCPT TO:<friend@busy.example>'));
});

test('implicit MX: a domain with no MX record but an address gets its mail there', async () => {
  const { mx, env } = await setup();
  const id = await queueMessage(env.dataDir, { to: ['someone@implicit.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(received(mx).length, 1);
  assert.ok(dns.queries.some((q) => q.name === 'implicit.example' && q.type === 'MX'));
  assert.ok(dns.queries.some((q) => q.name === 'implicit.example' && q.type === 'A'));
});

test('Null MX: an immediate permanent failure, bounced into the local sender\'s INBOX (5.1.10)', async () => {
  const { mx, env } = await setup();
  const id = await queueMessage(env.dataDir, { to: ['nobody@nullmx.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed', 'no retry for a Null MX');
  assert.equal(mx.sessions.length, 0, 'no connection anywhere');
  const mails = await inbox(env.dataDir, 'jjordan');
  assert.equal(mails.length, 1);
  assert.equal(mails[0].envelopeFrom, 'MAILER-DAEMON');
  // Delivered like any local mail (store/local-delivery.ts): Return-Path, then a
  // Received: field saying it was made here, as Postfix's local pickup writes it.
  assert.match(
    mails[0].content,
    /^Return-Path: <>\nReceived: from localhost\n\tby mail\.example\.org \(jjordan-mail\) with local id [0-9A-Z]+\n\tfor <jjordan@example\.org>;\n\t[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n/,
  );
  const dsn = readDsn(mails[0].content);
  assert.equal(dsn.subject, 'Undelivered Mail Returned to Sender');
  assert.equal(dsn.to, '<jjordan@example.org>');
  assert.equal(dsn.recipients.length, 1);
  assert.equal(dsn.recipients[0].get('final-recipient'), 'rfc822; nobody@nullmx.example');
  assert.equal(dsn.recipients[0].get('action'), 'failed');
  assert.equal(dsn.recipients[0].get('status'), '5.1.10');
  assert.deepEqual(await queueFiles(env.dataDir), []);
});

// --- Per-recipient results -----------------------------------------------

test('550 for one recipient, 250 for the other: one delivered, one bounced with the original header', async () => {
  const { mx, env } = await setup({ fake: { rcpt: { 'bad@remote.example': '550 5.1.1 <bad@remote.example>: Recipient address rejected' } } });
  const id = await queueMessage(env.dataDir, { to: ['good@remote.example', 'bad@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');

  assert.equal(received(mx).length, 1, 'the message went out once, for the accepted recipient');
  const rcpts = commandsOf(mx).filter((c) => c.startsWith('RCPT'));
  assert.deepEqual(rcpts, ['RCPT TO:<good@remote.example>', 'RCPT TO:<bad@remote.example>']);

  const mails = await inbox(env.dataDir, 'jjordan');
  assert.equal(mails.length, 1, 'one bounce');
  const dsn = readDsn(mails[0].content);
  assert.equal(dsn.recipients.length, 1, 'only the failed recipient is reported');
  const [bad] = dsn.recipients;
  assert.equal(bad.get('final-recipient'), 'rfc822; bad@remote.example');
  assert.equal(bad.get('action'), 'failed');
  assert.equal(bad.get('status'), '5.1.1');
  assert.match(bad.get('diagnostic-code') ?? '', /^smtp; 550 5\.1\.1 <bad@remote\.example>: Recipient address rejected$/);
  assert.equal(bad.get('remote-mta'), 'dns; mx1.remote.example');
  assert.match(dsn.text, /<bad@remote\.example>: host mx1\.remote\.example said: 550/);
  assert.doesNotMatch(dsn.text, /good@remote\.example/);
  assert.match(dsn.originalHeader, /^Subject: relay test$/m);
  assert.match(dsn.originalHeader, /^Message-ID: <relay-test@example\.org>$/m);
  assert.doesNotMatch(dsn.originalHeader, /Hello over there/, 'the header only, not the body');

  assert.deepEqual(await queueFiles(env.dataDir), [], 'queue file and state removed');
  assert.ok(env.logLines.some((l) => /done id=\S+ delivered=1 failed=1/.test(l)));
});

test('451: state saved with attempts 1 and the next attempt 5 minutes on; not retried early; delivered when due', async () => {
  const options: FakeServerOptions = { rcpt: { 'later@remote.example': '451 4.3.0 Temporary local problem' } };
  const { mx, env } = await setup({ fake: options });
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });

  assert.equal(await env.runner.processMessage(id), 'deferred');
  const state = await readStateFile(env.dataDir, id);
  assert.ok(state);
  assert.equal(state.attempts, 1);
  assert.equal(state.lastAttempt, T0.toISOString());
  assert.equal(state.nextAttempt, new Date(T0.getTime() + 5 * MINUTE).toISOString());
  assert.equal(state.recipients[0].status, 'pending');
  assert.equal(state.recipients[0].statusCode, '4.3.0');
  assert.match(state.recipients[0].lastReply ?? '', /^451 4\.3\.0 Temporary local problem$/);
  assert.deepEqual(await env.queued(), [id]);
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0, 'a temporary failure is no bounce');

  env.clock.set(new Date(T0.getTime() + 5 * MINUTE - 1));
  assert.equal(await env.runner.processMessage(id), 'not-due');
  await env.runner.runDue();
  assert.equal(mx.sessions.length, 1, 'no connection before the retry time');

  delete options.rcpt!['later@remote.example']; // the fake server reads its options on every RCPT
  env.clock.set(new Date(T0.getTime() + 5 * MINUTE));
  await env.runner.runDue();
  assert.equal(mx.sessions.length, 2);
  assert.equal(received(mx).length, 1, 'delivered on the retry');
  assert.deepEqual(await env.queued(), []);
  assert.deepEqual(await queueFiles(env.dataDir), []);
});

test('the retry schedule grows: 5, 10, 20, 40 and 80 minutes after attempts 1 to 5', async () => {
  const { mx, env } = await setup({ fake: { rcpt: { 'later@remote.example': '451 4.3.0 Try again later' } } });
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });
  const expected = [5, 10, 20, 40, 80];
  for (const [i, minutes] of expected.entries()) {
    const attemptAt = env.clock.now.getTime();
    assert.equal(await env.runner.processMessage(id), 'deferred');
    const state = (await readStateFile(env.dataDir, id))!;
    assert.equal(state.attempts, i + 1);
    assert.equal(new Date(state.nextAttempt).getTime() - attemptAt, minutes * MINUTE, `after attempt ${i + 1}`);
    env.clock.set(new Date(new Date(state.nextAttempt).getTime() - 1));
    assert.equal(await env.runner.processMessage(id), 'not-due');
    env.clock.set(state.nextAttempt);
  }
  assert.equal(mx.sessions.length, 5, 'one connection per attempt, none early');
  // Beyond: 2h40, then capped at every 4 hours.
  assert.deepEqual([6, 7, 8, 30].map((n) => retryDelayMs(n) / MINUTE), [160, 240, 240, 240]);
});

test('expiry: past maxAgeHours a still-deferred recipient fails with 4.4.7 and is bounced', async () => {
  const { mx, env } = await setup({
    fake: { rcpt: { 'later@remote.example': '451 4.3.0 Still not today' } },
    config: { relay: { maxAgeHours: 120, delayWarningHours: 0 } },
  });
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });
  env.clock.set(new Date(T0.getTime() + 119 * HOUR));
  assert.equal(await env.runner.processMessage(id), 'deferred', 'not expired at 119 hours');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0);

  env.clock.set(new Date(T0.getTime() + 120 * HOUR + MINUTE));
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(mx.sessions.length, 2, 'a last attempt was made');
  const mails = await inbox(env.dataDir, 'jjordan');
  assert.equal(mails.length, 1);
  const dsn = readDsn(mails[0].content);
  assert.equal(dsn.subject, 'Undelivered Mail Returned to Sender');
  assert.equal(dsn.recipients[0].get('final-recipient'), 'rfc822; later@remote.example');
  assert.equal(dsn.recipients[0].get('action'), 'failed');
  assert.equal(dsn.recipients[0].get('status'), '4.4.7');
  assert.match(dsn.recipients[0].get('diagnostic-code') ?? '', /expired after 120 hours; last error: 451 4\.3\.0 Still not today/);
  assert.deepEqual(await queueFiles(env.dataDir), []);
});

test('delay warning: after delayWarningHours the sender gets one "delayed" report, not a second', async () => {
  const { env } = await setup({
    fake: { rcpt: { 'later@remote.example': '451 4.3.0 Greylisted, come back later' } },
    config: { relay: { delayWarningHours: 4 } },
  });
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0, 'no warning at once');

  env.clock.set(new Date(T0.getTime() + 4 * HOUR));
  assert.equal(await env.runner.processMessage(id), 'deferred');
  const mails = await inbox(env.dataDir, 'jjordan');
  assert.equal(mails.length, 1);
  const dsn = readDsn(mails[0].content);
  assert.equal(dsn.subject, 'Delayed Mail (still being retried)');
  assert.match(dsn.text, /THIS IS A WARNING ONLY/);
  assert.equal(dsn.recipients[0].get('action'), 'delayed');
  assert.equal(dsn.recipients[0].get('status'), '4.3.0');
  assert.ok(dsn.recipients[0].has('will-retry-until'));
  assert.equal((await readStateFile(env.dataDir, id))!.delayWarned, true);

  env.clock.set((await readStateFile(env.dataDir, id))!.nextAttempt);
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 1, 'still only one warning');
  assert.deepEqual(await env.queued(), [id], 'the message itself is still queued');
});

// --- Who gets a bounce ---------------------------------------------------

test('no bounce for the null sender <>: removed, nothing delivered anywhere, logged as no-bounce', async () => {
  const { mx, env } = await setup({ fake: { rcpt: { 'bad@remote.example': '550 5.1.1 No such user' } } });
  const id = await queueMessage(env.dataDir, { from: '', to: ['bad@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.ok(commandsOf(mx).includes('MAIL FROM:<>'), 'sent with the null reverse-path');
  assert.equal(received(mx).length, 0);
  assert.deepEqual(await queueFiles(env.dataDir), [], 'no bounce queued');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0);
  assert.ok(env.logLines.some((l) => new RegExp(`no-bounce id=${id} reason="null sender" action=failed`).test(l)));
});

test('a bounce for a remote sender is queued as a new message from <>, and that one can be delivered', async () => {
  const { mx, env } = await setup({ fake: { rcpt: { 'bad@remote.example': '550 5.1.1 No such user' } } });
  const id = await queueMessage(env.dataDir, { from: 'someone@elsewhere.example', to: ['bad@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0, 'not delivered locally');

  const ids = await env.queued();
  assert.equal(ids.length, 1);
  assert.notEqual(ids[0], id);
  const bytes = await readFile(join(queueDir(env.dataDir), `${ids[0]}.msg`));
  const { envelope, bodyOffset } = parseQueueEnvelope(bytes);
  assert.equal(envelope.from, '', 'a bounce is sent from <> (RFC 5321 4.5.5)');
  assert.deepEqual(envelope.to, ['someone@elsewhere.example']);
  assert.equal(envelope.body, '7bit', 'an ASCII report needs no 8BITMIME');
  const dsn = readDsn(bytes.subarray(bodyOffset).toString('utf8'));
  assert.equal(dsn.recipients[0].get('final-recipient'), 'rfc822; bad@remote.example');

  // The queued bounce goes out like any mail, to a receiver that offers no extensions at all.
  env.clock.advance(MINUTE);
  assert.equal(await env.runner.processMessage(ids[0]), 'removed');
  assert.ok(commandsOf(mx).includes('MAIL FROM:<>'));
  assert.ok(commandsOf(mx).includes('RCPT TO:<someone@elsewhere.example>'));
  const [bounce] = received(mx);
  assert.match(bounce, /^Subject: Undelivered Mail Returned to Sender$/m);
  assert.deepEqual(await env.queued(), []);
});

// --- End to end ----------------------------------------------------------

test('end to end: a user submits over TLS with AUTH, the queue file appears, the runner delivers it to the MX', async () => {
  const mx = await fake({ ehlo: ['PIPELINING', '8BITMIME'] });
  const server = await startTestServer({ config: { relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mx.port } } });
  defer(() => server.close());

  const socket = tlsConnect({ port: server.server.smtp.ports.smtps, host: '127.0.0.1', ca: server.server.tls.certPem, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  const client = server.track(new SmtpClient(socket));
  assert.equal((await client.readReply()).code, 220);
  assert.equal((await client.command('EHLO client.example')).code, 250);
  assert.equal((await client.command(`AUTH PLAIN ${Buffer.from('\0jjordan\0secret').toString('base64')}`)).code, 235);
  assert.equal((await client.command('MAIL FROM:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('RCPT TO:<friend@remote.example>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw('From: jjordan@localhost\r\nTo: friend@remote.example\r\nSubject: end to end\r\n\r\nall the way\r\n..dot\r\n.\r\n');
  assert.equal((await client.readReply()).code, 250);
  await client.command('QUIT');

  const ids = await listQueue(server.dataDir);
  assert.equal(ids.length, 1, 'the queue file is there after the 250');
  const log = createLogger({ quiet: true });
  const runner = new QueueRunner(await relayDeps(server.config, log));
  await runner.runDue();

  assert.deepEqual(await listQueue(server.dataDir), []);
  assert.ok(commandsOf(mx).includes('MAIL FROM:<jjordan@localhost>'));
  assert.ok(commandsOf(mx).includes('RCPT TO:<friend@remote.example>'));
  const [message] = received(mx);
  assert.match(message, /^Received: from client\.example \(\[127\.0\.0\.1\]\)\n/, 'the trace field first, no Return-Path');
  // RFC 5321 4.4: only final delivery adds Return-Path; a copy that travels on has none.
  assert.doesNotMatch(message, /^Return-Path:/im);
  assert.match(message, /\n\t\(Authenticated sender: jjordan\)\n/);
  assert.match(message, new RegExp(`\\n\\tby localhost \\(jjordan-mail\\) with ESMTPSA id ${ids[0]}\\n\\tfor <friend@remote\\.example>;`));
  assert.ok(message.endsWith('\nSubject: end to end\n\nall the way\n.dot\n'), 'the message as submitted');
});

// --- Bad input ---------------------------------------------------------------

test('a corrupt queue file or .state file is logged and left for the admin; the other messages still go', async () => {
  const { mx, env } = await setup();
  const stateBroken = await queueMessage(env.dataDir, { to: ['a@remote.example'] });
  await writeFile(join(queueDir(env.dataDir), 'BROKEN1.msg'), 'not a queue file\n');
  await writeFile(join(queueDir(env.dataDir), `${stateBroken}.state`), '{"attempts": 1, "recip');
  const good = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  await env.runner.runDue();
  assert.equal(received(mx).length, 1, 'only the good message was sent: a corrupt state must not mean "deliver to all again"');
  assert.deepEqual(await env.queued(), ['BROKEN1', stateBroken].sort());
  assert.equal(env.logLines.filter((l) => /error id=BROKEN1/.test(l)).length, 1);
  assert.ok(env.logLines.some((l) => new RegExp(`error id=${stateBroken} .*corrupt queue state`).test(l)));
  assert.ok(!(await env.queued()).includes(good));
  // Not tried (nor logged) again at every scan; after the retry delay, yes.
  await env.runner.runDue();
  assert.equal(env.logLines.filter((l) => /error id=BROKEN1/.test(l)).length, 1);
  env.clock.advance(retryDelayMs(1));
  await env.runner.runDue();
  assert.equal(env.logLines.filter((l) => /error id=BROKEN1/.test(l)).length, 2);
});

test('a bounce that cannot be written keeps the results: the delivered recipient is not sent the message again', async () => {
  const { mx, env } = await setup({ fake: { rcpt: { 'bad@remote.example': '550 5.1.1 No such user' } } });
  let failBounce = true;
  const deliverLocally = env.deps.deliverLocally;
  const runner = new QueueRunner({
    ...env.deps,
    deliverLocally: async (address, message) => {
      if (failBounce) throw new Error('ENOSPC: no space left on device');
      return deliverLocally(address, message);
    },
  });
  const id = await queueMessage(env.dataDir, { to: ['good@remote.example', 'bad@remote.example'] });
  assert.equal(await runner.processMessage(id), 'deferred');
  assert.ok(env.logLines.some((l) => new RegExp(`bounce-failed id=${id} action=failed`).test(l)));
  const state = (await readStateFile(env.dataDir, id))!;
  assert.deepEqual(state.recipients.map((r) => [r.status, r.notified ?? false]), [['delivered', false], ['failed', false]]);
  failBounce = false;
  env.clock.set(state.nextAttempt);
  assert.equal(await runner.processMessage(id), 'removed');
  assert.equal(received(mx).length, 1, 'delivered once');
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 1, 'the bounce arrived');
});
