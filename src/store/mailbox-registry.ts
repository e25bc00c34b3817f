// One MailboxState per open mbox path in this process (mailbox-state.ts),
// shared by every session that opens it. When the last one closes, the
// state is kept a little longer (RETAIN_MS, at most RETAIN_MAX_MESSAGES
// messages in all such states): a client that logs in again soon, or opens
// a second connection, finds the index in memory and SELECT costs one stat
// instead of reading the index file. The rest of the store tells it about
// changes it did not make
// through a mailbox: a local delivery (mailboxTouched, so IDLE sessions see
// new mail at once), a folder deleted or renamed away (mailboxGone), INBOX
// renamed (mailboxReplaced).

import * as path from 'node:path';
import { MailboxState } from './mailbox-state.ts';
import type { Listener, MailboxOptions } from './mailbox-types.ts';

// By absolute mbox path: the state, or the promise of it while it loads.
const states = new Map<string, Promise<MailboxState>>();

/** How long a mailbox nobody has open stays in memory. */
export const RETAIN_MS = 60_000;
/** Messages in all such mailboxes together, at most (about 65 bytes each). */
export const RETAIN_MAX_MESSAGES = 250_000;

// States nobody has open, oldest first, with the timer that drops each.
const idle = new Map<MailboxState, NodeJS.Timeout>();

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
  if (state.gone || states.get(key) !== loading) {
    // A folder deleted or renamed, or a state dropped, while this open waited: start afresh.
    return attach(mboxPath, opts, handle);
  }
  state.handles.add(handle);
  const timer = idle.get(state);
  if (timer) {
    clearTimeout(timer);
    idle.delete(state);
  }
  return state;
}

/** `handle` is done with `state`; after the last one it is kept a while (see the header). */
export async function detach(state: MailboxState, handle: Listener): Promise<void> {
  state.handles.delete(handle);
  state.watch(handle, false);
  if (state.handles.size > 0 || idle.has(state) || state.gone) {
    if (state.handles.size === 0 && state.gone) await drop(state);
    return;
  }
  const timer = setTimeout(() => void drop(state), RETAIN_MS);
  timer.unref();
  idle.set(state, timer);
  await state.suspend();
  // Over the budget: the oldest idle states go first.
  let retained = 0;
  for (const kept of idle.keys()) retained += kept.index.messages.length;
  for (const oldest of [...idle.keys()]) {
    if (retained <= RETAIN_MAX_MESSAGES) break;
    retained -= oldest.index.messages.length;
    await drop(oldest);
  }
}

// Forgets a state nobody uses, writing what only memory holds.
async function drop(state: MailboxState): Promise<void> {
  const timer = idle.get(state);
  if (timer) clearTimeout(timer);
  idle.delete(state);
  if (state.handles.size > 0) return; // opened again meanwhile
  const key = state.path;
  if (states.has(key) && (await states.get(key)!.catch(() => null)) === state) states.delete(key);
  await state.dispose();
}

/** Drops every mailbox nobody has open (shutdown, tests). */
export async function dropIdleMailboxes(): Promise<void> {
  for (const state of [...idle.keys()]) await drop(state);
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
    // Not awaited: a state still loading waits for the folder's lock, which
    // the caller may hold; so may a queued operation of a loaded one.
    void loading.then(
      (state) => {
        state.markGone();
        if (state.handles.size === 0) void drop(state);
      },
      () => {},
    );
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
