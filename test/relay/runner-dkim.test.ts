// The queue runner and DKIM (src/relay/runner.ts, dkim.ts): one key per
// signing domain (relay.dkim.keys), chosen by the From: domain, checked by
// the independent verifier in dkim-verify.ts on the message as the fake MX
// received it.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { verifyDkim } from './dkim-verify.ts';
import { commandsOf, queueMessage, received, relayConfig, RunnerTestBed, sampleMessage, tempDataDir } from './relay-helpers.ts';
import { createLogger } from '../../src/log.ts';
import { relayDeps } from '../../src/relay/main.ts';

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({ 'remote.example': { MX: [[10, 'mx1.remote.example']] }, 'mx1.remote.example': { A: ['127.0.0.1'] } });
});
after(() => dns.close());

const bed = new RunnerTestBed(() => dns.port);
afterEach(bed.closeAll);
const { defer, setup } = bed;

/** A new Ed25519 key in a PEM file: its path and public half. */
async function dkimKeyFile(): Promise<{ keyFile: string; publicKey: KeyObject }> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const keyDir = await tempDataDir();
  defer(() => rm(keyDir, { recursive: true, force: true }));
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
  defer(() => rm(dataDir, { recursive: true, force: true }));
  const log = createLogger({ quiet: true });
  assert.throws(() => relayConfig(dataDir, { relay: { dkim: { keys: [{ domain: 'example.org', selectr: 'x' } as never] } } }), /config key "relay\.dkim\.keys\[0\]\.selectr" is unknown/);
  assert.throws(() => relayConfig(dataDir, { relay: { dkim: { keys: ['example.org' as never] } } }), /relay\.dkim\.keys\[0\]": expected an object/);
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [{ domain: 'example.org', selector: 's' } as never] } } }), log), /needs a selector and a keyFile/);
  const twice = { domain: 'example.org', selector: 's', keyFile: key.keyFile };
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [twice, { ...twice, domain: 'EXAMPLE.org' }] } } }), log), /two keys for example\.org/);
  await assert.rejects(relayDeps(relayConfig(dataDir, { relay: { dkim: { keys: [twice], selector: 'old', keyFile: key.keyFile } } }), log), /two keys for example\.org/);
});
