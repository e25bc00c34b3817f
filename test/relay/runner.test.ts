// The queue runner (src/relay/runner.ts) against real neighbours on loopback:
// the test DNS server answers Node's resolver, scripted fake SMTP servers play
// the MX hosts and the smarthost, local bounces land in real mbox files. The
// runner is built by relayDeps(), as the relay process builds it; only the
// clock is the test's, so retries and expiry are tested without sleeping.
//
// Every MX host resolves to a 127.0.0.x address and the runner connects to
// relay.port on it. The fake server listens on 127.0.0.1 only, so a second
// server for another MX is reached through aliasPort() on 127.0.0.2 (same
// port number), and 127.0.0.3 has nothing listening: "connection refused".

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { startTestServer } from '../helpers/test-server.ts';
import { SmtpClient } from '../helpers/smtp-client.ts';
import { startFakeServer } from './fake-smtp-server.ts';
import type { FakeServer, FakeServerOptions } from './fake-smtp-server.ts';
import { verifyDkim } from './dkim-verify.ts';
import { aliasPort, HOUR, inbox, MINUTE, queueMessage, readDsn, readStateFile, relayConfig, relayEnv, sampleMessage, T0, tempDataDir, unstuff } from './relay-helpers.ts';
import type { DeepPartial, RelayEnv } from './relay-helpers.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { parseQueueEnvelope, queueDir } from '../../src/queue/queue-file.ts';
import { listQueue } from '../../src/queue/queue-state.ts';
import { QueueRunner } from '../../src/relay/runner.ts';
import { relayDeps } from '../../src/relay/main.ts';
import { deliverMessage } from '../../src/relay/smtp-client.ts';
import type { DeliveryRequest } from '../../src/relay/smtp-client.ts';
import { retryDelayMs } from '../../src/relay/schedule.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';

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
    'verify.example': { MX: [[10, 'bad.verify.example'], [20, 'good.verify.example']] },
    'bad.verify.example': { A: ['127.0.0.1'] },
    'good.verify.example': { A: ['127.0.0.2'] },
  });
});
after(() => dns.close());

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fake(options: FakeServerOptions = {}): Promise<FakeServer> {
  const server = await startFakeServer(options);
  cleanups.push(() => server.close());
  return server;
}

/** A fake MX on relay.port and a runner whose DNS is the test server. */
async function setup(options: { fake?: FakeServerOptions; config?: DeepPartial<Config> } = {}): Promise<{ mx: FakeServer; env: RelayEnv }> {
  const mx = await fake(options.fake);
  const env = await relayEnv({
    config: { ...options.config, relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mx.port, ...options.config?.relay } },
  });
  cleanups.push(() => env.close());
  return { mx, env };
}

const received = (server: FakeServer) => server.sessions.flatMap((s) => s.messages).map(unstuff);
const commandsOf = (server: FakeServer) => server.sessions.flatMap((s) => s.commands.map((c) => c.line));

async function queueFiles(dataDir: string): Promise<string[]> {
  return (await readdir(queueDir(dataDir))).filter((name) => name !== 'tmp');
}

// --- Where the mail goes -------------------------------------------------

test('MX preference: the lowest preference is tried first, whatever the order of the DNS answer', async () => {
  const { mx, env } = await setup();
  const backup = await fake();
  const alias = await aliasPort('127.0.0.2', mx.port, backup.port);
  cleanups.push(() => alias.close());
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
  cleanups.push(() => alias.close());
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

// --- Verified TLS to MX hosts --------------------------------------------

test('verifyCertificates: the first MX\'s certificate fails, the next MX gets the message over verified TLS, nothing goes in clear', async () => {
  const goodCert = createSelfSignedCertificate({ hostname: 'good.verify.example' });
  const badCert = createSelfSignedCertificate({ hostname: 'bad.verify.example' });
  const { mx: bad, env } = await setup({
    fake: { ehlo: ['PIPELINING', 'STARTTLS'], tls: badCert },
    config: { relay: { verifyCertificates: true, caFile: await caFileWith(goodCert.certPem) } },
  });
  const good = await fake({ ehlo: ['PIPELINING', 'STARTTLS'], tls: goodCert });
  const alias = await aliasPort('127.0.0.2', bad.port, good.port);
  cleanups.push(() => alias.close());
  const id = await queueMessage(env.dataDir, { to: ['friend@verify.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(bad.sessions.length, 1, 'one try at the first MX, no second one in clear');
  assert.ok(!commandsOf(bad).some((c) => c.startsWith('MAIL')), 'nothing sent to the MX that failed verification');
  assert.equal(received(good).length, 1);
  assert.ok(good.sessions[0].commands.filter((c) => /^(MAIL|RCPT)/.test(c.line)).every((c) => c.tls), 'the envelope went over TLS');
  assert.ok(env.logLines.some((l) => /attempt .*host=bad\.verify\.example stage=starttls/.test(l)), env.logLines.join('\n'));
});

test('verifyCertificates: the only MX fails verification: deferred with 4.7.5, never delivered in clear', async () => {
  const { mx, env } = await setup({
    fake: { ehlo: ['PIPELINING', 'STARTTLS'], tls: createSelfSignedCertificate({ hostname: 'mx1.remote.example' }) },
    config: { relay: { verifyCertificates: true, caFile: await caFileWith(cert.certPem) } },
  });
  const id = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.equal(mx.sessions.length, 1);
  assert.equal(received(mx).length, 0);
  assert.ok(!commandsOf(mx).some((c) => c.startsWith('MAIL')));
  const state = (await readStateFile(env.dataDir, id))!;
  assert.equal(state.recipients[0].statusCode, '4.7.5');
});

test('verifyCertificates: an MX that offers no STARTTLS is not used in clear (4.7.4)', async () => {
  const { mx, env } = await setup({ fake: { ehlo: ['PIPELINING'] }, config: { relay: { verifyCertificates: true } } });
  const id = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.ok(!commandsOf(mx).some((c) => c.startsWith('MAIL')));
  assert.equal((await readStateFile(env.dataDir, id))!.recipients[0].statusCode, '4.7.4');
});

// --- Smarthost -----------------------------------------------------------

// The smarthost is reached at 127.0.0.1, so its certificate names that address.
const cert = createSelfSignedCertificate({ hostname: 'localhost', altNames: ['127.0.0.1'] });
/** A certificate for the same names that the relay has no reason to trust. */
const untrustedCert = createSelfSignedCertificate({ hostname: 'localhost', altNames: ['127.0.0.1'] });

/** A PEM file holding `certPem`, for relay.caFile: the relay trusts exactly these certificates. */
async function caFileWith(certPem: string): Promise<string> {
  const dir = await tempDataDir();
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'ca.pem');
  await writeFile(file, certPem);
  return file;
}

async function smarthostSetup(password: string, options: { serverCert?: { keyPem: string; certPem: string }; verifyCertificate?: boolean } = {}) {
  const smarthost = await fake({
    ehlo: ['PIPELINING', 'STARTTLS'],
    ehloAfterTls: ['PIPELINING', 'AUTH PLAIN LOGIN'],
    tls: options.serverCert ?? cert,
    auth: { username: 'relay-user', password: 'relay-pw' },
  });
  // A DNS server of its own, so any query the runner made would show here.
  const ownDns = await startDnsServer({ 'remote.example': { MX: [[10, 'mx1.remote.example']] }, 'mx1.remote.example': { A: ['127.0.0.1'] } });
  cleanups.push(() => ownDns.close());
  const requests: DeliveryRequest[] = [];
  const env = await relayEnv({
    deps: {
      deliver: (request) => {
        requests.push(request);
        return deliverMessage(request);
      },
    },
    config: {
      relay: {
        dnsServers: `127.0.0.1:${ownDns.port}`,
        port: 9, // nothing is delivered directly
        caFile: await caFileWith(cert.certPem),
        smarthost: {
          host: '127.0.0.1', port: smarthost.port, tls: 'starttls', username: 'relay-user', password,
          ...(options.verifyCertificate === undefined ? {} : { verifyCertificate: options.verifyCertificate }),
        },
      },
    },
  });
  cleanups.push(() => env.close());
  return { smarthost, ownDns, env, requests };
}

test('smarthost: every domain goes to it, over STARTTLS with a verified certificate and AUTH PLAIN, and no DNS query is made', async () => {
  const { smarthost, ownDns, env, requests } = await smarthostSetup('relay-pw');
  const id = await queueMessage(env.dataDir, { to: ['a@remote.example', 'b@nullmx.example', 'c@[192.0.2.1]'] });
  assert.equal(await env.runner.processMessage(id), 'removed');

  const rcpts = commandsOf(smarthost).filter((c) => c.startsWith('RCPT')).sort();
  assert.deepEqual(rcpts, ['RCPT TO:<a@remote.example>', 'RCPT TO:<b@nullmx.example>', 'RCPT TO:<c@[192.0.2.1]>']);
  const used = smarthost.sessions.filter((s) => s.messages.length > 0);
  assert.ok(used.length >= 1);
  for (const session of used) {
    assert.equal(session.tls, true, 'the session was upgraded with STARTTLS');
    assert.equal(session.authenticated, 'relay-user', 'AUTH PLAIN with the configured credentials');
    const auth = session.commands.find((c) => c.line.startsWith('AUTH'));
    assert.ok(auth && auth.tls, 'credentials only inside TLS');
    assert.match(auth.line, /^AUTH PLAIN /);
    assert.ok(!session.commands.some((c) => c.line.startsWith('MAIL') && !c.tls), 'no MAIL in clear');
  }
  assert.equal(received(smarthost).length, used.length);
  assert.deepEqual(ownDns.queries, [], 'no DNS query');
  assert.deepEqual(await queueFiles(env.dataDir), []);
  for (const request of requests) {
    assert.equal(request.host, '127.0.0.1');
    assert.equal(request.servername, undefined, 'no SNI for an IP address (RFC 6066 3)');
    // The TLS session above was only possible because the certificate passed these checks.
    assert.equal(request.verifyCertificate, true, 'the smarthost is verified by default');
    assert.equal(String(request.ca), cert.certPem, 'against relay.caFile');
  }
});

test('smarthost with a certificate the relay does not trust: no credentials sent, the message deferred (4.7.5)', async () => {
  const { smarthost, env } = await smarthostSetup('relay-pw', { serverCert: untrustedCert });
  const id = await queueMessage(env.dataDir, { to: ['a@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.ok(smarthost.sessions.length >= 1, 'the smarthost was tried');
  for (const session of smarthost.sessions) {
    assert.ok(!session.commands.some((c) => /^(AUTH|MAIL)/.test(c.line)), JSON.stringify(session.commands));
    assert.equal(session.authenticated, null);
  }
  assert.equal(received(smarthost).length, 0);
  const state = (await readStateFile(env.dataDir, id))!;
  assert.equal(state.recipients[0].status, 'pending');
  assert.equal(state.recipients[0].statusCode, '4.7.5');
  assert.match(state.recipients[0].lastReply ?? '', /starttls: .*(certificate|signature)/i);
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0, 'no bounce for a temporary failure');
});

test('smarthost.verifyCertificate false (a self-signed smarthost, said explicitly): delivered with AUTH over that TLS', async () => {
  const { smarthost, env, requests } = await smarthostSetup('relay-pw', { serverCert: untrustedCert, verifyCertificate: false });
  const id = await queueMessage(env.dataDir, { to: ['a@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(smarthost.sessions[0].authenticated, 'relay-user');
  assert.ok(smarthost.sessions[0].commands.find((c) => c.line.startsWith('AUTH'))?.tls);
  assert.equal(requests[0].verifyCertificate, false);
});

test('smarthost refuses our credentials (535): the message waits in the queue, nothing is bounced', async () => {
  const { smarthost, ownDns, env } = await smarthostSetup('wrong-pw');
  const id = await queueMessage(env.dataDir, { to: ['a@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');
  assert.equal(smarthost.sessions[0].authenticated, null);
  assert.equal(received(smarthost).length, 0);
  const state = (await readStateFile(env.dataDir, id))!;
  assert.equal(state.recipients[0].status, 'pending');
  assert.match(state.recipients[0].lastReply ?? '', /^535 5\.7\.8 /);
  assert.equal((await inbox(env.dataDir, 'jjordan')).length, 0);
  assert.deepEqual(ownDns.queries, []);
});

// --- DKIM ----------------------------------------------------------------

/** A new Ed25519 key in a PEM file: its path and public half. */
async function dkimKeyFile(): Promise<{ keyFile: string; publicKey: KeyObject }> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const keyDir = await tempDataDir();
  cleanups.push(() => rm(keyDir, { recursive: true, force: true }));
  const keyFile = join(keyDir, 'dkim.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { keyFile, publicKey };
}

const signatureOf = (message: string) => /^DKIM-Signature: /.test(message);

test('DKIM: one key per domain, chosen by the From: domain; mail from a domain without a key goes out unsigned', async () => {
  const org = await dkimKeyFile();
  const com = await dkimKeyFile();
  const { mx, env } = await setup({
    fake: { ehlo: ['PIPELINING', 'SIZE 10485760', '8BITMIME'] },
    config: {
      domains: ['example.com', 'example.org', 'example.net'],
      relay: { dkim: { keys: [{ domain: 'example.org', selector: 'mail2026', keyFile: org.keyFile }, { domain: 'Example.COM', selector: 'com1', keyFile: com.keyFile }] } },
    },
  });
  const fromOrg = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  const fromCom = await queueMessage(env.dataDir, { to: ['friend@remote.example'], message: sampleMessage('from com', 'jo@EXAMPLE.com') });
  // Ours, but no key: not signed with another domain's key.
  const fromNet = await queueMessage(env.dataDir, { to: ['friend@remote.example'], message: sampleMessage('from net', 'jo@example.net') });
  for (const id of [fromOrg, fromCom, fromNet]) assert.equal(await env.runner.processMessage(id), 'removed');

  const [orgMessage, comMessage, netMessage] = received(mx);
  assert.match(orgMessage, /^DKIM-Signature: /, 'the signature is the first field');
  const org1 = verifyDkim(orgMessage, org.publicKey);
  assert.equal(org1.reason, 'pass');
  assert.deepEqual([org1.tags.get('d'), org1.tags.get('s'), org1.tags.get('a')], ['example.org', 'mail2026', 'ed25519-sha256']);
  // The verifier really checks: a changed subject breaks the signature.
  assert.equal(verifyDkim(orgMessage.replace('Subject: relay test', 'Subject: relay tset'), org.publicKey).ok, false);

  const com1 = verifyDkim(comMessage, com.publicKey);
  assert.equal(com1.reason, 'pass');
  assert.deepEqual([com1.tags.get('d'), com1.tags.get('s')], ['example.com', 'com1']);
  assert.equal(verifyDkim(comMessage, org.publicKey).ok, false, 'not signed with the other domain\'s key');

  assert.equal(signatureOf(netMessage), false, 'no key for example.net: unsigned');

  // RFC 1870: SIZE= announces the message as sent, signature included (CRLF line ends, no dot-stuffing).
  const mail = commandsOf(mx).find((c) => c.startsWith('MAIL'))!;
  assert.equal(Number(/ SIZE=(\d+)/.exec(mail)?.[1]), Buffer.byteLength(orgMessage.replace(/\n/g, '\r\n')));
});

test('DKIM: the key follows the From: header, not the envelope sender', async () => {
  const org = await dkimKeyFile();
  const { mx, env } = await setup({ config: { relay: { dkim: { keys: [{ domain: 'example.org', selector: 's1', keyFile: org.keyFile }] } } } });
  // A list server's bounce address (the envelope) is ours, the author's domain is not: no signature.
  const listMail = await queueMessage(env.dataDir, { from: 'list-bounces@example.org', to: ['friend@remote.example'], message: sampleMessage('list', 'someone@elsewhere.example') });
  // The null sender, From: ours: signed.
  const notice = await queueMessage(env.dataDir, { from: '', to: ['friend@remote.example'], message: sampleMessage('notice', 'postmaster@example.org') });
  for (const id of [listMail, notice]) assert.equal(await env.runner.processMessage(id), 'removed');
  const [list, signed] = received(mx);
  assert.equal(signatureOf(list), false);
  assert.equal(verifyDkim(signed, org.publicKey).tags.get('d'), 'example.org');
});

test('DKIM: the older single-key form (relay.dkim.selector and keyFile) is the key for the first domain only', async () => {
  const key = await dkimKeyFile();
  const { mx, env } = await setup({ config: { domains: ['example.org', 'example.com'], relay: { dkim: { selector: 'old', keyFile: key.keyFile } } } });
  const first = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  const second = await queueMessage(env.dataDir, { to: ['friend@remote.example'], message: sampleMessage('second domain', 'jo@example.com') });
  for (const id of [first, second]) assert.equal(await env.runner.processMessage(id), 'removed');
  const [firstMessage, secondMessage] = received(mx);
  const result = verifyDkim(firstMessage, key.publicKey);
  assert.deepEqual([result.reason, result.tags.get('d'), result.tags.get('s')], ['pass', 'example.org', 'old']);
  assert.equal(signatureOf(secondMessage), false);
});

test('DKIM config: a misspelt key, a missing keyFile or two keys for one domain stop the relay at start', async () => {
  const key = await dkimKeyFile();
  const dataDir = await tempDataDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  const log = createLogger({ quiet: true });
  assert.throws(() => relayConfig(dataDir, { relay: { dkim: { keys: [{ domain: 'example.org', selectr: 'x' } as never] } } }), /config key "relay\.dkim\.keys\[0\]\.selectr" is unknown/);
  assert.throws(() => relayConfig(dataDir, { relay: { dkim: { keys: ['example.org' as never] } } }), /relay\.dkim\.keys\[0\]": expected an object/);
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [{ domain: 'example.org', selector: 's' } as never] } } }), log), /needs a selector and a keyFile/);
  const twice = { domain: 'example.org', selector: 's', keyFile: key.keyFile };
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [twice, { ...twice, domain: 'EXAMPLE.org' }] } } }), log), /two keys for example\.org/);
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [twice], selector: 'old', keyFile: key.keyFile } } }), log), /two keys for example\.org/);
});

// --- End to end ----------------------------------------------------------

test('end to end: a user submits over TLS with AUTH, the queue file appears, the runner delivers it to the MX', async () => {
  const mx = await fake({ ehlo: ['PIPELINING', '8BITMIME'] });
  const server = await startTestServer({ config: { relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mx.port } } });
  cleanups.push(() => server.close());

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
