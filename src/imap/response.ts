// IMAP responses (RFC 3501 7): untagged data lines ("* 3 EXISTS"), then the
// tagged status line that completes the command ("A1 OK SELECT completed"),
// optionally with a response code in brackets ("A1 OK [READ-WRITE] ...").
// Handlers return these; only the session loop turns them into bytes.

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
export function formatResponse(response: ImapResponse): string {
  let out = '';
  for (const line of response.untagged ?? []) out += `* ${line}\r\n`;
  return out + `${response.tag} ${response.status} ${response.code ? `[${response.code}] ` : ''}${response.text}\r\n`;
}

export const ok = (tag: string, text: string, code?: string, untagged?: string[]): ImapResponse => ({ tag, status: 'OK', code, text, untagged });
export const no = (tag: string, text: string, code?: string): ImapResponse => ({ tag, status: 'NO', code, text });
export const bad = (tag: string, text: string, code?: string): ImapResponse => ({ tag, status: 'BAD', code, text });
export const bye = (text: string, code?: string): ImapResponse => ({ tag: '*', status: 'BYE', code, text });

/**
 * A string as IMAP sends it (RFC 3501 4.3): quoted when it is plain text,
 * a literal when it holds CR, LF, NUL, 8-bit bytes, or is long.
 */
export function imapString(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value) && value.length < 1024) return `"${value.replace(/[\\"]/g, (c) => '\\' + c)}"`;
  return `{${Buffer.byteLength(value)}}\r\n${value}`;
}

/** A string or NIL. */
export function nstring(value: string | null | undefined): string {
  return value === null || value === undefined ? 'NIL' : imapString(value);
}

/** An astring (RFC 3501 9): an atom when it is one, otherwise a string. */
export function astring(value: string): string {
  return /^[^(){ \x00-\x1f\x7f%*"\\\x80-\uffff]+$/.test(value) ? value : imapString(value);
}
