// IMAP responses (RFC 3501 7): untagged data lines ("* 3 EXISTS"), then the
// tagged status line that completes the command ("A1 OK SELECT completed"),
// optionally with a response code in brackets ("A1 OK [READ-WRITE] ...").
// Handlers return these; only the session loop turns them into bytes.
//
// Untagged lines are byte strings (one character per byte, imap-string.ts),
// because they carry literals of raw header bytes; the status line's text is
// ASCII.

import { toWire } from './imap-string.ts';

export type Status = 'OK' | 'NO' | 'BAD' | 'BYE' | 'PREAUTH';

export interface ImapResponse {
  /** Untagged lines, without the "* " and the CRLF: `3 EXISTS`, `FLAGS (\Seen)`. */
  untagged?: string[];
  /** The tag, or '*' for an untagged status (the greeting, BYE). */
  tag: string;
  status: Status;
  /** A response code (RFC 3501 7.1): `READ-WRITE`, `UIDNEXT 7`, `TRYCREATE`. */
  code?: string;
  text: string;
}

/** The bytes of a response. */
export function formatResponse(response: ImapResponse): Buffer {
  let out = '';
  for (const line of response.untagged ?? []) out += `* ${line}\r\n`;
  out += `${response.tag} ${response.status} ${response.code ? `[${response.code}] ` : ''}${response.text}\r\n`;
  return toWire(out);
}

export const ok = (tag: string, text: string, code?: string, untagged?: string[]): ImapResponse => ({ tag, status: 'OK', code, text, untagged });
export const no = (tag: string, text: string, code?: string): ImapResponse => ({ tag, status: 'NO', code, text });
export const bad = (tag: string, text: string, code?: string): ImapResponse => ({ tag, status: 'BAD', code, text });
export const bye = (text: string, code?: string): ImapResponse => ({ tag: '*', status: 'BYE', code, text });
