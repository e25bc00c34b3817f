// What the relay process holds at rest: the Node options it gets from the
// server's supervisor (the compile cache and the heap sizes, nothing else),
// and the modules it loads before it has anything to deliver (not the SMTP
// client and its TLS, which load with the first delivery).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { childNodeOptions } from '../../src/child-supervisor.ts';

const run = promisify(execFile);
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

test('the relay (and the webmail) get the compile cache and the heap sizes of the server, and no other Node option', () => {
  const server = ['--import', './src/compile-cache.mjs', '--max-semi-space-size=1', '--inspect-port=127.0.0.1:9229', '--cpu-prof', '--test-timeout=0', '--max-old-space-size=200'];
  const options = childNodeOptions(server, true);
  assert.equal(options[0], '--import');
  assert.equal(options[1], join(SRC, 'compile-cache.mjs'));
  assert.deepEqual(options.slice(2), ['--max-semi-space-size=1', '--max-old-space-size=200']);
  assert.deepEqual(childNodeOptions(server, false), ['--max-semi-space-size=1', '--max-old-space-size=200'], 'no cache when the server has none');
});

test('a relay with nothing to deliver has not loaded TLS or the SMTP client', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'relay-startup-'));
  try {
    // A fresh process: this test's own imports must not count.
    const script = `
      const { relayDeps } = await import(${JSON.stringify(join(SRC, 'relay/main.ts'))});
      const { defaults } = await import(${JSON.stringify(join(SRC, 'config.ts'))});
      const { createLogger } = await import(${JSON.stringify(join(SRC, 'log.ts'))});
      const config = structuredClone(defaults);
      config.dataDir = ${JSON.stringify(dataDir)};
      await relayDeps(config, createLogger({ quiet: true }));
      console.log(JSON.stringify(process.moduleLoadList.filter((name) => /^NativeModule (tls|_tls_wrap)$/.test(name))));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    assert.deepEqual(JSON.parse(stdout), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
