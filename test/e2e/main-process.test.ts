// The real program, as a user starts it: `node src/main.ts`, in its own
// process, with and without a config file. Checks start-up, a delivery,
// SIGHUP (certificate reload), SIGTERM (clean exit 0) and a bad config.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { sendMail } from '../helpers/smtp-client.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';

const MAIN = resolve(import.meta.dirname, '../../src/main.ts');
const ADDUSER = resolve(import.meta.dirname, '../../src/auth/adduser.ts');

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function workDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jjordan-main-'));
  // When the tests run as root the server drops to the `mail` user, which must reach the spool.
  await chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

/** A free loopback port (bound and released at once). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Start the server and wait for its `ready` log line. */
async function startMain(cwd: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  const deadline = Date.now() + 10_000;
  while (!/ main ready /.test(output)) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`server did not start:\n${output}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
  // Root drops privileges right after `ready`; give it the moment it takes.
  await new Promise((ok) => setTimeout(ok, 200));
  return { child, output: () => output, exited };
}

function addUser(dataDir: string, name: string): void {
  const run = spawnSync(process.execPath, [ADDUSER, name, '--data', dataDir], { input: 'secret\n', encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
}

test('with no config file: defaults, spool/ in the working directory, a certificate made on first start', async () => {
  const cwd = await workDir();
  addUser(join(cwd, 'spool'), 'jjordan');
  const server = await startMain(cwd, []);
  try {
    assert.match(server.output(), /listening service=smtp address=127\.0\.0\.1 port=2525/);
    assert.match(server.output(), /listening service=submission address=127\.0\.0\.1 port=2587/);
    assert.match(server.output(), /listening service=smtps address=127\.0\.0\.1 port=2465/);
    assert.match(server.output(), /listening service=pop3s address=127\.0\.0\.1 port=2995/);
    assert.match(server.output(), /relay-started pid=\d+/, 'the relay process is started by default');
    const cert = new X509Certificate(await readFile(join(cwd, 'spool/tls/cert.pem')));
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);
    const result = await sendMail(2525, { from: 'alice@example.org', to: ['jjordan@localhost'], data: 'Subject: hi\r\n\r\nhello\r\n' });
    assert.equal(result.final.code, 250);
    const mbox = await readFile(join(cwd, 'spool/mail/jjordan/INBOX'), 'utf8');
    assert.match(mbox, /^From alice@example\.org /);
    assert.equal((await stat(join(cwd, 'spool/mail/jjordan/INBOX'))).mode & 0o777, 0o600, 'mail is private');
  } finally {
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, 'SIGTERM exits 0');
  }
});

test('SIGHUP reloads the certificate for new connections; SIGTERM exits 0', async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser(dataDir, 'jjordan');
  const first = createSelfSignedCertificate({ hostname: 'localhost' });
  const certFile = join(cwd, 'cert.pem');
  const keyFile = join(cwd, 'key.pem');
  await writeFile(certFile, first.certPem, { mode: 0o644 });
  await writeFile(keyFile, first.keyPem, { mode: 0o644 });
  const ports = { smtp: await freePort(), submission: -1, smtps: await freePort(), pop3: -1, pop3s: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports, tls: { certFile, keyFile } }));
  const server = await startMain(cwd, ['--config', 'mail.json']);
  const fingerprint = async () => {
    const socket = tlsConnect({ port: ports.smtps, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((ok, fail) => socket.once('secureConnect', ok).once('error', fail));
    const seen = socket.getPeerCertificate().fingerprint256;
    socket.destroy();
    return seen;
  };
  try {
    assert.equal(await fingerprint(), new X509Certificate(first.certPem).fingerprint256);
    const second = createSelfSignedCertificate({ hostname: 'localhost' });
    await writeFile(certFile, second.certPem);
    await writeFile(keyFile, second.keyPem);
    server.child.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while (!/tls-reloaded/.test(server.output()) && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
    assert.equal(await fingerprint(), new X509Certificate(second.certPem).fingerprint256);
    assert.equal(server.child.exitCode, null, 'still running after SIGHUP');
  } finally {
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  }
  assert.match(server.output(), /shutdown signal=SIGTERM/);
});

test('an unknown config key stops start-up with a message naming it', async () => {
  const cwd = await workDir();
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ limits: { maxRecipent: 5 } }));
  const run = spawnSync(process.execPath, [MAIN, '--config', 'mail.json'], { cwd, encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2);
  assert.match(run.stderr, /config key "limits\.maxRecipent" is unknown/);
});

test('the server starts the relay process and starts it again when it dies', async () => {
  const cwd = await workDir();
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1 };
  // As root the server drops to `mail`, which may not be able to run this node
  // binary again (npx keeps it under /root): a restart then fails by design
  // (and says why). Here we test the restarting, so keep root in that case.
  const runAs = process.getuid?.() === 0 ? { user: '', group: '', allowRoot: true } : undefined;
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir: join(cwd, 'data'), ports, runAs }));
  const server = await startMain(cwd, ['--config', 'mail.json']);
  const relayPids = () => [...server.output().matchAll(/relay-started pid=(\d+)/g)].map((m) => Number(m[1]));
  const waitFor = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 10_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${server.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  try {
    await waitFor('the relay to start', () => relayPids().length === 1 && /relay started queue=/.test(server.output()));
    process.kill(relayPids()[0], 'SIGKILL');
    await waitFor('the relay to be restarted', () => relayPids().length === 2 && server.output().split('relay started queue=').length === 3);
    assert.match(server.output(), /relay-died signal=SIGKILL restartInMs=1000/);
    assert.notEqual(relayPids()[1], relayPids()[0]);
  } finally {
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  }
  assert.match(server.output(), /relay shutdown signal=SIGTERM/, 'the relay is stopped with the server');
});
