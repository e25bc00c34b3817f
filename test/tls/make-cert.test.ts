// The make-cert command, run as a real process in a scratch directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmod, chown, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { scratchDir } from './helpers.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/make-cert.ts', import.meta.url));
const run = (args: string[], cwd: string) =>
  promisify(execFile)(process.execPath, [SCRIPT, ...args], { cwd }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('writes <data directory>/tls/{cert,key}.pem and prints the fingerprint and dates', async () => {
  const cwd = await scratchDir('make-cert');
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir: 'spool' }));
  const { code, stdout } = await run(['--hostname', 'mail.example.org', '--days', '10', '--alt', '127.0.0.1', '--config', 'mail.json'], cwd);
  assert.equal(code, 0);
  const certPath = join(cwd, 'spool', 'tls', 'cert.pem');
  const x509 = new X509Certificate(await readFile(certPath));
  assert.ok(stdout.includes(certPath));
  assert.ok(stdout.includes(x509.fingerprint256));
  assert.ok(stdout.includes(x509.validToDate.toISOString()));
  assert.equal(x509.subjectAltName, 'DNS:mail.example.org, IP Address:127.0.0.1');
  assert.equal((await stat(join(cwd, 'spool', 'tls', 'key.pem'))).mode & 0o777, 0o600);

  // A second run refuses to overwrite, unless told to.
  const again = await run(['--hostname', 'mail.example.org', '--config', 'mail.json'], cwd);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
  assert.equal((await run(['--hostname', 'mail.example.org', '--force', '--config', 'mail.json'], cwd)).code, 0);
});

const mailUid = Number(spawnSync('id', ['-u', 'mail'], { encoding: 'utf8' }).stdout.trim());
const canSwitch = process.getuid?.() === 0 && Number.isInteger(mailUid) && mailUid > 0;

test('as root, it writes as the owner of the data directory, so the server can read the key', { skip: !canSwitch && 'needs root and a mail user' }, async () => {
  const cwd = await scratchDir('make-cert');
  await chmod(cwd, 0o755);
  const dataDir = join(cwd, 'data');
  await mkdir(dataDir);
  await chown(dataDir, mailUid, mailUid);
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir }));
  assert.equal((await run(['--hostname', 'mail.example.org', '--config', 'mail.json'], cwd)).code, 0);
  for (const name of ['tls', 'tls/key.pem', 'tls/cert.pem']) assert.equal((await stat(join(dataDir, name))).uid, mailUid, name);
});

test('usage mistakes exit 2', async () => {
  const cwd = await scratchDir('make-cert');
  assert.equal((await run([], cwd)).code, 2);
  assert.equal((await run(['--hostname', 'a.test', '--days', 'x'], cwd)).code, 2);
  assert.equal((await run(['--hostname', 'bad name', '--out', 'x'], cwd)).code, 2);
});
