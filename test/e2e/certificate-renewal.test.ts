// Certificate renewal end to end, with certbot's real layout: its
// directories 0700 and the private key 0600, all root's, and a server that
// started as root and now runs as `mail`. Only as root (CI runs the tests as
// root), since that is the case being tested.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';
import { DEPLOY_HOOK, MAIN, addUser, freePort, isRoot, mailIds, startMain, workDir } from './main-helpers.ts';

const needsRoot = isRoot ? false : 'only as root (as CI runs the tests): certbot runs as root and the server as mail';

/** A certbot lineage: /etc/letsencrypt/live/NAME, 0700, root's, the key 0600. */
async function certbotLineage(parent: string, pair: { certPem: string; keyPem: string }): Promise<string> {
  const lineage = join(parent, 'letsencrypt/live/mail.example.test');
  await mkdir(lineage, { recursive: true, mode: 0o700 });
  await writeFile(join(lineage, 'fullchain.pem'), pair.certPem, { mode: 0o644 });
  await writeFile(join(lineage, 'privkey.pem'), pair.keyPem, { mode: 0o600 });
  return lineage;
}

function runHook(cwd: string, lineage: string) {
  return spawnSync(process.execPath, [DEPLOY_HOOK, '--config', 'mail.json'], {
    cwd,
    env: { ...process.env, RENEWED_LINEAGE: lineage },
    encoding: 'utf8',
    timeout: 30_000, // a bound only: a loaded machine may take seconds to start node
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

test('renewal: a key only root can read fails the reload loudly; the deploy hook makes it work', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]);
  const smtps = await freePort();
  const ports = { smtp: await freePort(), submission: -1, smtps, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports, relay: { enabled: false } }));
  const server = await startMain(cwd, ['--config', 'mail.json']);
  const served = async () => {
    const socket = tlsConnect({ port: smtps, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((ok, fail) => socket.once('secureConnect', ok).once('error', fail));
    const seen = socket.getPeerCertificate().fingerprint256;
    socket.destroy();
    return seen;
  };
  try {
    const tlsDir = join(dataDir, 'tls');
    const selfSigned = await served();

    // Renewed by certbot, then copied by hand as root, modes kept: the new
    // certificate is root's 0644, the new key root's 0600.
    const renewed = createSelfSignedCertificate({ hostname: 'mail.example.test', days: 10 });
    const lineage = await certbotLineage(cwd, renewed);
    for (const [file, pem, mode] of [['cert.pem', renewed.certPem, 0o644], ['key.pem', renewed.keyPem, 0o600]] as const) {
      await unlink(join(tlsDir, file));
      await writeFile(join(tlsDir, file), pem, { mode });
    }
    server.child.kill('SIGHUP');
    await server.waitFor(/tls-reload-failed/, 'the failed reload');
    assert.match(server.output(), /tls-reload-failed level=error error=".*key\.pem is not readable by user mail \(permission denied\)/);
    assert.equal(await served(), selfSigned, 'the old certificate is still served');

    // The hook, as certbot runs it: as root, RENEWED_LINEAGE set.
    const hook = runHook(cwd, lineage);
    assert.equal(hook.status, 0, hook.stderr);
    assert.match(hook.stdout, new RegExp(`asked the server \\(pid ${server.child.pid}\\) to reload`));
    await server.waitFor(/tls-reloaded/, 'the reload');
    assert.equal(await served(), fingerprintOf(renewed.certPem), 'the renewed certificate is served');
    for (const file of ['cert.pem', 'key.pem']) {
      const info = await stat(join(tlsDir, file));
      assert.equal(info.uid, mailIds().uid, `${file} belongs to the server's user`);
      assert.equal(info.mode & 0o777, 0o600, `${file} is private`);
    }
    // This one expires in 10 days: the log says so.
    assert.match(server.output(), /tls-expiring level=warning certificate=\S+cert\.pem message="TLS certificate \S+ expires in \d+ days/);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

test('the deploy hook installs nothing when the key does not belong to the certificate', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]);
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir }));
  const one = createSelfSignedCertificate({ hostname: 'mail.example.test' });
  const other = createSelfSignedCertificate({ hostname: 'mail.example.test' });
  const lineage = await certbotLineage(cwd, { certPem: one.certPem, keyPem: other.keyPem });
  const hook = runHook(cwd, lineage);
  assert.equal(hook.status, 1);
  assert.match(hook.stderr, /privkey\.pem does not belong to the certificate/);
  await assert.rejects(stat(join(dataDir, 'tls')), { code: 'ENOENT' });

  // With no server running, a good pair is installed for its next start.
  const good = await certbotLineage(join(cwd, 'second'), one);
  const installed = runHook(cwd, good);
  assert.equal(installed.status, 0, installed.stderr);
  assert.match(installed.stdout, /no server is running/);
  assert.equal((await stat(join(dataDir, 'tls/key.pem'))).uid, mailIds().uid);
});

test("a configured certificate the server's user cannot read stops the start, pointing at the hook", { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const lineage = await certbotLineage(cwd, createSelfSignedCertificate({ hostname: 'mail.example.test' }));
  const tls = { certFile: join(lineage, 'fullchain.pem'), keyFile: join(lineage, 'privkey.pem') };
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir: join(cwd, 'data'), ports, tls, relay: { enabled: false } }));
  const run = spawnSync(process.execPath, [MAIN, '--config', 'mail.json'], { cwd, encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2, run.stdout + run.stderr);
  assert.match(run.stderr, /fullchain\.pem is not readable by user mail \(permission denied\).*certbot-deploy-hook\.ts/);
});
