// The errors the store's folders and mailboxes throw, in one place so the
// protocols can tell them apart (IMAP: NO with a response code, RFC 5530).
// A full disk is a DiskFullError (disk-full.ts; isDiskFull recognises it).

import { DiskFullError } from './disk-full.ts';

/** A mailbox name that cannot be stored safely (folder-names.ts has the rules). */
export class InvalidMailboxNameError extends Error {
  override name = 'InvalidMailboxNameError';
}

/** CREATE or RENAME onto a name that exists (RFC 5530 ALREADYEXISTS). */
export class FolderExistsError extends Error {
  override name = 'FolderExistsError';
}

/** The folder does not exist, or no longer does (RFC 5530 NONEXISTENT). */
export class NoSuchFolderError extends Error {
  override name = 'NoSuchFolderError';
}

/** DELETE of a folder that has subfolders (RFC 5530 INUSE; Dovecot's mbox refuses it too). */
export class FolderHasChildrenError extends Error {
  override name = 'FolderHasChildrenError';
}

/** CREATE beyond the account's folder limit (RFC 5530 LIMIT). */
export class TooManyFoldersError extends Error {
  override name = 'TooManyFoldersError';
}

/** A folder operation refused for lack of space (RFC 5530 OVERQUOTA / SERVERBUG). */
export class NotEnoughSpaceError extends DiskFullError {
  override name = 'NotEnoughSpaceError';
}

/** The message was expunged (by another session, POP3, or another program). */
export class MessageExpungedError extends Error {
  override name = 'MessageExpungedError';
}
