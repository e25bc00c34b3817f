// The store's errors as IMAP answers them: NO with the response code of
// RFC 5530 that tells the client what happened, so Thunderbird or K-9 can
// say "that folder already exists" rather than "the server said no".

import { FolderExistsError, FolderHasChildrenError, InvalidMailboxNameError, NoSuchFolderError, TooManyFoldersError } from '../store/folders.ts';
import { InvalidFlagError, MessageExpungedError, MessageChangedError } from '../store/mailbox.ts';
import { LockTimeoutError } from '../store/dotlock.ts';
import { isDiskFull } from '../store/disk-full.ts';
import { no } from './response.ts';
import type { ImapResponse } from './response.ts';

/**
 * The NO for a store error, or null when it is not one we expect (the loop
 * answers that as an internal error and logs it). `target` says the error
 * is about the destination of APPEND, COPY or MOVE, where a missing folder
 * is answered [TRYCREATE] (RFC 3501 6.3.11).
 */
export function storeErrorResponse(tag: string, err: unknown, target = false): ImapResponse | null {
  if (err instanceof InvalidMailboxNameError) return no(tag, `Invalid mailbox name: ${err.message.replace(/^invalid mailbox name /, '')}`, 'CANNOT');
  if (err instanceof NoSuchFolderError) return target ? no(tag, 'Mailbox does not exist', 'TRYCREATE') : no(tag, 'Mailbox does not exist', 'NONEXISTENT');
  if (err instanceof FolderExistsError) return no(tag, 'Mailbox already exists', 'ALREADYEXISTS');
  if (err instanceof FolderHasChildrenError) return no(tag, 'Mailbox has subfolders: delete them first', 'INUSE');
  if (err instanceof TooManyFoldersError) return no(tag, 'Too many mailboxes', 'LIMIT');
  if (err instanceof InvalidFlagError) return no(tag, err.message, 'CANNOT');
  if (err instanceof MessageExpungedError || err instanceof MessageChangedError) return no(tag, 'Some of the requested messages no longer exist', 'EXPUNGEISSUED');
  if (err instanceof LockTimeoutError) return no(tag, 'The mailbox is locked by another program, try again later', 'INUSE');
  if (isDiskFull(err)) return no(tag, 'Not enough disk space, try again later', 'OVERQUOTA');
  return null;
}

/** Run a store operation; its expected errors become the response, others are thrown on. */
export async function storeCall<T>(tag: string, target: boolean, call: () => Promise<T>): Promise<{ ok: T } | { reply: ImapResponse }> {
  try {
    return { ok: await call() };
  } catch (err) {
    const reply = storeErrorResponse(tag, err, target);
    if (reply) return { reply };
    throw err;
  }
}
