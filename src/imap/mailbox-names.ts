// Mailbox names on the wire (RFC 3501 5.1): in modified UTF-7 (mutf7.ts)
// for IMAP4rev1 clients, in UTF-8 once the client enabled IMAP4rev2
// (RFC 9051 5.1). The store keeps them in Unicode.

import { decodeMailboxName, encodeMailboxName } from './mutf7.ts';
import { ParseError } from './parser.ts';
import type { ArgReader } from './parser.ts';
import { astring, utf8ByteString } from './imap-string.ts';
import { utf8Names } from './extensions.ts';
import type { ImapState } from './types.ts';

/** A name as the client wrote it, in Unicode. */
export function decodeName(wire: string, state: Readonly<ImapState>): string {
  if (utf8Names(state)) return wire.normalize('NFC');
  const name = decodeMailboxName(wire);
  if (name === null) throw new ParseError(`mailbox name ${JSON.stringify(wire)} is not valid modified UTF-7`);
  return name;
}

/** A `mailbox` argument (RFC 3501 9): an astring. */
export function readMailboxName(args: ArgReader, state: Readonly<ImapState>): string {
  return decodeName(args.astring(), state);
}

/** A name as the client should see it, ready for a response (atom, quoted string or literal). */
export function wireName(name: string, state: Readonly<ImapState>): string {
  return astring(utf8Names(state) ? utf8ByteString(name) : encodeMailboxName(name));
}
