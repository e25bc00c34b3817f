// Tests for ChangedFiles: files are read on the first call and then only
// when one of them changed, a missing file reads as empty, and a failed read
// is tried again on the next call.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChangedFiles } from '../../src/auth/changed-files.ts';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'changed-files-test-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('read once, then only after a change; a missing file is empty', async (t) => {
  const dir = await tempDir(t);
  const [one, two] = [join(dir, 'one'), join(dir, 'two')];
  await writeFile(one, 'first');
  const files = new ChangedFiles([one, two]);
  assert.deepEqual(await files.readIfChanged(), ['first', '']);
  assert.equal(await files.readIfChanged(), null);
  await writeFile(two, 'now here');
  assert.deepEqual(await files.readIfChanged(), ['first', 'now here']);
  await rm(one);
  assert.deepEqual(await files.readIfChanged(), ['', 'now here']);
  assert.equal(await files.readIfChanged(), null);
});

test('a same-size replacement by rename is seen (the inode changed)', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'passwd');
  await writeFile(path, 'aaaa');
  const files = new ChangedFiles([path]);
  await files.readIfChanged();
  // Keep the new file's inode distinct from the old one while both exist.
  await writeFile(`${path}.new`, 'bbbb');
  await rename(`${path}.new`, path);
  assert.deepEqual(await files.readIfChanged(), ['bbbb']);
});

test('a file that cannot be read throws, and is read on the next call', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'passwd');
  await mkdir(path); // stat works, reading fails (EISDIR), even as root
  const files = new ChangedFiles([path]);
  await assert.rejects(files.readIfChanged(), { code: 'EISDIR' });
  await rm(path, { recursive: true });
  await writeFile(path, 'fixed');
  assert.deepEqual(await files.readIfChanged(), ['fixed']);
});
