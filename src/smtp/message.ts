// Receiving the message after DATA's 354: bytes from the connection go through
// the end-of-DATA reader (unstuffing, CRLF -> LF), the header section is kept
// in memory so it can be cleaned, and the body is spooled (memory, then a
// temporary file). Memory stays bounded whatever the client sends.
//
// Limits (answered by the session after the final dot, RFC 5321 4.5.3.1.10):
// - the whole message, counted as RFC 1870 does, against `maxBytes` (552 5.3.4);
// - the header section against `maxHeaderBytes` (Postfix has a similar
//   header_size_limit; we refuse the message instead of cutting the header).
// - the temporary file must take the body: a full disk (or an unusable tmp
//   directory) is `spool-failed`, answered 451 so the client tries again.
// Once a limit is passed the rest is read and thrown away, so the client can
// still get its reply after the dot.

import type { Connection } from '../wire/connection.ts';
import { DataReader } from '../wire/data-reader.ts';
import { SpooledBody } from '../store/spooled-body.ts';
import { HeaderEndFinder } from '../mime/header.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';

export interface ReceivedMessage {
  /** The header section, LF line endings, ending with the LF of its last line (no blank line). */
  header: Buffer;
  body: SpooledBody;
  /** Octets as RFC 1870 counts them (CRLF included; no stuffing dots, no end marker). */
  size: number;
  problem: 'too-big' | 'header-too-big' | 'spool-failed' | null;
  /** For 'spool-failed': what the file system said. */
  spoolError?: Error;
}

export interface ReceiveOptions {
  maxBytes: number;
  maxHeaderBytes: number;
  memoryBufferBytes: number;
  /** The process-wide budget the in-memory part comes from. */
  budget: MemoryBudget;
  tmpDir: string;
}

export type ReceiveResult = { ok: true; message: ReceivedMessage } | { ok: false; reason: 'closed' | 'timeout' };

export async function receiveMessage(conn: Connection, options: ReceiveOptions): Promise<ReceiveResult> {
  const reader = new DataReader();
  const body = new SpooledBody(options.tmpDir, options.memoryBufferBytes, { budget: options.budget });
  const header = new HeaderCollector(options.maxHeaderBytes);
  let problem: ReceivedMessage['problem'] = null;
  let spoolError: Error | undefined;
  // A failing write must not end the session without a reply: note it, read
  // on to the dot, and let the session answer 451.
  const spool = async (write: () => Promise<void>) => {
    try {
      await write();
    } catch (err) {
      problem ??= 'spool-failed';
      spoolError ??= err as Error;
    }
  };

  const outcome = await conn.readBytes(async (chunk) => {
    const { output, used } = reader.push(chunk);
    if (reader.messageBytes > options.maxBytes) problem ??= 'too-big';
    if (problem === null) {
      const bodyPart = header.done ? output : header.add(output);
      if (header.overflow) problem = 'header-too-big';
      else if (bodyPart && bodyPart.length > 0) await spool(() => body.write(bodyPart));
    }
    return reader.done ? used : -1;
  });

  await spool(() => body.finish());
  if (outcome !== 'done') {
    await body.discard();
    return { ok: false, reason: outcome };
  }
  if (problem !== null) await body.discard();
  return { ok: true, message: { header: header.section(), body, size: reader.messageBytes, problem, spoolError } };
}

/**
 * Collects bytes until the blank line that ends the header section
 * (RFC 5322 2.1, found by mime/header.ts). `add` returns the bytes that
 * belong to the body, if any.
 */
class HeaderCollector {
  private parts: Buffer[] = [];
  private length = 0;
  private readonly finder = new HeaderEndFinder();
  done = false;
  overflow = false;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(data: Buffer): Buffer | null {
    const bodyStart = this.finder.push(data);
    if (bodyStart < 0) {
      this.keep(data);
      return null;
    }
    this.keep(data.subarray(0, this.finder.headerLength - this.length)); // the header's last bytes, without the blank line
    this.done = true;
    return data.subarray(bodyStart);
  }

  private keep(data: Buffer): void {
    this.length += data.length;
    if (this.length > this.limit) {
      this.overflow = true;
      return;
    }
    this.parts.push(Buffer.from(data));
  }

  /** The header section; a message with no blank line is all header. */
  section(): Buffer {
    const all = Buffer.concat(this.parts);
    return all.length > 0 && all[all.length - 1] !== 0x0a ? Buffer.concat([all, Buffer.from('\n')]) : all;
  }
}
