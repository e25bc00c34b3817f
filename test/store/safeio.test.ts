// writeFileAtomic: the target holds the old or the new content, never a mix,
// and no temporary file is left behind, even on failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '../../src/store/safeio.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('safeio');

test('creates a file with the content and mode 0600 by default', async () => {
  const target = path.join(dir, 'created');
  await writeFileAtomic(target, 'hello\n');
  assert.equal(await fs.readFile(target, 'utf8'), 'hello\n');
  assert.equal((await fs.stat(target)).mode & 0o777, 0o600);
});

test('replaces an existing file, honours mode, and leaves no temporary file', async () => {
  const sub = path.join(dir, 'replace');
  await fs.mkdir(sub);
  const target = path.join(sub, 'config');
  await fs.writeFile(target, 'old content that is longer than the new one');
  await writeFileAtomic(target, Buffer.from([0, 1, 2, 255]), { mode: 0o400 });
  assert.deepEqual(await fs.readFile(target), Buffer.from([0, 1, 2, 255]));
  assert.equal((await fs.stat(target)).mode & 0o777, 0o400);
  assert.deepEqual(await fs.readdir(sub), ['config']);
});

test('a failed rename leaves the target untouched and removes the temporary file', async () => {
  const sub = path.join(dir, 'fail');
  await fs.mkdir(path.join(sub, 'target'), { recursive: true });
  await fs.writeFile(path.join(sub, 'target', 'inside'), 'keep');
  // Renaming a file over a non-empty directory fails (EISDIR/ENOTEMPTY).
  await assert.rejects(writeFileAtomic(path.join(sub, 'target'), 'new'));
  assert.deepEqual(await fs.readdir(sub), ['target']);
  assert.equal(await fs.readFile(path.join(sub, 'target', 'inside'), 'utf8'), 'keep');
});

test('a missing directory is an error, not a silent mkdir', async () => {
  await assert.rejects(writeFileAtomic(path.join(dir, 'no-such-dir', 'f'), 'x'), { code: 'ENOENT' });
});
