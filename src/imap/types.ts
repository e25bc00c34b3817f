// The types the IMAP files share: the session's state, what the server gives
// every session, and the shape of a parsed command. Kept apart so the
// command families and the session module do not import one another.

import type { Config } from '../config.ts';
import type { Accounts } from '../auth/accounts.ts';
import type { Command, Outcome } from '../protocol/types.ts';
import type { SessionView } from '../protocol/session.ts';
import type { ArgReader } from './parser.ts';
import type { ImapResponse } from './response.ts';
import type { Selected } from './selected.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';

/**
 * RFC 3501 3 (the state diagram):
 *
 *     not-authenticated --LOGIN/AUTHENTICATE--> authenticated --SELECT/EXAMINE--> selected
 *                                                      ^--CLOSE/UNSELECT/failed SELECT--/
 *     any --LOGOUT--> logout (the connection closes)
 */
export type Phase = 'not-authenticated' | 'authenticated' | 'selected';

export interface ImapState {
  phase: Phase;
  /** The logged-in account. */
  account: string | null;
  /** The mailbox this session has selected, and what the client knows of it. */
  selected: Selected | null;
  /** Extensions the client switched on with ENABLE (RFC 5161): CONDSTORE, IMAP4rev2 ... */
  enabled: readonly string[];
  /** The address logins are throttled under: the client's, or the one a trusted webmail passed with ID. */
  loginAddress: string;
}

export interface ImapContext {
  config: Config;
  accounts: Accounts;
  dataDir: string;
  /** True when a STARTTLS certificate is available. */
  tlsAvailable: boolean;
  /** Where large literals (APPEND) are spooled while they arrive. */
  tmpDir: string;
  /** Memory for messages in flight, shared by every session of the server. */
  memory: MemoryBudget;
}

/** A command: its tag, its name (`UID FETCH` for UID commands) and a reader positioned at its arguments. */
export interface ImapRequest {
  tag: string;
  verb: string;
  args: ArgReader;
}

export type ImapView = SessionView<ImapState, ImapContext>;
export type ImapOutcome = Outcome<ImapResponse, ImapState>;
export type ImapCommand = Command<ImapView, ImapRequest, ImapResponse, ImapState>;
