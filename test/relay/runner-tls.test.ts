// The queue runner and TLS (src/relay/runner.ts, smtp-client.ts): verified
// TLS to MX hosts (relay.verifyCertificates, Postfix's "verify" level) and
// the smarthost, whose certificate is verified before it gets our password
// (RFC 8314). The fake servers hold self-signed certificates; the relay
// trusts one only when relay.caFile names it.
//
// As in runner.test.ts: MX hosts resolve to 127.0.0.x, the fake server
// listens on 127.0.0.1, and aliasPort() puts a second server on 127.0.0.2.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { aliasPort, commandsOf, inbox, queueFiles, queueMessage, readStateFile, received, relayEnv, RunnerTestBed, tempDataDir } from './relay-helpers.ts';
import { deliverMessage } from '../../src/relay/smtp-client.ts';
import type { DeliveryRequest } from '../../src/relay/smtp-client.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({
    'remote.example': { MX: [[10, 'mx1.remote.example']] },
    'mx1.remote.example': { A: ['127.0.0.1'] },
    'verify.example': { MX: [[10, 'bad.verify.example'], [20, 'good.verify.example']] },
    'bad.verify.example': { A: ['127.0.0.1'] },
    'good.verify.example': { A: ['127.0.0.2'] },
  });
});
after(() => dns.close());

const bed = new RunnerTestBed(() => dns.port);
afterEach(bed.closeAll);
const { defer, fake, setup } = bed;

// The smarthost is reached at 127.0.0.1, so its certificate names that address.
const cert = createSelfSignedCertificate({ hostname: 'localhost', altNames: ['127.0.0.1'] });
/** A certificate for the same names that the relay has no reason to trust. */
const untrustedCert = createSelfSignedCertificate({ hostname: 'localhost', altNames: ['127.0.0.1'] });

/** A PEM file holding `certPem`, for relay.caFile: the relay trusts exactly these certificates. */
async function caFileWith(certPem: string): Promise<string> {
  const dir = await tempDataDir();
  defer(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'ca.pem');
  await writeFile(file, certPem);
  return file;
}

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
  defer(() => alias.close());
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

async function smarthostSetup(password: string, options: { serverCert?: { keyPem: string; certPem: string }; verifyCertificate?: boolean } = {}) {
  const smarthost = await fake({
    ehlo: ['PIPELINING', 'STARTTLS'],
    ehloAfterTls: ['PIPELINING', 'AUTH PLAIN LOGIN'],
    tls: options.serverCert ?? cert,
    auth: { username: 'relay-user', password: 'relay-pw' },
  });
  // A DNS server of its own, so any query the runner made would show here.
  const ownDns = await startDnsServer({ 'remote.example': { MX: [[10, 'mx1.remote.example']] }, 'mx1.remote.example': { A: ['127.0.0.1'] } });
  defer(() => ownDns.close());
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
  defer(() => env.close());
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
