// The relay as a process (`node src/relay/main.ts --config FILE`), the way
// the server's supervisor starts it: with the test DNS server, a fake MX on
// loopback, a temporary data directory. What only the process does is tested
// here: relay.pid, the directory watch, surviving SIGKILL in the middle of a
// delivery (at least once, never lost), SIGUSR1 from `mailq --flush`, and a
// clean exit on SIGTERM, and --trace printing the relay's SMTP conversation.
//
// The scan timer (relay.scanSeconds) is set to an hour, so anything that
// happens within a test was set off by the watch, the start-up scan or a signal.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { eventually, readOrNull } from '../helpers/test-server.ts';
import { startFakeServer } from './fake-smtp-server.ts';
import type { FakeServer, FakeServerOptions } from './fake-smtp-server.ts';
import { queueMessage, readStateFile, sampleMessage, tempDataDir, unstuff } from './relay-helpers.ts';
import { listQueue } from '../../src/queue/queue-state.ts';
import { relayPidPath } from '../../src/relay/main.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';

const RELAY_MAIN = fileURLToPath(new URL('../../src/relay/main.ts', import.meta.url));
const MAILQ = fileURLToPath(new URL('../../scripts/mailq.ts', import.meta.url));
const WAIT_MS = 10_000;

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({
    'remote.example': { MX: [[10, 'mx.remote.example']] },
    'mx.remote.example': { A: ['127.0.0.1'] },
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

async function dataDirForTest(): Promise<string> {
  const dataDir = await tempDataDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  return dataDir;
}

/** The relay's config file: our DNS server, the fake MX's port, no timer to speak of. */
async function writeConfig(dataDir: string, mxPort: number, relay: Record<string, unknown> = {}): Promise<string> {
  const file = join(dataDir, 'config.json');
  const config = {
    hostname: 'mail.example.org',
    domains: ['example.org'],
    dataDir,
    relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mxPort, scanSeconds: 3600, ...relay },
    // Started as root, the relay would become `mail` and lose the test's private
    // directory; dropping root is tested in test/unit/privileges.test.ts.
    ...(process.getuid?.() === 0 ? { runAs: { user: '', group: '', allowRoot: true } } : {}),
  };
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

interface Relay {
  child: ChildProcess;
  /** stdout and stderr so far: the relay's log lines. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startRelay(configFile: string, extraArgs: string[] = []): Relay {
  const child = spawn(process.execPath, [RELAY_MAIN, '--config', configFile, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, output: () => output, exited };
}

/** Poll until `check` holds; a timeout shows what the relay logged. */
async function waitFor(relay: Relay, check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  try {
    await eventually(check, what, WAIT_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}\nrelay output:\n${relay.output()}`);
  }
}

/** Ready once relay.pid names this process (it is written after the signal handlers are in place). */
async function waitReady(dataDir: string, relay: Relay): Promise<void> {
  await waitFor(relay, async () => (await readOrNull(relayPidPath(dataDir)))?.toString() === `${relay.child.pid}\n`, `relay.pid of ${relay.child.pid}`);
}

const received = (server: FakeServer) => server.sessions.flatMap((s) => s.messages).map(unstuff);

test('relay process: relay.pid written; a delivery cut off by SIGKILL mid-DATA is made after a restart', async () => {
  const dataDir = await dataDirForTest();
  // This MX answers DATA with 354 and then reads nothing more: the relay waits for its final reply.
  const stalling = await fake({ stallData: true });
  const configFile = await writeConfig(dataDir, stalling.port);
  const first = startRelay(configFile);
  await waitReady(dataDir, first);

  // Queued after the start, so the directory watch has to notice it.
  const id = await queueMessage(dataDir, { to: ['friend@remote.example'], arrived: new Date(), message: sampleMessage('killed in flight') });
  await waitFor(first, () => stalling.sessions.some((s) => s.commands.some((c) => c.line === 'DATA')), 'the relay reaching DATA');
  first.child.kill('SIGKILL');
  assert.deepEqual(await first.exited, { code: null, signal: 'SIGKILL' });
  assert.deepEqual(await listQueue(dataDir), [id], 'still queued: nobody confirmed the delivery');
  assert.equal(await readStateFile(dataDir, id), null, 'the attempt never finished, so nothing was recorded');

  // The MX works again (a new server, so a new port in the config); the relay starts over.
  const accepting = await fake();
  await writeConfig(dataDir, accepting.port);
  const second = startRelay(configFile);
  await waitReady(dataDir, second);
  await waitFor(second, async () => (await listQueue(dataDir)).length === 0, 'an empty queue');
  const messages = received(accepting);
  assert.ok(messages.length >= 1, 'delivered (at least once)');
  assert.match(messages[0], /^Subject: killed in flight$/m);
  assert.ok(accepting.sessions.some((s) => s.commands.some((c) => c.line === 'RCPT TO:<friend@remote.example>')));

  second.child.kill('SIGTERM');
  assert.deepEqual(await second.exited, { code: 0, signal: null }, second.output());
  assert.equal(await readOrNull(relayPidPath(dataDir)), null, 'relay.pid removed on a clean exit');
  assert.match(second.output(), / shutdown signal=SIGTERM/);
});

test('relay process: SIGUSR1 (mailq --flush) retries a deferred message at once', async () => {
  const dataDir = await dataDirForTest();
  const options: FakeServerOptions = { rcpt: { 'later@remote.example': '451 4.3.0 Not now' } };
  const mx = await fake(options);
  const relay = startRelay(await writeConfig(dataDir, mx.port));
  await waitReady(dataDir, relay);

  const id = await queueMessage(dataDir, { to: ['later@remote.example'], arrived: new Date(), message: sampleMessage('flushed') });
  await waitFor(relay, async () => (await readStateFile(dataDir, id))?.attempts === 1, 'a first, deferred attempt');
  const state = (await readStateFile(dataDir, id))!;
  assert.ok(new Date(state.nextAttempt).getTime() - Date.now() > 4 * 60_000, 'the next try is minutes away');
  assert.equal(received(mx).length, 0);

  delete options.rcpt!['later@remote.example']; // the fake server reads its options on every RCPT
  const { stdout } = await promisify(execFile)(process.execPath, [MAILQ, '--data', dataDir, '--flush']);
  assert.match(stdout, new RegExp(`asked the relay \\(pid ${relay.child.pid}\\)`));
  await waitFor(relay, async () => (await listQueue(dataDir)).length === 0, 'an empty queue after the flush');
  assert.equal(received(mx).length, 1);
  assert.match(received(mx)[0], /^Subject: flushed$/m);
  assert.match(relay.output(), / flush\n/);
});

test('relay process --trace: the SMTP conversation as C:/S: lines under the message id, credentials hidden', async () => {
  const dataDir = await dataDirForTest();
  const password = 'trace-secret-pw';
  // A smarthost, so the conversation has STARTTLS and AUTH PLAIN in it.
  const smarthost = await fake({
    ehlo: ['PIPELINING', 'STARTTLS'],
    ehloAfterTls: ['PIPELINING', 'AUTH PLAIN LOGIN'],
    tls: createSelfSignedCertificate({ hostname: 'localhost', altNames: ['127.0.0.1'] }),
    auth: { username: 'relay-user', password },
  });
  const configFile = await writeConfig(dataDir, 9, {
    smarthost: { host: '127.0.0.1', port: smarthost.port, tls: 'starttls', username: 'relay-user', password, verifyCertificate: false },
  });
  const relay = startRelay(configFile, ['--trace']);
  await waitReady(dataDir, relay);
  const id = await queueMessage(dataDir, { to: ['friend@remote.example'], arrived: new Date(), message: sampleMessage('traced') });
  await waitFor(relay, async () => (await listQueue(dataDir)).length === 0, 'an empty queue');
  assert.equal(smarthost.sessions[0].authenticated, 'relay-user', 'the AUTH really happened');
  relay.child.kill('SIGTERM');
  await relay.exited;

  const lines = relay.output().split('\n');
  const traced = (text: string) => lines.includes(`relay[${id}] ${text}`);
  for (const line of ['S: 220 fake.test ESMTP', 'C: EHLO mail.example.org', 'C: STARTTLS', 'C: AUTH PLAIN ****', 'C: MAIL FROM:<jjordan@example.org>', 'C: RCPT TO:<friend@remote.example>', 'C: DATA', 'C: QUIT']) {
    assert.ok(traced(line), `traced: ${line}\n${relay.output()}`);
  }
  assert.ok(lines.some((l) => l.startsWith(`relay[${id}] S: 235`)), 'the server side too');
  // Neither the password nor the AUTH PLAIN blob that carries it, anywhere in the output.
  const blob = Buffer.from(`\0relay-user\0${password}`).toString('base64');
  assert.ok(!relay.output().includes(password), 'no password in the trace');
  assert.ok(!relay.output().includes(blob), 'no AUTH PLAIN credentials in the trace');
});
