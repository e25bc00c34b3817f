// SASL (RFC 4422): how a client proves who it is inside SMTP AUTH (RFC 4954),
// POP3 AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 3501 6.2.2). The protocols
// only carry base64 lines back and forth; the mechanisms below decide what
// those lines mean. This module never touches a socket, so every protocol
// shares it and it can be tested on its own.
//
// Mechanisms:
// - PLAIN (RFC 4616): one message `authzid NUL authcid NUL password`.
// - LOGIN (draft-murchison-sasl-login): the server asks "Username:" then
//   "Password:". Not a standard, but Outlook and many phones still use it.
// Both send the password itself, so protocols offer them only under TLS.

export const SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;

export type SaslStep =
  /** Send this challenge (already base64) and pass the client's answer to `next`. */
  | { kind: 'challenge'; challenge: string }
  /** The client has given its credentials; now check them. */
  | { kind: 'credentials'; username: string; password: string }
  /** The exchange failed: the client cancelled with `*`, or sent something malformed. */
  | { kind: 'failed'; reason: 'cancelled' | 'malformed' };

export interface SaslExchange {
  /** `initial` is the initial response sent with the command, if any (RFC 4422 3.3). */
  start(initial?: string): SaslStep;
  next(response: string): SaslStep;
}

/** Strict base64 (RFC 4648 4): canonical alphabet and padding, nothing else. */
export function decodeBase64Strict(text: string): Buffer | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  // Reject non-canonical encodings (stray bits in the last character).
  return bytes.toString('base64') === text ? bytes : null;
}

const encode = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** Decode a client response: `*` cancels (RFC 4422 3.5); `=` is an empty initial response (RFC 4954 4). */
function decodeResponse(response: string, initial: boolean): Buffer | 'cancelled' | null {
  const text = response.trim();
  if (text === '*') return 'cancelled';
  if (initial && text === '=') return Buffer.alloc(0);
  return decodeBase64Strict(text);
}

/** Valid UTF-8 without NUL, or null. */
function utf8Text(bytes: Buffer): string | null {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  if (!Buffer.from(text, 'utf8').equals(bytes) || text.includes('\0')) return null;
  return text;
}

function plain(): SaslExchange {
  const parse = (response: string, initial: boolean): SaslStep => {
    const bytes = decodeResponse(response, initial);
    if (bytes === 'cancelled') return { kind: 'failed', reason: 'cancelled' };
    if (bytes === null) return { kind: 'failed', reason: 'malformed' };
    const parts = bytes.toString('binary').split('\0');
    if (parts.length !== 3) return { kind: 'failed', reason: 'malformed' };
    const [authzid, username, password] = parts.map((p) => utf8Text(Buffer.from(p, 'binary')));
    if (authzid === null || username === null || password === null || username === '') {
      return { kind: 'failed', reason: 'malformed' };
    }
    // RFC 4616 2: acting as another user (authzid) is not something we allow.
    if (authzid !== '' && authzid !== username) return { kind: 'failed', reason: 'malformed' };
    return { kind: 'credentials', username, password };
  };
  return {
    // Without an initial response the server sends an empty challenge (RFC 4422 5).
    start: (initial) => (initial === undefined ? { kind: 'challenge', challenge: '' } : parse(initial, true)),
    next: (response) => parse(response, false),
  };
}

function login(): SaslExchange {
  let username: string | null = null;
  const take = (response: string, initial: boolean): SaslStep => {
    const bytes = decodeResponse(response, initial);
    if (bytes === 'cancelled') return { kind: 'failed', reason: 'cancelled' };
    const text = bytes === null ? null : utf8Text(bytes);
    if (text === null) return { kind: 'failed', reason: 'malformed' };
    if (username === null) {
      if (text === '') return { kind: 'failed', reason: 'malformed' };
      username = text;
      return { kind: 'challenge', challenge: encode('Password:') };
    }
    return { kind: 'credentials', username, password: text };
  };
  return {
    // Some clients send the username with the command (AUTH LOGIN dXNlcg==).
    start: (initial) => (initial === undefined ? { kind: 'challenge', challenge: encode('Username:') } : take(initial, true)),
    next: (response) => take(response, false),
  };
}

/** A new exchange for `mechanism` (case-insensitive), or null if we do not offer it. */
export function startSasl(mechanism: string): SaslExchange | null {
  switch (mechanism.toUpperCase()) {
    case 'PLAIN':
      return plain();
    case 'LOGIN':
      return login();
    default:
      return null;
  }
}
