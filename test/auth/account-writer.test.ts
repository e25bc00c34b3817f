// addAccount run as root (adduser started by root, or a test) gives what it
// made to the data directory's owner, and never follows a link while doing
// so: a link the mail user planted where the account directory goes must
// not make root change the owner of what it points to.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chown, lstat, mkdir, mkdtemp, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAccount } from '../../src/auth/account-writer.ts';
import { accountDir, mailDir } from '../../src/store/paths.ts';

const isRoot = process.getuid?.() === 0;
const OWNER = 65534; // nobody

test('as root: the new files belong to the data directory owner, and a planted link is not followed', { skip: !isRoot && 'needs root' }, async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'account-writer-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const dataDir = join(base, 'data');
  const outside = join(base, 'outside');
  await mkdir(outside);
  await mkdir(mailDir(dataDir), { recursive: true });
  await chown(dataDir, OWNER, OWNER);
  await symlink(outside, accountDir(dataDir, 'jjordan'));

  assert.equal(await addAccount(dataDir, 'jjordan', 'secret'), 'added');
  assert.equal((await stat(outside)).uid, 0, 'the link target kept its owner');
  assert.equal((await lstat(accountDir(dataDir, 'jjordan'))).uid, OWNER, 'the link itself is the owner\'s');
  assert.equal((await stat(join(dataDir, 'passwd'))).uid, OWNER);
  assert.equal((await stat(mailDir(dataDir))).uid, OWNER);
});
