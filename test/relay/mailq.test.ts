// mailq (scripts/mailq.ts): the queue listing, from real queue and state
// files (a runner made a deferred attempt against a fake MX), and the
// program itself as a child process, listing and --flush.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer } from '../helpers/dns-server.ts';
import { startFakeServer } from './fake-smtp-server.ts';
import { MINUTE, queueMessage, relayEnv, T0, tempDataDir } from './relay-helpers.ts';
import { describeQueue } from '../../scripts/mailq.ts';
import { queueDir } from '../../src/queue/queue-file.ts';
import { messagePath } from '../../src/queue/queue-state.ts';
import { relayPidPath } from '../../src/relay/main.ts';

const MAILQ = fileURLToPath(new URL('../../scripts/mailq.ts', import.meta.url));

let dns: DnsServer;
before(async () => {
  dns = await startDnsServer({ 'remote.example': { MX: [[10, 'mx.remote.example']] }, 'mx.remote.example': { A: ['127.0.0.1'] } });
});
after(() => dns.close());

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function dataDirForTest(): Promise<string> {
  const dataDir = await tempDataDir();
  cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
  return dataDir;
}

/** Run mailq; resolves with its exit code and output whatever the code. */
function mailq(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAILQ, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

test('describeQueue: each message with age, size, sender and attempts, each pending recipient with its last error', async () => {
  const mx = await startFakeServer({ rcpt: { 'later@remote.example': '451 4.2.1 Mailbox busy' } });
  cleanups.push(() => mx.close());
  const env = await relayEnv({ config: { relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mx.port } } });
  cleanups.push(() => env.close());

  const tried = await queueMessage(env.dataDir, { to: ['done@remote.example', 'later@remote.example'] });
  assert.equal(await env.runner.processMessage(tried), 'deferred');
  const waiting = await queueMessage(env.dataDir, { from: '', to: ['new@remote.example'], arrived: new Date(T0.getTime() + 45 * MINUTE) });

  const sizeOf = async (id: string) => (await stat(messagePath(env.dataDir, id))).size;
  const listing = await describeQueue(env.dataDir, new Date(T0.getTime() + 90 * MINUTE));
  assert.equal(
    listing,
    `${tried}   1h30m  ${await sizeOf(tried)} bytes  from <jjordan@example.org>  attempts 1\n` +
      `    <later@remote.example>  next try 2026-03-02T10:05:00.000Z\n` +
      `        last: 451 4.2.1 Mailbox busy\n` +
      `${waiting}     45m  ${await sizeOf(waiting)} bytes  from <>  attempts 0\n` +
      `    <new@remote.example>  next try 2026-03-02T10:45:00.000Z\n` +
      `-- 2 messages in the queue\n`,
  );
  assert.doesNotMatch(listing, /done@remote\.example/, 'a delivered recipient is not listed');
});

test('describeQueue and the relay log print a remote reply\'s control characters as escapes, never raw', async () => {
  // ESC [2J clears a terminal, ESC ]0; retitles it, BS rubs out, U+202E reverses the rest of the line.
  const hostile = '451 4.2.1 Mailbox\x1b[2J busy\x08\x1b]0;owned\x07 \u202egnissim\x7f';
  const mx = await startFakeServer({ rcpt: { 'later@remote.example': hostile } });
  cleanups.push(() => mx.close());
  const env = await relayEnv({ config: { relay: { dnsServers: `127.0.0.1:${dns.port}`, port: mx.port } } });
  cleanups.push(() => env.close());
  const id = await queueMessage(env.dataDir, { to: ['later@remote.example'] });
  assert.equal(await env.runner.processMessage(id), 'deferred');

  const listing = await describeQueue(env.dataDir, T0);
  assert.match(listing, /\n {8}last: 451 4\.2\.1 Mailbox\\x1b\[2J busy\\x08\\x1b\]0;owned\\x07 \\u202egnissim\\x7f\n/);
  const logged = env.logLines.find((line) => line.includes(' attempt ') && line.includes('Mailbox'));
  assert.ok(logged, env.logLines.join('\n'));
  assert.ok(logged.includes('reply="451 4.2.1 Mailbox\\x1b[2J busy\\x08\\x1b]0;owned\\x07 \\u202egnissim\\x7f"'), logged);
  for (const text of [listing, ...env.logLines]) {
    assert.doesNotMatch(text.replace(/\n/g, ''), /[\x00-\x08\x0b-\x1f\x7f\u202e]/, 'no raw control character');
  }
});

test('describeQueue: an empty queue says so, also before the queue directory exists', async () => {
  const dataDir = await dataDirForTest();
  assert.equal(await describeQueue(dataDir), 'Mail queue is empty\n');
  await mkdir(queueDir(dataDir), { recursive: true });
  assert.equal(await describeQueue(dataDir), 'Mail queue is empty\n');
});

test('mailq --data DIR prints the listing; an empty queue prints "Mail queue is empty"', async () => {
  const dataDir = await dataDirForTest();
  const empty = await mailq(['--data', dataDir]);
  assert.deepEqual(empty, { code: 0, stdout: 'Mail queue is empty\n', stderr: '' });

  const id = await queueMessage(dataDir, { to: ['friend@remote.example'], arrived: new Date() });
  const listed = await mailq(['--data', dataDir]);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, new RegExp(`^${id} +0m  \\d+ bytes  from <jjordan@example\\.org>  attempts 0\\n    <friend@remote\\.example>  next try `));
  assert.match(listed.stdout, /\n-- 1 message in the queue\n$/);
});

test('mailq --flush with no relay running exits 1 with a clear message', async () => {
  const dataDir = await dataDirForTest();
  const result = await mailq(['--data', dataDir, '--flush']);
  assert.deepEqual(result, { code: 1, stdout: '', stderr: 'mailq: no relay is running (no relay.pid)\n' });
});

test(
  'mailq --flush with a stale relay.pid (the relay was killed) exits 1 with a clear message',
  async () => {
    const dataDir = await dataDirForTest();
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    await writeFile(relayPidPath(dataDir), `${gone.pid}\n`);
    const result = await mailq(['--data', dataDir, '--flush']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /no relay is running/);
  },
);
