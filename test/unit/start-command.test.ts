// The start commands in package.json (`npm start`, `npm run relay`) carry
// the settings that keep the server small on a small board (README,
// Benchmarks): the compile cache, a small young generation, and a fixed
// mmap threshold for glibc, so that each scrypt block (16 MiB) is given back
// to the system after a login. Each command is run as npm runs it (sh -c),
// with a probe in place of the server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRYPT_BLOCK = 16 * 1024 * 1024; // N = 2^14, r = 8 (auth/password.ts)

async function probe(script: 'start' | 'relay'): Promise<{ mmapThreshold: string | null; compileCache: string | null; execArgv: string[] }> {
  const scripts = JSON.parse(await readFile(`${ROOT}package.json`, 'utf8')).scripts as Record<string, string>;
  const entry = script === 'start' ? ' src/main.ts' : ' src/relay/main.ts';
  assert.ok(scripts[script].endsWith(entry), scripts[script]);
  const command = scripts[script].slice(0, -entry.length) + ' test/unit/fixtures/start-probe.mjs';
  // The command says `node`: this test's own node comes first on the PATH.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  delete env.MALLOC_MMAP_THRESHOLD_;
  const { stdout } = await run('sh', ['-c', command], { cwd: ROOT, env });
  return JSON.parse(stdout);
}

for (const script of ['start', 'relay'] as const) {
  test(`npm ${script === 'start' ? 'start' : 'run relay'}: compile cache, young generation, and scrypt blocks given back`, async () => {
    const { mmapThreshold, compileCache, execArgv } = await probe(script);
    const threshold = Number(mmapThreshold);
    assert.ok(threshold > 0 && threshold < SCRYPT_BLOCK, `MALLOC_MMAP_THRESHOLD_=${mmapThreshold}`);
    assert.ok(compileCache?.startsWith(`${ROOT}.compile-cache`), String(compileCache));
    assert.ok(execArgv.some((option) => /^--max-semi-space-size=\d+$/.test(option)), execArgv.join(' '));
  });
}
