// The start command's compile cache (src/compile-cache.mjs): a server
// started a second time reads its type-stripped sources from the cache and
// never loads Node's TypeScript parser, the largest part of its memory at
// rest. What is checked is the mechanism (which modules Node loaded), never
// a memory figure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const PRELOAD = fileURLToPath(new URL('../../src/compile-cache.mjs', import.meta.url));
const PROBE = fileURLToPath(new URL('./fixtures/compile-cache-probe.ts', import.meta.url));
const CACHE_DIR = fileURLToPath(new URL('../../.compile-cache', import.meta.url));

/** The environment without the variables that turn the cache on or off by themselves. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_COMPILE_CACHE;
  delete env.NODE_DISABLE_COMPILE_CACHE;
  return env;
}

async function probe(withPreload: boolean): Promise<{ parserLoaded: boolean }> {
  const { stdout } = await run(process.execPath, [...(withPreload ? ['--import', PRELOAD] : []), PROBE], { env: cleanEnv() });
  return JSON.parse(stdout);
}

test('with the preload, a second start runs the TypeScript sources without loading the parser', async () => {
  await probe(true); // fills the cache, if an earlier run has not
  assert.deepEqual(await probe(true), { parserLoaded: false });
  assert.deepEqual(await probe(false), { parserLoaded: true }, 'without it the parser is loaded every time');
});

test('the cache lives in the checkout, next to the sources it was made from', async () => {
  const { stdout } = await run(process.execPath, ['--import', PRELOAD, '-e', 'console.log(require("node:module").getCompileCacheDir())'], {
    env: cleanEnv(),
  });
  assert.ok(stdout.trim().startsWith(CACHE_DIR), stdout);
});
