// Reading one command that may carry literals (IMAP, RFC 3501 4.3 and 7.5;
// RFC 7888 LITERAL+/LITERAL-). SMTP and POP3 commands are one line each;
// an IMAP command is a line that may end in `{n}`, meaning "n raw bytes
// follow, then the command goes on with another line":
//
//     C: A1 APPEND Drafts (\Seen) {11}
//     S: + Ready for literal data          (synchronising: the client waits for this)
//     C: Hello world
//     C:  UNSEEN                           (the rest of the command, after the 11 bytes)
//
// `{n+}` is non-synchronising (LITERAL+): the bytes follow at once, no "+".
//
// This module only frames: it returns the command's lines and its literals
// in order, never parsing what they mean, so the protocol's parser sees
//     lines[0] literal[0] lines[1] literal[1] ... lines[k]
// where each lines[i] (but the last) ends with its `{n}` marker.
//
// Invariants:
// - A literal larger than `maxLiteralBytes` is refused before a byte of it
//   is read, and nothing is allocated for it. A synchronising one is simply
//   never invited; a non-synchronising one is already on its way, so the
//   connection cannot be resynchronised and the caller closes it (RFC 7888 4).
// - The lines of one command, and the literals it keeps in memory, count
//   against `maxCommandBytes`; literal bytes go to the sink the caller opens
//   (memory for small ones, a temporary file for a message), as they arrive.

import type { Connection } from './connection.ts';

/** Where one literal's bytes go, chosen by the caller from its size. */
export interface LiteralSink {
  write(chunk: Buffer): void | Promise<void>;
  /** Bytes of it held in memory (they count against maxCommandBytes). */
  readonly memoryBytes: number;
}

export interface LiteralPolicy<L extends LiteralSink> {
  /** Largest literal accepted (for IMAP: the message size limit). */
  maxLiteralBytes: number;
  /** Largest non-synchronising literal (RFC 7888 LITERAL-: 4096); larger ones get the same treatment as too-large ones. */
  maxNonSyncLiteralBytes: number;
  /** Lines plus in-memory literals of one command. */
  maxCommandBytes: number;
  /** Invites a synchronising literal, e.g. "+ Ready for literal data\r\n". */
  continuation: string;
  /** Opens the sink for a literal of `size` bytes. */
  openLiteral(size: number): L;
}

export type CommandRead<L> =
  | { kind: 'command'; lines: string[]; literals: L[] }
  /** A literal was refused before any of it was read; `lines` holds the command so far (for its tag). */
  | { kind: 'literal-refused'; lines: string[]; size: number; synchronising: boolean }
  /** A line, or the command as a whole, is longer than allowed. */
  | { kind: 'too-long'; lines: string[] }
  | { kind: 'closed' }
  | { kind: 'timeout' }
  | { kind: 'interrupted' };

/** `{123}` or `{123+}` at the end of a line (RFC 3501 9 `literal`, RFC 7888), or `~{123}` (RFC 3516 literal8). */
const LITERAL_MARKER = /~?\{(\d{1,20})(\+?)\}$/;

export async function readCommand<L extends LiteralSink>(conn: Connection, policy: LiteralPolicy<L>): Promise<CommandRead<L>> {
  const lines: string[] = [];
  const literals: L[] = [];
  let used = 0;
  for (;;) {
    const next = conn.readLine();
    const line = next instanceof Promise ? await next : next;
    if (line.kind === 'too-long') return { kind: 'too-long', lines };
    if (line.kind !== 'line') return line;
    lines.push(line.text);
    used += line.text.length;
    if (used > policy.maxCommandBytes) return { kind: 'too-long', lines };
    const marker = LITERAL_MARKER.exec(line.text);
    if (!marker) return { kind: 'command', lines, literals };

    const size = Number(marker[1]);
    const synchronising = marker[2] === '';
    const limit = synchronising ? policy.maxLiteralBytes : Math.min(policy.maxLiteralBytes, policy.maxNonSyncLiteralBytes);
    if (size > limit) return { kind: 'literal-refused', lines, size, synchronising };
    if (synchronising && policy.continuation) conn.send(policy.continuation); // a client reading a server's literals sends nothing
    const sink = policy.openLiteral(size);
    literals.push(sink);
    const read = await conn.readExactly(size, (chunk) => sink.write(chunk));
    if (read !== 'done') return { kind: read };
    used += sink.memoryBytes;
    if (used > policy.maxCommandBytes) return { kind: 'too-long', lines };
  }
}

/** A literal kept in memory: for the small strings of a command (names, search keys, passwords). */
export class MemoryLiteral implements LiteralSink {
  private readonly parts: Buffer[] = [];
  memoryBytes = 0;

  write(chunk: Buffer): void {
    this.parts.push(Buffer.from(chunk)); // copy: the connection reuses nothing, but the chunk may be a view of a larger buffer
    this.memoryBytes += chunk.length;
  }

  bytes(): Buffer {
    return this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts);
  }
}
