// Queue and session ids (src/queue/queue-id.ts): unique within a process,
// different between processes (the server and the relay both name files in
// spool/queue/), and safe as file names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { newId } from '../../src/queue/queue-id.ts';

test('100,000 ids in a row are all different and only letters and digits', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 100_000; i++) {
    const id = newId();
    assert.match(id, /^[0-9A-Z]+$/);
    ids.add(id);
  }
  assert.equal(ids.size, 100_000);
});

test('two processes started at once never make the same id: the process id is part of it', () => {
  const module = fileURLToPath(new URL('../../src/queue/queue-id.ts', import.meta.url));
  const script = `import(${JSON.stringify(module)}).then((m) => console.log(m.newId(), process.pid.toString(36).toUpperCase()))`;
  const [id, pid] = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }).trim().split(' ');
  assert.ok(id.includes(pid), `${id} carries ${pid}`);
  assert.notEqual(id, newId());
});
