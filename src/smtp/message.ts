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

export interface ReceivedMessage {
  /** The header section, LF line endings, ending with the LF of its last line (no blank line). */
  header: Buffer;
  body: SpooledBody;
  /** Octets as RFC 1870 counts them (CRLF included; no stuffing dots, no end marker). */
  size: number;
  problem: 'too-big' | 'header-too-big' | 'spool-failed' | null;
  /** For 'spool-failed': what the file system said (for the log). */
  spoolError?: string;
  /** Its errno code (ENOSPC: the disk is full). */
  spoolErrorCode?: string;
}

export interface ReceiveOptions {
  maxBytes: number;
  maxHeaderBytes: number;
  memoryBufferBytes: number;
  tmpDir: string;
}

export type ReceiveResult = { ok: true; message: ReceivedMessage } | { ok: false; reason: 'closed' | 'timeout' };

export async function receiveMessage(conn: Connection, options: ReceiveOptions): Promise<ReceiveResult> {
  const reader = new DataReader();
  const body = new SpooledBody(options.tmpDir, options.memoryBufferBytes);
  const header = new HeaderCollector(options.maxHeaderBytes);
  let problem: ReceivedMessage['problem'] = null;
  let spoolError: string | undefined;
  let spoolErrorCode: string | undefined;
  // A failing write must not end the session without a reply: note it, read
  // on to the dot, and let the session answer 451.
  const spool = async (write: () => Promise<void>) => {
    try {
      await write();
    } catch (err) {
      problem ??= 'spool-failed';
      spoolError ??= (err as Error).message;
      spoolErrorCode ??= (err as NodeJS.ErrnoException).code;
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
  return { ok: true, message: { header: header.section(), body, size: reader.messageBytes, problem, spoolError, spoolErrorCode } };
}

/**
 * Collects bytes until the blank line that ends the header section
 * (RFC 5322 2.1). `add` returns the bytes that belong to the body, if any.
 */
class HeaderCollector {
  private parts: Buffer[] = [];
  private length = 0;
  /** The last byte seen, to find "\n\n" split across chunks. */
  private previous = 0x0a;
  done = false;
  overflow = false;
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(data: Buffer): Buffer | null {
    // A blank line is an LF right after an LF (or at the very start: no header).
    let end = -1;
    if (data.length > 0 && data[0] === 0x0a && this.previous === 0x0a) end = 0;
    else {
      const found = data.indexOf('\n\n');
      if (found >= 0) end = found + 1;
    }
    if (end < 0) {
      this.keep(data);
      if (data.length > 0) this.previous = data[data.length - 1];
      return null;
    }
    this.keep(data.subarray(0, end));
    this.done = true;
    return data.subarray(end + 1); // skip the blank line itself
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
