// Where the literals of an IMAP command go while they arrive (RFC 3501 4.3,
// RFC 7888): the small ones (names, search strings, passwords) in memory,
// counted against the command's size; a message for APPEND in a spooled body
// (memory, then a temporary file, store/spooled-body.ts), so a 25 MiB APPEND
// costs the server a few buffers, not 25 MiB.

import { MemoryLiteral } from '../wire/command-reader.ts';
import type { LiteralPolicy, LiteralSink } from '../wire/command-reader.ts';
import { SpooledBody } from '../store/spooled-body.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';
import type { ImapContext } from './types.ts';

/** Literals up to this size stay in memory. */
const IN_MEMORY_LITERAL = 64 * 1024;
/** RFC 7888 LITERAL-: non-synchronising literals are limited to 4096 octets. We allow LITERAL+ up to the in-memory size. */
const MAX_NON_SYNC = IN_MEMORY_LITERAL;
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
    maxNonSyncLiteralBytes: MAX_NON_SYNC,
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
