// Who said it: a bounce (RFC 3464) quotes a remote server only for a reply
// that server really sent (`Diagnostic-Code: smtp; ...` with its name in
// `Remote-MTA`). Every verdict the relay makes itself - no such domain, a
// Null MX, no connection, a message too large for the server's SIZE, the
// queue lifetime run out - is reported as ours: `Diagnostic-Code:
// X-jjordan-mail; ...` (as Postfix writes `X-Postfix; ...`) and no Remote-MTA.
//
// One test per kind of verdict, through the runner as the relay process runs
// it, with the test DNS server and fake MX hosts on loopback (see
// runner.test.ts); the bounces land in the local sender's INBOX.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { commandsOf, HOUR, inbox, queueMessage, readDsn, RunnerTestBed, T0 } from './relay-helpers.ts';
import type { RelayEnv } from './relay-helpers.ts';

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({
    'remote.example': { MX: [[10, 'mx1.remote.example']] },
    'mx1.remote.example': { A: ['127.0.0.1'] },
    'nullmx.example': { MX: [[0, '']] },
    'gone.example': 'NXDOMAIN',
    // Nothing listens on 127.0.0.3: the connection is refused.
    'dead.example': { MX: [[10, 'mx.dead.example']] },
    'mx.dead.example': { A: ['127.0.0.3'] },
  });
});
after(() => dns.close());

const bed = new RunnerTestBed(() => dns.port);
afterEach(bed.closeAll);
const { setup } = bed;

/** The one report in jjordan's INBOX, and its one recipient block. */
async function onlyReport(env: RelayEnv): Promise<{ dsn: ReturnType<typeof readDsn>; block: Map<string, string> }> {
  const mails = await inbox(env.dataDir, 'jjordan');
  assert.equal(mails.length, 1, 'one report');
  const dsn = readDsn(mails[0].content);
  assert.equal(dsn.recipients.length, 1);
  return { dsn, block: dsn.recipients[0] };
}

/** Our own verdict: an X- diagnostic type and no Remote-MTA. */
function assertLocalVerdict(block: Map<string, string>, diagnostic: RegExp): void {
  assert.equal(block.has('remote-mta'), false, 'no Remote-MTA: no server said this');
  assert.match(block.get('diagnostic-code') ?? '', /^X-jjordan-mail; /);
  assert.match(block.get('diagnostic-code') ?? '', diagnostic);
}

test('a remote reply (550 at MAIL): quoted as the server\'s, smtp; and Remote-MTA', async () => {
  const { mx, env } = await setup({ fake: { replies: { MAIL: '550 5.7.1 Sender rejected' } } });
  const id = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.ok(commandsOf(mx).some((c) => c.startsWith('MAIL')));
  const { dsn, block } = await onlyReport(env);
  assert.equal(block.get('status'), '5.7.1');
  assert.equal(block.get('remote-mta'), 'dns; mx1.remote.example');
  assert.equal(block.get('diagnostic-code'), 'smtp; 550 5.7.1 Sender rejected');
  assert.match(dsn.text, /<friend@remote\.example>: host mx1\.remote\.example said: 550 5\.7\.1 Sender\n +rejected/);
});

test('Null MX: 556 5.1.10 (RFC 7505), our verdict, no Remote-MTA', async () => {
  const { mx, env } = await setup();
  const id = await queueMessage(env.dataDir, { to: ['nobody@nullmx.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(mx.sessions.length, 0);
  const { dsn, block } = await onlyReport(env);
  assert.equal(block.get('status'), '5.1.10');
  assertLocalVerdict(block, /^X-jjordan-mail; 556 5\.1\.10 domain nullmx\.example accepts no mail/);
  assert.match(dsn.text, /<nobody@nullmx\.example>: 556 5\.1\.10 domain nullmx\.example accepts no mail/);
  assert.doesNotMatch(dsn.text, /said:/);
});

test('a DNS verdict (NXDOMAIN): our verdict, no smtp; and no Remote-MTA', async () => {
  const { mx, env } = await setup();
  const id = await queueMessage(env.dataDir, { to: ['someone@gone.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(mx.sessions.length, 0);
  const { block } = await onlyReport(env);
  assert.equal(block.get('status'), '5.1.2');
  assertLocalVerdict(block, /domain gone\.example does not exist/);
});

test('a message over the server\'s SIZE, refused before MAIL: our verdict (5.3.4), no Remote-MTA', async () => {
  const { mx, env } = await setup({ fake: { ehlo: ['SIZE 100', 'PIPELINING'] } });
  const id = await queueMessage(env.dataDir, { to: ['friend@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'removed', 'final: the same server refuses it tomorrow');
  assert.ok(!commandsOf(mx).some((c) => c.startsWith('MAIL')), 'nothing was sent');
  const { dsn, block } = await onlyReport(env);
  assert.equal(block.get('status'), '5.3.4');
  assertLocalVerdict(block, /octets is larger than the server's limit of 100 \(host mx1\.remote\.example\)/);
  assert.doesNotMatch(dsn.text, /said:/);
});

test('no connection (refused), in a delay warning: our verdict, no Remote-MTA', async () => {
  const { env } = await setup({ config: { relay: { delayWarningHours: 4 } } });
  const id = await queueMessage(env.dataDir, { to: ['friend@dead.example'] });
  env.clock.set(new Date(T0.getTime() + 4 * HOUR));
  assert.equal(await env.runner.processMessage(id), 'deferred');
  const { dsn, block } = await onlyReport(env);
  assert.equal(dsn.subject, 'Delayed Mail (still being retried)');
  assert.equal(block.get('action'), 'delayed');
  assert.equal(block.get('status'), '4.4.1');
  assertLocalVerdict(block, /^X-jjordan-mail; connect: .*\(host mx\.dead\.example\)$/);
});

test('expiry of the queue lifetime after a remote 451: our verdict (4.4.7), the old reply only quoted in it', async () => {
  const { env } = await setup({
    fake: { rcpt: { 'later@remote.example': '451 4.3.0 Still not today' } },
    config: { relay: { maxAgeHours: 120, delayWarningHours: 0 } },
  });
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });
  env.clock.set(new Date(T0.getTime() + 121 * HOUR));
  assert.equal(await env.runner.processMessage(id), 'removed');
  const { block } = await onlyReport(env);
  assert.equal(block.get('status'), '4.4.7');
  assertLocalVerdict(block, /expired after 120 hours; last error: 451 4\.3\.0 Still not today/);
});
