// End-to-end tests for the adduser command: run it as a real process with
// the password on a pipe, then check the files it left behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Accounts } from '../../src/auth/accounts.ts';

const SCRIPT = fileURLToPath(new URL('../../src/auth/adduser.ts', import.meta.url));

type Run = { code: number | null; stdout: string; stderr: string };

function runAdduser(args: string[], input: string, cwd?: string, as?: { uid: number; gid: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'], ...as });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'adduser-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('adds an account from a piped password, then changes it', async (t) => {
  const dir = await tempDir(t);
  const first = await runAdduser(['jjordan', '--data', dir], 'secret\n');
  assert.equal(first.code, 0, first.stderr);
  assert.equal(first.stdout.trim(), `added account jjordan (mail in ${join(dir, 'mail', 'jjordan')})`);

  const passwd = await readFile(join(dir, 'passwd'), 'utf8');
  assert.match(passwd, /^jjordan:\$scrypt\$[^\n]+\n$/);
  assert.ok(!passwd.includes('secret'));
  assert.equal((await stat(join(dir, 'passwd'))).mode & 0o777, 0o600);
  const accounts = await Accounts.load({ dataDir: dir, domains: ['example.org'] });
  assert.equal(await accounts.verify('jjordan', 'secret'), true);

  // Windows line ending, and a second line that must be ignored.
  const second = await runAdduser(['jjordan', '--data', dir], 'changed\r\nignored\n');
  assert.equal(second.code, 0, second.stderr);
  assert.equal(second.stdout.trim(), 'changed password of jjordan');
  const again = await Accounts.load({ dataDir: dir, domains: ['example.org'] });
  assert.equal(await again.verify('jjordan', 'changed'), true);
  assert.equal(await again.verify('jjordan', 'secret'), false);
});

test('takes the data directory from --config, relative to the current directory', async (t) => {
  const dir = await tempDir(t);
  // Run as root, adduser becomes the server's user, who must reach the directory.
  await chmod(dir, 0o755);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ dataDir: 'data', domains: ['example.org'] }));
  const run = await runAdduser(['alice', '--config', 'config.json'], 'pw\n', dir);
  assert.equal(run.code, 0, run.stderr);
  assert.match(await readFile(join(dir, 'data', 'passwd'), 'utf8'), /^alice:/);
});

test('run by an ordinary user, defaults to ./spool', async (t) => {
  const dir = await tempDir(t);
  // Run by root the default is /var/lib/jjordan-mail (test/e2e/root-startup.test.ts): be `nobody` here.
  const id = (flag: string) => Number(execFileSync('id', [flag, 'nobody'], { encoding: 'utf8' }));
  const nobody = process.getuid?.() === 0 ? { uid: id('-u'), gid: id('-g') } : undefined;
  if (nobody) {
    const probe = spawnSync(process.execPath, ['-e', `require('fs').readFileSync(${JSON.stringify(SCRIPT)})`], nobody);
    if (probe.status !== 0) return t.skip('nobody cannot run this node binary or read the sources (installed under /root?)');
    await chmod(dir, 0o755);
    await chown(dir, nobody.uid, nobody.gid);
  }
  const run = await runAdduser(['bob'], 'pw', dir, nobody); // no newline at all
  assert.equal(run.code, 0, run.stderr);
  assert.match(await readFile(join(dir, 'spool', 'passwd'), 'utf8'), /^bob:/);
});

test('a bad name exits 2 and writes nothing', async (t) => {
  const dir = await tempDir(t);
  for (const name of ['Bad/Name', '../x', 'UPPER']) {
    const run = await runAdduser([name, '--data', dir], 'secret\n');
    assert.equal(run.code, 2, name);
    assert.match(run.stderr, /invalid account name/);
  }
  await assert.rejects(stat(join(dir, 'passwd')), { code: 'ENOENT' });
});

test('an empty password exits 2', async (t) => {
  const dir = await tempDir(t);
  for (const input of ['\n', '']) {
    const run = await runAdduser(['jjordan', '--data', dir], input);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /password must not be empty/);
  }
  await assert.rejects(stat(join(dir, 'passwd')), { code: 'ENOENT' });
});

test('usage mistakes exit 2', async (t) => {
  const dir = await tempDir(t);
  for (const args of [[], ['a', 'b'], ['jjordan', '--bogus'], ['jjordan', '--config', join(dir, 'missing.json')]]) {
    const run = await runAdduser(args, 'pw\n');
    assert.equal(run.code, 2, args.join(' '));
    assert.match(run.stderr, /usage: npm run adduser/);
  }
});

test('importing the module runs nothing', async () => {
  const mod = await import('../../src/auth/adduser.ts');
  assert.equal(typeof mod.main, 'function');
});
