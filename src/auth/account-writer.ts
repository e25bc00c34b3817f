// Writing an account: what `npm run adduser` (adduser.ts) and the tests
// call to create an account or change its password.
//
// Invariants:
// - No plaintext password is ever written to disk (only scrypt hashes).
// - passwd is replaced by an atomic rename (safeio.ts), so a running server
//   (accounts.ts re-reads it when it changes) never sees a half-written file.

import { lchown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { accountDir, isValidAccountName, mailDir } from '../store/paths.ts';
import { writeFileAtomic } from '../store/safeio.ts';
import { readIfExists } from './changed-files.ts';
import { setPasswdLine } from './files.ts';
import { hashPassword } from './password.ts';

/**
 * Create an account or change its password. Returns which of the two it did.
 * Only the scrypt hash is written, into passwd (mode 0600).
 *
 * Two adduser runs at the same instant could each miss the other's change;
 * this is an operator's tool, run by hand, so we accept that.
 */
export async function addAccount(dataDir: string, name: string, password: string): Promise<'added' | 'changed'> {
  if (!isValidAccountName(name)) {
    throw new Error(`invalid account name ${JSON.stringify(name)}: use a-z, 0-9, '.', '_', '-' (up to 64)`);
  }
  if (password === '') throw new Error('the password must not be empty');
  const hash = await hashPassword(password);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const passwdPath = join(dataDir, 'passwd');
  const updated = setPasswdLine(await readIfExists(passwdPath), name, hash);
  await writeFileAtomic(passwdPath, updated.text, { mode: 0o600 });
  await mkdir(accountDir(dataDir, name), { recursive: true, mode: 0o700 });
  await giveToDataDirOwner(dataDir, [passwdPath, mailDir(dataDir), accountDir(dataDir, name)]);
  return updated.replaced ? 'changed' : 'added';
}

/**
 * Run as root, `adduser` would leave root-owned files that the server (which
 * drops to runAs.user, the owner of the data directory) cannot read. Files in
 * the data directory belong to the data directory's owner. lchown, never
 * chown: the mail user may have put a link where the account directory
 * goes, and root must not follow it (the link itself is all that changes).
 */
async function giveToDataDirOwner(dataDir: string, paths: string[]): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const owner = await stat(dataDir);
  if (owner.uid === 0) return;
  for (const path of paths) await lchown(path, owner.uid, owner.gid);
}
