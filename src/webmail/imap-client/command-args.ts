// Writing the arguments of the client's commands (RFC 3501 4, 9): mailbox
// names in modified UTF-7 (5.1.3), strings as atoms, quoted strings or
// literals, and sets of UIDs. The quoting rules are the server's own
// (imap/imap-string.ts); text that a quoted string cannot carry (8-bit,
// CR, LF, quotes) goes as a literal.

import { astring, imapString, needsLiteral, utf8ByteString } from '../../imap/imap-string.ts';
import { encodeMailboxName } from '../../imap/mutf7.ts';
import type { CommandPart } from './connection.ts';

/** An astring argument: an atom or quoted string when it can be, else a literal of its UTF-8 bytes. */
export function astringArg(text: string): CommandPart {
  const bytes = utf8ByteString(text);
  return needsLiteral(bytes) ? { literal: Buffer.from(bytes, 'latin1') } : astring(bytes);
}

/** A string argument (no atoms: ID's field names and values, RFC 2971 3.1). */
export function stringArg(text: string): CommandPart {
  const bytes = utf8ByteString(text);
  return needsLiteral(bytes) ? { literal: Buffer.from(bytes, 'latin1') } : imapString(bytes);
}

/** A mailbox name: modified UTF-7, which is always printable ASCII. */
export function mailboxArg(name: string): CommandPart {
  return astringArg(encodeMailboxName(name));
}

/** `3:5,9` for [3, 4, 5, 9]: ascending, runs joined. */
export function sequenceSet(numbers: readonly number[]): string {
  const sorted = [...new Set(numbers)].filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
  if (sorted.length === 0) throw new RangeError('an empty sequence set');
  const ranges: string[] = [];
  let start = sorted[0];
  let previous = start;
  for (const n of sorted.slice(1).concat([Infinity])) {
    if (n === previous + 1) {
      previous = n;
      continue;
    }
    ranges.push(start === previous ? String(start) : `${start}:${previous}`);
    start = previous = n;
  }
  return ranges.join(',');
}
