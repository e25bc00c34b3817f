import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { defaults, loadConfig, mergeConfig, ConfigError, SYSTEM_DATA_DIR } from '../../src/config.ts';

test('no config file: the embedded defaults', () => {
  const config = loadConfig();
  assert.equal(config.hostname, 'localhost');
  assert.equal(config.ports.smtp, 2525);
  assert.equal(config.dataDir, process.getuid?.() === 0 ? SYSTEM_DATA_DIR : resolve('spool'), 'see test/unit/data-dir.test.ts');
});

test('a config file overrides nested keys and keeps the rest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'config-'));
  try {
    const path = join(dir, 'mail.json');
    await writeFile(path, JSON.stringify({ hostname: 'mail.example.org', domains: ['Example.ORG'], limits: { maxRecipients: 50 } }));
    const config = loadConfig(path);
    assert.equal(config.hostname, 'mail.example.org');
    assert.deepEqual(config.domains, ['example.org']);
    assert.equal(config.limits.maxRecipients, 50);
    assert.equal(config.limits.maxMessageBytes, defaults.limits.maxMessageBytes);
    assert.equal(defaults.limits.maxRecipients, 100, 'the defaults themselves are untouched');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('unknown keys and wrong types stop start-up, naming the key', () => {
  assert.throws(() => mergeConfig(defaults, { hostnme: 'x' }), (e: Error) => e instanceof ConfigError && /"hostnme"/.test(e.message));
  assert.throws(() => mergeConfig(defaults, { limits: { maxRecipent: 5 } }), /"limits.maxRecipent" is unknown/);
  assert.throws(() => mergeConfig(defaults, { ports: { smtp: '25' } }), /"ports.smtp" must be a number/);
  assert.throws(() => mergeConfig(defaults, { domains: 'example.org' }), /"domains" must be an array of strings/);
  assert.throws(() => mergeConfig(defaults, { limits: 5 }), /"limits": expected an object/);
});

test('a file that is not JSON, or missing, is a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'config-'));
  try {
    await writeFile(join(dir, 'bad.json'), '{ hostname: ');
    assert.throws(() => loadConfig(join(dir, 'bad.json')), /not valid JSON/);
    assert.throws(() => loadConfig(join(dir, 'missing.json')), /cannot read config file/);
    await writeFile(join(dir, 'no-domains.json'), '{ "domains": [] }');
    assert.throws(() => loadConfig(join(dir, 'no-domains.json')), /"domains" must list at least one domain/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
