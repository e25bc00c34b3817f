// The data directory rule (config.ts dataDirOf), shared by the server, the
// relay, adduser and the scripts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dataDirOf, defaults, loadConfig, mergeConfig, SYSTEM_DATA_DIR } from '../../src/config.ts';

test('no dataDir in the config: spool/ for an ordinary user, the system directory for root', () => {
  assert.equal(SYSTEM_DATA_DIR, '/var/lib/jjordan-mail');
  assert.equal(dataDirOf(defaults, false), resolve('spool'));
  assert.equal(dataDirOf(defaults, true), SYSTEM_DATA_DIR);
});

test('a dataDir in the config is taken as given, relative to the working directory', () => {
  for (const startedAsRoot of [false, true]) {
    assert.equal(dataDirOf(mergeConfig(defaults, { dataDir: '/srv/mail' }), startedAsRoot), '/srv/mail');
    assert.equal(dataDirOf(mergeConfig(defaults, { dataDir: 'data' }), startedAsRoot), resolve('data'));
  }
});

test('loadConfig decides the directory once, as an absolute path that later calls keep', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'data-dir-'));
  try {
    await writeFile(join(dir, 'mail.json'), JSON.stringify({ dataDir: 'relative/data' }));
    const config = loadConfig(join(dir, 'mail.json'));
    assert.equal(config.dataDir, resolve('relative/data'));
    // After dropping root the rule would say spool/; the decided path stays.
    assert.equal(dataDirOf(config, false), config.dataDir);
    assert.equal(dataDirOf(loadConfig(), false), loadConfig().dataDir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
