// The types the POP3 files share: the session's state, its replies and what
// the server gives every session. Kept apart so the command handlers and the
// session module do not import each other.

import type { Config } from '../config.ts';
import type { Command, Outcome } from '../protocol/types.ts';
import type { SessionView } from '../protocol/session.ts';
import type { Maildrop } from './maildrop.ts';
import type { Wire } from '../wire/reply-queue.ts';

/**
 * RFC 1939 3:
 *
 *     authorization --USER/PASS or AUTH--> transaction --QUIT--> update (expunge) --> closed
 *          \--STLS (start TLS, stay in authorization)
 */
export type Phase = 'authorization' | 'transaction';

export interface Pop3State {
  phase: Phase;
  /** The name given by USER, waiting for PASS. */
  pendingUser: string | null;
  /** The logged-in user's INBOX, as this session sees it. */
  maildrop: Maildrop | null;
}

export const INITIAL_STATE: Pop3State = { phase: 'authorization', pendingUser: null, maildrop: null };

export interface Pop3Reply {
  ok: boolean;
  text: string;
  /** A multi-line response (RFC 1939 3): these lines, then ".". */
  lines?: string[];
  /**
   * RETR of a small message: the whole reply as it goes on the wire, status
   * line, dot-stuffed message and "." (read-ahead.ts messageReply).
   */
  wire?: Wire;
}

export interface Pop3Context {
  config: Config;
  dataDir: string;
  /** True when a STLS certificate is available. */
  tlsAvailable: boolean;
}

export interface Pop3Request {
  verb: string;
  argument: string;
}

export type Pop3View = SessionView<Pop3State, Pop3Context>;
export type Pop3Outcome = Outcome<Pop3Reply, Pop3State>;
export type Pop3Command = Command<Pop3View, Pop3Request, Pop3Reply, Pop3State>;

export const ok = (text: string, lines?: string[]): Pop3Reply => ({ ok: true, text, lines });
export const err = (text: string): Pop3Reply => ({ ok: false, text });

/** "+OK text" or "-ERR text", and CRLF (RFC 1939 3). */
export function statusLine(reply: Pop3Reply): string {
  return `${reply.ok ? '+OK' : '-ERR'} ${reply.text}\r\n`;
}
