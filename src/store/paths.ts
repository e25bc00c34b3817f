// Where each account's mailboxes live on disk, and the rules that keep a
// client-chosen mailbox name from ever escaping the account's directory.
//
// Layout ("jjordan.TXT model": one plain mbox file per mailbox):
//   <dataDir>/mail/<account>/INBOX          the inbox, an mbox file
//   <dataDir>/mail/<account>/Sent           another folder
//   <dataDir>/mail/<account>/Lists/node     "/" is the hierarchy separator
//   <dataDir>/mail/<account>/INBOX.lock     a dot-lock (dotlock.ts)
//   <dataDir>/mail/<account>/.INBOX.index   the side index (mbox-index.ts)
//   <dataDir>/mail/<account>/.INBOX.append  the append journal (append-journal.ts)
// (Names starting with "." are never mailboxes: the store's own files,
// such as these and the dot-lock's break file, cannot collide with one.)
//
// Folder names come from IMAP clients, i.e. from the network, so each path
// component is checked (no "..", no hidden or lock-like names, no control
// characters) and, as a last line of defence, the resolved path must still
// be inside the account directory.

import * as path from 'node:path';

/** A mailbox name that cannot be stored safely. */
export class InvalidMailboxNameError extends Error {
  override name = 'InvalidMailboxNameError';
}

/** An account name that is not a safe directory name. */
export class InvalidAccountNameError extends Error {
  override name = 'InvalidAccountNameError';
}

const ACCOUNT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// C0 controls (NUL included), DEL, and backslash (a separator on Windows).
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\]/;
// Most filesystems limit one name to 255 bytes.
const MAX_COMPONENT_BYTES = 255;

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
 * The mbox file for `folder` of `account`. INBOX is case-insensitive
 * (RFC 3501 section 5.1) and always maps to the file "INBOX"; other names
 * keep their case and may use "/" as hierarchy separator.
 */
export function mailboxPath(dataDir: string, account: string, folder: string): string {
  const base = accountDir(dataDir, account);
  const components = folder.split('/');
  if (components[0].toUpperCase() === 'INBOX') {
    // INBOX is a file, so in an mbox store it cannot also be a directory.
    if (components.length > 1) throw invalid(folder, 'INBOX cannot contain other mailboxes');
    components[0] = 'INBOX';
  }
  for (const component of components) checkComponent(folder, component);

  const result = path.join(base, ...components);
  // Defence in depth: whatever the checks above missed, never leave `base`.
  const relative = path.relative(base, result);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) {
    throw invalid(folder, 'resolves outside the account directory');
  }
  return result;
}

function checkComponent(folder: string, component: string): void {
  if (component === '') throw invalid(folder, 'empty name component');
  if (component === '.' || component === '..') throw invalid(folder, 'relative component');
  // Names starting with "." are reserved for side-index and temporary files.
  if (component.startsWith('.')) throw invalid(folder, 'component starts with "."');
  if (FORBIDDEN_CHARS.test(component)) throw invalid(folder, 'control character or backslash');
  if (Buffer.byteLength(component, 'utf8') > MAX_COMPONENT_BYTES) throw invalid(folder, 'component too long');
  // "X.lock" would collide with the dot-lock of mailbox "X". Checked without
  // case, as on a case-insensitive filesystem "X.LOCK" collides too.
  if (component.toLowerCase().endsWith('.lock')) throw invalid(folder, 'component ends in ".lock"');
}

function invalid(folder: string, why: string): InvalidMailboxNameError {
  return new InvalidMailboxNameError(`invalid mailbox name ${JSON.stringify(folder)}: ${why}`);
}
