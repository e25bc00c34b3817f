// The make-cert command, run as a real process in a scratch directory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
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

test('writes spool/tls/{cert,key}.pem and prints the fingerprint and dates', async () => {
  const cwd = await scratchDir('make-cert');
  const { code, stdout } = await run(['--hostname', 'mail.example.org', '--days', '10', '--alt', '127.0.0.1'], cwd);
  assert.equal(code, 0);
  const certPath = join(cwd, 'spool', 'tls', 'cert.pem');
  const x509 = new X509Certificate(await readFile(certPath));
  assert.ok(stdout.includes(certPath));
  assert.ok(stdout.includes(x509.fingerprint256));
  assert.ok(stdout.includes(x509.validToDate.toISOString()));
  assert.equal(x509.subjectAltName, 'DNS:mail.example.org, IP Address:127.0.0.1');
  assert.equal((await stat(join(cwd, 'spool', 'tls', 'key.pem'))).mode & 0o777, 0o600);

  // A second run refuses to overwrite, unless told to.
  const again = await run(['--hostname', 'mail.example.org'], cwd);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
  assert.equal((await run(['--hostname', 'mail.example.org', '--force'], cwd)).code, 0);
});

test('usage mistakes exit 2', async () => {
  const cwd = await scratchDir('make-cert');
  assert.equal((await run([], cwd)).code, 2);
  assert.equal((await run(['--hostname', 'a.test', '--days', 'x'], cwd)).code, 2);
  assert.equal((await run(['--hostname', 'bad name', '--out', 'x'], cwd)).code, 2);
});
