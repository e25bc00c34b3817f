// Extensions that change how the server answers once a client has switched
// them on with ENABLE (RFC 5161), or, for CONDSTORE, by using one of its
// commands (RFC 7162 3.1: "CONDSTORE enabling commands"):
//   CONDSTORE    FETCH responses carry MODSEQ, SELECT tells HIGHESTMODSEQ
//   IMAP4rev2    RFC 9051: no \Recent, SEARCH answers as ESEARCH, UTF-8 names
// Anything else a client asks ENABLE for (UTF8=ACCEPT among them: it is not
// offered, capabilities.ts) is left out of ENABLED, as RFC 5161 3.1 says.

import type { ImapState } from './types.ts';

/** What ENABLE can switch on here. */
export const ENABLEABLE = ['CONDSTORE', 'IMAP4rev2'];

export function isEnabled(state: Readonly<ImapState>, name: string): boolean {
  return state.enabled.includes(name);
}

/** CONDSTORE is on (RFC 7162); IMAP4rev2 does not imply it. */
export function condstore(state: Readonly<ImapState>): boolean {
  return isEnabled(state, 'CONDSTORE');
}

/** IMAP4rev2 (RFC 9051) behaviour is on. */
export function rev2(state: Readonly<ImapState>): boolean {
  return isEnabled(state, 'IMAP4rev2');
}

/** Mailbox names travel as UTF-8 (RFC 9051 5.1), not modified UTF-7. */
export function utf8Names(state: Readonly<ImapState>): boolean {
  return rev2(state);
}

/** The state change that switches `name` on, or nothing if it is on already. */
export function enabling(state: Readonly<ImapState>, name: string): Partial<ImapState> {
  return isEnabled(state, name) ? {} : { enabled: [...state.enabled, name] };
}

/**
 * The untagged updates owed to the client (selected.ts), in the form the
 * extensions it enabled ask for. `allowExpunge`: RFC 3501 7.4.1; `withUid`:
 * in answer to a UID command.
 */
export function pendingUpdates(state: Readonly<ImapState>, allowExpunge: boolean, withUid = false): string[] {
  return state.selected?.updates(allowExpunge, { withUid, modseq: condstore(state), rev2: rev2(state) }) ?? [];
}
