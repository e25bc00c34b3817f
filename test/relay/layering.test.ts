// The relay and the SMTP server share store and queue code, never each
// other's sessions (the project's layering rule): no module of the relay
// imports from src/smtp/ or src/pop3/. Read from the sources themselves, so
// a new import that breaks the rule fails here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const RELAY = fileURLToPath(new URL('../../src/relay/', import.meta.url));

test('no module in src/relay imports from src/smtp or src/pop3', async () => {
  const files = (await readdir(RELAY)).filter((name) => name.endsWith('.ts'));
  assert.ok(files.includes('main.ts') && files.includes('runner.ts'));
  for (const file of files) {
    const source = await readFile(RELAY + file, 'utf8');
    const imports = [...source.matchAll(/^(?:import|export)\b[^;]*?from\s+'([^']+)'/gms)].map((match) => match[1]);
    assert.ok(imports.length > 0 || !/^import /m.test(source), `${file}: imports not found`);
    for (const target of imports) assert.doesNotMatch(target, /\/(smtp|pop3)\//, `${file} imports ${target}`);
  }
});
