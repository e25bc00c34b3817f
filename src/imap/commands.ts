// The IMAP command table: for each command, the states that allow it and the
// handler that reads its arguments and returns what should happen (RFC 3501
// 6). The handlers live in one file per family of commands.

import { capability, logout, starttls, login, authenticate, id, enable } from './auth-commands.ts';
import { ok } from './response.ts';
import type { ImapCommand, ImapOutcome, ImapRequest, ImapView, Phase } from './types.ts';

const ANY: readonly Phase[] = ['not-authenticated', 'authenticated', 'selected'];
const NOT_AUTHENTICATED: readonly Phase[] = ['not-authenticated'];
const AUTHENTICATED: readonly Phase[] = ['authenticated', 'selected'];

/** NOOP (RFC 3501 6.1.2): nothing, but a chance for the server to send updates. */
function noop(_session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  return { reply: ok(tag, 'NOOP completed') };
}

/** LOGIN's second argument is a password: the trace hides it. */
const hideLoginPassword = (line: string) => line.replace(/^(\S+ LOGIN \S+) .*/i, '$1 ****');
const hideInitialResponse = (line: string) => line.replace(/^(\S+ AUTHENTICATE \S+) .*/i, '$1 ****');

export const commandTable: Record<string, ImapCommand> = {
  CAPABILITY: { allowedIn: ANY, handler: capability },
  NOOP: { allowedIn: ANY, handler: noop },
  LOGOUT: { allowedIn: ANY, handler: logout },
  ID: { allowedIn: ANY, handler: id },
  STARTTLS: { allowedIn: NOT_AUTHENTICATED, handler: starttls },
  LOGIN: { allowedIn: NOT_AUTHENTICATED, handler: login, redact: hideLoginPassword },
  AUTHENTICATE: { allowedIn: NOT_AUTHENTICATED, handler: authenticate, redact: hideInitialResponse },
  ENABLE: { allowedIn: AUTHENTICATED, handler: enable },
};
