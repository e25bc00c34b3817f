// Where the literals of an IMAP command go while they arrive (RFC 3501 4.3,
// RFC 7888): the small ones (names, search strings, passwords) in memory,
// counted against the command's size; a message for APPEND in a spooled body
// (memory, then a temporary file, store/spooled-body.ts), so a 25 MiB APPEND
// costs the server a few buffers, not 25 MiB.
//
// LITERAL+ (RFC 7888 3): a client may send any literal as `{n+}`, without
// waiting for "+", so `{n+}` is accepted up to the same limit as `{n}`: the
// message size limit. A larger `{n+}` cannot be refused before it arrives;
// its bytes are read and thrown away, and the command gets NO [TOOBIG]
// (RFC 7889 4), as an SMTP server reads an over-size DATA to its end.

import { MemoryLiteral, readCommand } from '../wire/command-reader.ts';
import type { LiteralPolicy, LiteralSink } from '../wire/command-reader.ts';
import type { Connection, ReadBytesResult } from '../wire/connection.ts';
import { SpooledBody } from '../store/spooled-body.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';
import type { ImapContext } from './types.ts';

/** Literals up to this size stay in memory. */
const IN_MEMORY_LITERAL = 64 * 1024;
/** A command's lines and in-memory literals (a long UID set, a big SEARCH). */
const MAX_COMMAND_BYTES = 256 * 1024;

/** A literal too large for memory: a message being APPENDed. */
export class SpooledLiteral implements LiteralSink {
  readonly body: SpooledBody;
  readonly memoryBytes = 0;

  constructor(tmpDir: string, memoryLimit: number, budget: MemoryBudget) {
    this.body = new SpooledBody(tmpDir, memoryLimit, { budget });
  }

  write(chunk: Buffer): Promise<void> {
    return this.body.write(chunk);
  }
}

export function literalPolicy(ctx: ImapContext, spooled: SpooledLiteral[]): LiteralPolicy<LiteralSink> {
  return {
    maxLiteralBytes: ctx.config.limits.maxMessageBytes,
    // LITERAL+ (not LITERAL-, whose limit is 4096): `{n+}` may be as large as `{n}`.
    maxNonSyncLiteralBytes: ctx.config.limits.maxMessageBytes,
    maxCommandBytes: MAX_COMMAND_BYTES,
    continuation: '+ Ready for literal data\r\n',
    openLiteral(size) {
      if (size <= IN_MEMORY_LITERAL) return new MemoryLiteral();
      const literal = new SpooledLiteral(ctx.tmpDir, ctx.config.limits.memoryBufferBytes, ctx.memory);
      spooled.push(literal);
      return literal;
    },
  };
}

/** What reads the rest of a refused command: every literal refused, nothing kept, no "+" sent. */
const DISCARD_POLICY: LiteralPolicy<MemoryLiteral> = {
  maxLiteralBytes: 0,
  maxNonSyncLiteralBytes: 0,
  maxCommandBytes: MAX_COMMAND_BYTES,
  continuation: '',
  openLiteral: () => new MemoryLiteral(),
};

/**
 * Refused `{n+}` literals are read and thrown away up to this many octets
 * per command (at least twice the message size limit); a client that
 * announces more is not followed that far: BYE [TOOBIG] and the connection
 * closes, as every server did before LITERAL+ allowed the discard.
 */
export function discardLimit(maxMessageBytes: number): number {
  return Math.max(2 * maxMessageBytes, 64 * 1024 * 1024);
}

/**
 * A `{n+}` literal of `size` octets was refused (over the message size
 * limit): read its bytes and the rest of its command (further `{n+}`
 * literals too) and keep none of them, so the next command starts in step.
 * A synchronising literal later in the command is simply never invited.
 * Memory stays at one read buffer, whatever `size` is; time and bandwidth
 * stay within `maxBytes` ('too-large' past it, before reading on).
 */
export async function discardRefusedCommand(conn: Connection, size: number, maxBytes: number): Promise<ReadBytesResult | 'interrupted' | 'too-large'> {
  let pending = size;
  let left = maxBytes;
  for (;;) {
    if (pending > left) return 'too-large';
    left -= pending;
    const read = await conn.readExactly(pending, () => {});
    if (read !== 'done') return read;
    const rest = await readCommand(conn, DISCARD_POLICY);
    if (rest.kind === 'literal-refused' && !rest.synchronising) {
      pending = rest.size;
      continue;
    }
    if (rest.kind === 'closed' || rest.kind === 'timeout' || rest.kind === 'interrupted') return rest.kind;
    return 'done';
  }
}

/** The bytes of a literal of any kind, as a stream (APPEND's message). */
export async function* literalBytes(literal: LiteralSink): AsyncIterable<Buffer> {
  if (literal instanceof MemoryLiteral) {
    yield literal.bytes();
    return;
  }
  const spooled = literal as SpooledLiteral;
  await spooled.body.finish();
  yield* spooled.body.read();
}

/** Its size in octets. */
export function literalSize(literal: LiteralSink): number {
  return literal instanceof MemoryLiteral ? literal.memoryBytes : (literal as SpooledLiteral).body.size;
}
