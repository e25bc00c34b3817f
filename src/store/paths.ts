// Where each account's mailboxes live on disk, and the rules that keep a
// client-chosen mailbox name from ever escaping the account's directory.
//
// Layout: one plain mbox file per folder, the store's own files beside it
// under hidden names ("jjordan.TXT model"):
//   <dataDir>/mail/<account>/INBOX               the inbox, an mbox file
//   <dataDir>/mail/<account>/Archive.sbd/2024    subfolders (folders.ts)
//   <dataDir>/mail/<account>/INBOX.lock          a dot-lock (dotlock.ts)
//   <dataDir>/mail/<account>/.lock-stamp.PID.N   what this server's locks there are linked from (dotlock-stamp.ts)
//   <dataDir>/mail/<account>/.INBOX.index        the side index (mbox-index.ts)
//   <dataDir>/mail/<account>/.INBOX.flags        its flag journal (flag-journal.ts)
//   <dataDir>/mail/<account>/.INBOX.append       the append journal (append-journal.ts)
//   <dataDir>/mail/<account>/.INBOX.cache        parsed ENVELOPEs etc. (message-cache.ts)
// (Names starting with "." are never mailboxes: the store's own files,
// such as these and the dot-lock's break file, cannot collide with one.)
// The rules for folder names are in folder-names.ts.

import * as path from 'node:path';
import { folderPath } from './folder-names.ts';
import { InvalidMailboxNameError } from './store-errors.ts';

export { InvalidMailboxNameError };

/** An account name that is not a safe directory name. */
export class InvalidAccountNameError extends Error {
  override name = 'InvalidAccountNameError';
}

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** `<dataDir>/mail`: the root of all accounts' mailboxes. */
export function mailDir(dataDir: string): string {
  return path.join(dataDir, 'mail');
}

/** Lowercase letters, digits, ".", "_", "-"; 1-64 chars; no "..". */
export function isValidAccountName(name: string): boolean {
  return ACCOUNT_NAME.test(name) && !name.includes('..');
}

/** `<dataDir>/mail/<account>`; throws InvalidAccountNameError if unsafe. */
export function accountDir(dataDir: string, account: string): string {
  if (!isValidAccountName(account)) {
    throw new InvalidAccountNameError(`invalid account name: ${JSON.stringify(account)}`);
  }
  return path.join(mailDir(dataDir), account);
}

/**
 * The mbox file for `folder` of `account` (folder-names.ts: INBOX in any
 * case is the file "INBOX"; "/" separates levels, whose files live in
 * "<parent>.sbd/"). Throws InvalidAccountNameError or InvalidMailboxNameError.
 */
export function mailboxPath(dataDir: string, account: string, folder: string): string {
  return folderPath(accountDir(dataDir, account), folder);
}
