// The types the SMTP files share: the session's state, the envelope of the
// transaction in progress, and what the server gives every session. Kept
// apart so that the command handlers, the DATA reader and the session
// module can all use them without importing one another.

import type { Config } from '../config.ts';
import type { Accounts } from '../auth/accounts.ts';
import type { LocalDelivery } from './delivery.ts';
import type { Command, Outcome } from '../protocol/types.ts';
import type { SessionView } from '../protocol/session.ts';
import type { Reply } from './reply.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';

/**
 * Where a session is (RFC 5321 4.1.4 ordering):
 *
 *     fresh --EHLO/HELO--> greeted --MAIL--> mail --RCPT--> rcpt --DATA..--> greeted
 *       \_______________________MAIL_______/                 (RSET/EHLO: back to greeted)
 */
export type Phase = 'fresh' | 'greeted' | 'mail' | 'rcpt';

/** Which port the client came in on (see server.ts). */
export type Role = 'smtp' | 'submission';

export interface Recipient {
  address: string;
  /** Local accounts this address delivers to (more than one for an alias); empty for a remote one. */
  accounts: string[];
  /** A recipient in another domain: goes to the outbound queue (authenticated users only). */
  remote: boolean;
}

export interface Envelope {
  from: string;
  recipients: Recipient[];
  /** BODY=8BITMIME was given (RFC 6152). */
  eightBit: boolean;
  /** SMTPUTF8 was given (RFC 6531). */
  utf8: boolean;
}

export interface SmtpState {
  phase: Phase;
  heloName: string;
  /** EHLO (not HELO) was used: the Received: field says ESMTP. */
  extended: boolean;
  /** The account that logged in with AUTH, or null. */
  authenticatedAs: string | null;
  /** The address a trusted client (our webmail) said it acts for, with XCLIENT ADDR; logins are throttled under it. */
  clientAddress: string | null;
  envelope: Envelope | null;
}

export const INITIAL_STATE: SmtpState = { phase: 'fresh', heloName: '', extended: false, authenticatedAs: null, clientAddress: null, envelope: null };

/** What every session of one listener shares. */
export interface SmtpContext {
  config: Config;
  role: Role;
  /** True when a STARTTLS certificate is available. */
  tlsAvailable: boolean;
  accounts: Accounts;
  delivery: LocalDelivery;
  /** Where large messages are spooled while they arrive. */
  tmpDir: string;
  /** Memory for messages in flight, shared by every session of the server. */
  memory: MemoryBudget;
}

/** A command line cut in two: `MAIL` and `FROM:<a@b>`. */
export interface SmtpRequest {
  verb: string;
  argument: string;
}

export type SmtpView = SessionView<SmtpState, SmtpContext>;
export type SmtpOutcome = Outcome<Reply, SmtpState>;
export type SmtpCommand = Command<SmtpView, SmtpRequest, Reply, SmtpState> & {
  /** The 503 text when the command comes in the wrong phase. */
  outOfSequence?: string;
};

/** The state a new transaction starts from (RSET, EHLO, after DATA): RFC 5321 4.1.1.5. */
export function resetTransaction(state: SmtpState): Partial<SmtpState> {
  return { envelope: null, phase: state.phase === 'fresh' ? 'fresh' : 'greeted' };
}
