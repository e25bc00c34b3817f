// The IMAP command table: for each command, the states that allow it and the
// handler that reads its arguments and returns what should happen (RFC 3501
// 6). The handlers live in one file per family of commands:
//   auth-commands.ts     any state and not-authenticated (6.1, 6.2)
//   mailbox-commands.ts  authenticated: mailboxes (6.3)
//   message-commands.ts  selected: CHECK, CLOSE, EXPUNGE, COPY, MOVE (6.4)
//   fetch.ts, store-command.ts, search-command.ts, idle.ts

import { capability, logout, starttls, login, authenticate, id, enable } from './auth-commands.ts';
import { mailboxCommands } from './mailbox-commands.ts';
import { list, lsub } from './list-command.ts';
import { noop, close, expunge, copyOrMove } from './message-commands.ts';
import { fetch } from './fetch.ts';
import { store } from './store-command.ts';
import { search } from './search-command.ts';
import { idle } from './idle.ts';
import type { ImapCommand, Phase } from './types.ts';

const ANY: readonly Phase[] = ['not-authenticated', 'authenticated', 'selected'];
const NOT_AUTHENTICATED: readonly Phase[] = ['not-authenticated'];
const AUTHENTICATED: readonly Phase[] = ['authenticated', 'selected'];
const SELECTED: readonly Phase[] = ['selected'];

/** LOGIN's second argument is a password: the trace hides it. */
const hideLoginPassword = (line: string) => line.replace(/^(\S+ LOGIN \S+) .*/i, '$1 ****');
const hideInitialResponse = (line: string) => line.replace(/^(\S+ AUTHENTICATE \S+) .*/i, '$1 ****');

const { select, create, remove, rename, subscribe, namespace, status, append } = mailboxCommands;

export const commandTable: Record<string, ImapCommand> = {
  // Any state (RFC 3501 6.1)
  CAPABILITY: { allowedIn: ANY, handler: capability },
  NOOP: { allowedIn: ANY, handler: noop },
  LOGOUT: { allowedIn: ANY, handler: logout },
  ID: { allowedIn: ANY, handler: id },
  // Not authenticated (6.2)
  STARTTLS: { allowedIn: NOT_AUTHENTICATED, handler: starttls },
  LOGIN: { allowedIn: NOT_AUTHENTICATED, handler: login, redact: hideLoginPassword },
  AUTHENTICATE: { allowedIn: NOT_AUTHENTICATED, handler: authenticate, redact: hideInitialResponse },
  // Authenticated (6.3)
  ENABLE: { allowedIn: AUTHENTICATED, handler: enable },
  SELECT: { allowedIn: AUTHENTICATED, handler: select },
  EXAMINE: { allowedIn: AUTHENTICATED, handler: select },
  CREATE: { allowedIn: AUTHENTICATED, handler: create },
  DELETE: { allowedIn: AUTHENTICATED, handler: remove },
  RENAME: { allowedIn: AUTHENTICATED, handler: rename },
  SUBSCRIBE: { allowedIn: AUTHENTICATED, handler: subscribe },
  UNSUBSCRIBE: { allowedIn: AUTHENTICATED, handler: subscribe },
  LIST: { allowedIn: AUTHENTICATED, handler: list },
  LSUB: { allowedIn: AUTHENTICATED, handler: lsub },
  NAMESPACE: { allowedIn: AUTHENTICATED, handler: namespace },
  STATUS: { allowedIn: AUTHENTICATED, handler: status },
  APPEND: { allowedIn: AUTHENTICATED, handler: append },
  IDLE: { allowedIn: AUTHENTICATED, handler: idle },
  // Selected (6.4)
  CHECK: { allowedIn: SELECTED, handler: noop },
  CLOSE: { allowedIn: SELECTED, handler: close },
  UNSELECT: { allowedIn: SELECTED, handler: close },
  EXPUNGE: { allowedIn: SELECTED, handler: expunge },
  'UID EXPUNGE': { allowedIn: SELECTED, handler: expunge },
  SEARCH: { allowedIn: SELECTED, handler: search },
  'UID SEARCH': { allowedIn: SELECTED, handler: search },
  FETCH: { allowedIn: SELECTED, handler: fetch },
  'UID FETCH': { allowedIn: SELECTED, handler: fetch },
  STORE: { allowedIn: SELECTED, handler: store },
  'UID STORE': { allowedIn: SELECTED, handler: store },
  COPY: { allowedIn: SELECTED, handler: copyOrMove },
  'UID COPY': { allowedIn: SELECTED, handler: copyOrMove },
  MOVE: { allowedIn: SELECTED, handler: copyOrMove },
  'UID MOVE': { allowedIn: SELECTED, handler: copyOrMove },
};
