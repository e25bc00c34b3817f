// The real program, as a user starts it: `node src/main.ts`, in its own
// process. Checks the README's first commands on a fresh machine (its
// defaults, with only the port numbers moved to free ports, and the README's
// port table against the defaults), a delivery, SIGHUP (certificate reload),
// SIGTERM (clean exit 0), a bad config and the relay child.
// What is special to root is in root-startup.test.ts and certificate-renewal.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chown, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { sendMail } from '../helpers/smtp-client.ts';
import { eventually } from '../helpers/test-server.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';
import { defaults, SYSTEM_DATA_DIR } from '../../src/config.ts';
import { MAIN, PROJECT, addUser, freePort, isRoot, mailIds, privateCheckout, spawnProgram, startMain, workDir } from './main-helpers.ts';

test("the README's port table is the built-in defaults", async () => {
  // The one check of the default port numbers; the test below runs the
  // README's commands on free ports, so that it never depends on what else
  // this machine is running.
  const readme = await readFile(join(PROJECT, 'README.md'), 'utf8');
  const table = [...readme.matchAll(/^\| [^|]+ \| (\d+) \| (\d+) \|$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(table.toSorted(), [...Object.values(defaults.ports), defaults.webmail.port].toSorted());
  assert.match(readme, new RegExp(`swaks --server 127\\.0\\.0\\.1:${defaults.ports.smtp} `), 'the README sends to the default SMTP port');
});

test("the README's commands on a fresh machine, whoever runs them (the defaults, on free ports)", async (t) => {
  if (isRoot && existsSync(SYSTEM_DATA_DIR)) return t.skip(`${SYSTEM_DATA_DIR} exists: tests leave a real installation alone`);
  // A config file that sets the port numbers and nothing else: every other
  // setting is the built-in default, as with a bare `npm start`. It lies
  // outside the private checkout so that the relay and webmail children,
  // which read it after the server dropped root, can read it too.
  const ports = Object.fromEntries(await Promise.all(Object.keys(defaults.ports).map(async (service) => [service, await freePort()])));
  const configFile = join(await workDir(), 'ports.json');
  await writeFile(configFile, JSON.stringify({ ports, webmail: { port: await freePort() } }), { mode: 0o644 });

  // As after `git clone` into a private home directory (root's is mode 0700).
  const checkout = await privateCheckout();
  const dataDir = isRoot ? SYSTEM_DATA_DIR : join(checkout, 'spool');
  if (isRoot) t.after(() => rm(SYSTEM_DATA_DIR, { recursive: true, force: true }));
  const server = await startMain(checkout, ['--config', configFile], join(checkout, 'src/main.ts'));
  try {
    const output = server.output();
    for (const [service, port] of Object.entries(ports)) {
      assert.match(output, new RegExp(`listening service=${service} address=127\\.0\\.0\\.1 port=${port}\\b`));
    }
    assert.match(output, new RegExp(`ready data=${dataDir} `), 'the server says where its data is');
    assert.match(output, /relay-started pid=\d+/, 'the relay process is started by default');
    if (isRoot) assert.match(output, /privileges outcome=dropped user=mail/);
    const cert = new X509Certificate(await readFile(join(dataDir, 'tls/cert.pem')));
    assert.match(cert.subjectAltName ?? '', /DNS:localhost/);

    // The next README steps, as written: adduser, send a message, read the INBOX.
    assert.equal(addUser('jjordan', [], checkout, join(checkout, 'src/auth/adduser.ts')).trim(), `added account jjordan (mail in ${dataDir}/mail/jjordan)`);
    await eventually(async () => {
      const result = await sendMail(ports.smtp, { from: 'alice@example.org', to: ['jjordan@localhost'], data: 'Subject: hi\r\n\r\nhello\r\n' });
      return result.final.code === 250;
    }, 'the new account to be known and the message accepted');
    const inbox = join(dataDir, 'mail/jjordan/INBOX');
    assert.match(await readFile(inbox, 'utf8'), /^From alice@example\.org /);
    assert.equal((await stat(inbox)).mode & 0o777, 0o600, 'mail is private');
    if (isRoot) assert.equal((await stat(inbox)).uid, mailIds().uid, 'and belongs to the server, not to root');
  } finally {
    assert.equal(await server.stop(), 0, 'SIGTERM exits 0');
  }

  // `npm run relay` on its own, from the same place: the same data directory, and no root.
  const relay = spawnProgram([], checkout, join(checkout, 'src/relay/main.ts'));
  try {
    await relay.waitFor(/relay started queue=/, 'the relay to start');
    assert.match(relay.output(), new RegExp(`relay started queue=${dataDir}/queue`));
    if (isRoot) assert.match(relay.output(), /relay privileges outcome=dropped user=mail/);
  } finally {
    assert.equal(await relay.stop(), 0, relay.output());
  }
});

test('SIGHUP reloads the certificate for new connections; SIGTERM exits 0', async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]);
  const first = createSelfSignedCertificate({ hostname: 'localhost' });
  const certFile = join(cwd, 'cert.pem');
  const keyFile = join(cwd, 'key.pem');
  // Readable by the user the server runs as (when root starts it, `mail`).
  const install = async (pair: { certPem: string; keyPem: string }) => {
    await writeFile(certFile, pair.certPem, { mode: 0o600 });
    await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
    if (isRoot) for (const file of [certFile, keyFile]) await chown(file, mailIds().uid, mailIds().gid);
  };
  await install(first);
  const ports = { smtp: await freePort(), submission: -1, smtps: await freePort(), pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
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
    await install(second);
    server.child.kill('SIGHUP');
    await server.waitFor(/tls-reloaded/, 'the reload');
    assert.equal(await fingerprint(), new X509Certificate(second.certPem).fingerprint256);
    assert.equal(server.child.exitCode, null, 'still running after SIGHUP');
    assert.equal((await readFile(join(dataDir, 'server.pid'), 'utf8')).trim(), String(server.child.pid), 'the PID file the certbot hook reads');
  } finally {
    assert.equal(await server.stop(), 0);
  }
  assert.match(server.output(), /shutdown signal=SIGTERM/);
  assert.equal(existsSync(join(dataDir, 'server.pid')), false, 'the PID file is removed on exit');
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
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  // As root the server drops to `mail`, which may not be able to run this node
  // binary again (npx keeps it under /root): a restart then fails by design
  // (and says why). Here we test the restarting, so keep root in that case.
  const runAs = isRoot ? { user: '', group: '', allowRoot: true } : undefined;
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
    assert.equal(await server.stop(), 0);
  }
  assert.match(server.output(), /relay shutdown signal=SIGTERM/, 'the relay is stopped with the server');
});
