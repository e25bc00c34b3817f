// One MailboxState per open mbox path in this process (mailbox-state.ts),
// shared by every session that opens it, and dropped when the last one
// closes. The rest of the store tells it about changes it did not make
// through a mailbox: a local delivery (mailboxTouched, so IDLE sessions see
// new mail at once), a folder deleted or renamed away (mailboxGone), INBOX
// renamed (mailboxReplaced).

import * as path from 'node:path';
import { MailboxState } from './mailbox-state.ts';
import type { Listener, MailboxOptions } from './mailbox-state.ts';

// By absolute mbox path: the state, or the promise of it while it loads.
const states = new Map<string, Promise<MailboxState>>();

/** The shared state of `mboxPath`, loaded if nobody has it open; `handle` is counted as a user. */
export async function attach(mboxPath: string, opts: MailboxOptions, handle: Listener): Promise<MailboxState> {
  const key = path.resolve(mboxPath);
  let loading = states.get(key);
  if (!loading) {
    loading = MailboxState.load(key, opts);
    states.set(key, loading);
    loading.catch(() => {
      if (states.get(key) === loading) states.delete(key);
    });
  }
  const state = await loading;
  state.handles.add(handle);
  if (state.gone) {
    // A folder deleted or renamed while this open waited: start afresh.
    state.handles.delete(handle);
    if (states.get(key) === loading) states.delete(key);
    return attach(mboxPath, opts, handle);
  }
  return state;
}

/** `handle` is done with `state`; the last one out disposes of it. */
export async function detach(state: MailboxState, handle: Listener): Promise<void> {
  state.handles.delete(handle);
  state.watch(handle, false);
  if (state.handles.size > 0) return;
  const key = state.path;
  await state.dispose();
  // Someone may have opened it again while it was being disposed of.
  if (state.handles.size === 0 && (await states.get(key)) === state) states.delete(key);
}

function openState(mboxPath: string): Promise<MailboxState> | undefined {
  return states.get(path.resolve(mboxPath));
}

/** Mail was appended to `mboxPath` by this process (a delivery): sessions on it look now. */
export function mailboxTouched(mboxPath: string): void {
  void openState(mboxPath)
    ?.then((state) => state.refresh())
    .catch(() => {}); // a failed refresh is retried by the next one
}

/**
 * The folder at `mboxPath` was deleted or renamed, and with `subtree` the
 * folders under it too (in `<mboxPath>.sbd/`): their sessions are told
 * (event `gone`) and their states forgotten.
 */
export async function mailboxGone(mboxPath: string, subtree: boolean): Promise<void> {
  const key = path.resolve(mboxPath);
  const inside = key + '.sbd' + path.sep;
  for (const [other, loading] of [...states]) {
    if (other !== key && !(subtree && other.startsWith(inside))) continue;
    states.delete(other);
    const state = await loading.catch(() => null);
    state?.markGone();
  }
}

/**
 * Another file now sits at `mboxPath` (INBOX renamed): its sessions read it
 * afresh. Call it without holding the mailbox's lock (the refresh takes it).
 */
export async function mailboxReplaced(mboxPath: string): Promise<void> {
  const state = await openState(mboxPath)?.catch(() => null);
  await state?.markReplaced().catch(() => {});
}

/** Paths with an open mailbox state (for tests). */
export function openMailboxPaths(): string[] {
  return [...states.keys()];
}
