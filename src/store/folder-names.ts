// Folder names and the files they map to (the layout is in folders.ts).
//
// A name comes from an IMAP client, that is from the network: a Unicode
// string (the IMAP layer has undone modified UTF-7) with "/" between the
// levels. Every component is checked, so that no name can reach outside
// the account's directory, land on the store's own files, or collide with
// another folder on a disk that ignores case:
//  - normalised to NFC (the same name typed on a Mac and on Linux is one
//    folder), 1 to 200 bytes of UTF-8;
//  - no C0 control character, DEL or backslash (a separator on Windows);
//  - not "." or "..", and not starting with "." (the store's files:
//    ".INBOX.index", ".subscriptions", ...);
//  - not ending in ".lock" (a dot-lock) or ".sbd" (a subfolder directory),
//    in any case.
// The whole name is at most MAX_DEPTH levels and MAX_NAME_BYTES bytes.
// "INBOX" at the top level is the inbox in any case (RFC 3501 5.1) and
// always the file "INBOX". As a last line of defence the resolved path
// must still be inside the account directory.

import * as path from 'node:path';
import { InvalidMailboxNameError } from './store-errors.ts';

export { InvalidMailboxNameError };

/** RFC 3501 6.3.8 hierarchy delimiter. */
export const DELIMITER = '/';
/** Longest component, in bytes of UTF-8 (file systems allow 255; ".<name>.index" needs room). */
export const MAX_COMPONENT_BYTES = 200;
/** Longest whole name, in bytes. */
export const MAX_NAME_BYTES = 1000;
/** Deepest nesting. */
export const MAX_DEPTH = 16;
/** Where a folder's subfolders live: "Archive" has them in "Archive.sbd/" (Thunderbird's layout). */
export const SUBFOLDER_SUFFIX = '.sbd';

// C0 controls (NUL included), DEL, and backslash.
const FORBIDDEN_CHARS = /[\u0000-\u001f\u007f\\]/;

/**
 * The name in its canonical form: NFC, "INBOX" spelled so at the top
 * level. Throws InvalidMailboxNameError if it breaks a rule of the header.
 */
export function canonicalName(name: string): string {
  const components = splitName(name);
  return components.join(DELIMITER);
}

/** The canonical components of `name` (see canonicalName). */
export function splitName(name: string): string[] {
  if (typeof name !== 'string') throw invalid(String(name), 'not a string');
  const normal = name.normalize('NFC');
  if (Buffer.byteLength(normal, 'utf8') > MAX_NAME_BYTES) throw invalid(name, 'name too long');
  const components = normal.split(DELIMITER);
  if (components.length > MAX_DEPTH) throw invalid(name, 'too many levels');
  if (components[0].toUpperCase() === 'INBOX') components[0] = 'INBOX';
  for (const component of components) checkComponent(name, component);
  return components;
}

/** True for INBOX in any case. */
export function isInbox(name: string): boolean {
  return name.normalize('NFC').toUpperCase() === 'INBOX';
}

/** The mbox file of folder `name` in `accountDir`; throws InvalidMailboxNameError. */
export function folderPath(accountDir: string, name: string): string {
  const components = splitName(name);
  const last = components.pop()!;
  const result = path.join(accountDir, ...components.map((c) => c + SUBFOLDER_SUFFIX), last);
  // Defence in depth: whatever the checks above missed, never leave accountDir.
  const relative = path.relative(accountDir, result);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) throw invalid(name, 'resolves outside the account directory');
  return result;
}

/** The directory holding the subfolders of `name` ("<mbox>.sbd"). */
export function subfolderDir(accountDir: string, name: string): string {
  return folderPath(accountDir, name) + SUBFOLDER_SUFFIX;
}

/**
 * The key two sibling names collide on (RFC 3501 leaves case to the
 * server; the account must stay copyable to a disk that ignores case, so
 * "Work" and "WORK" cannot both exist): NFC, then full case folding.
 */
export function collisionKey(component: string): string {
  return component.normalize('NFC').toUpperCase().toLowerCase().normalize('NFC');
}

/**
 * The folder component a directory entry stands for, or null if it is not
 * one (the store's own files, locks, subfolder directories, names a client
 * could not have made). `isDirectory`: entries ending in ".sbd" are the
 * subfolders of the folder named without it.
 */
export function componentOfEntry(entry: string, isDirectory: boolean): string | null {
  let component = entry;
  if (isDirectory) {
    if (!entry.endsWith(SUBFOLDER_SUFFIX)) return null;
    component = entry.slice(0, -SUBFOLDER_SUFFIX.length);
  }
  try {
    checkComponent(component, component);
  } catch {
    return null;
  }
  return component.normalize('NFC') === component ? component : null;
}

function checkComponent(name: string, component: string): void {
  if (component === '') throw invalid(name, 'empty level (leading, trailing or double "/")');
  if (component === '.' || component === '..') throw invalid(name, 'relative component');
  if (component.startsWith('.')) throw invalid(name, 'a level starts with "."');
  if (FORBIDDEN_CHARS.test(component)) throw invalid(name, 'control character or backslash');
  if (Buffer.byteLength(component, 'utf8') > MAX_COMPONENT_BYTES) throw invalid(name, 'a level is too long');
  const lower = component.toLowerCase();
  // "X.lock" would be the dot-lock of mailbox "X", "X.sbd" its subfolders;
  // checked without case, as a case-insensitive disk would confuse them too.
  if (lower.endsWith('.lock')) throw invalid(name, 'a level ends in ".lock"');
  if (lower.endsWith(SUBFOLDER_SUFFIX)) throw invalid(name, 'a level ends in ".sbd"');
}

function invalid(name: string, why: string): InvalidMailboxNameError {
  return new InvalidMailboxNameError(`invalid mailbox name ${JSON.stringify(name)}: ${why}`);
}
