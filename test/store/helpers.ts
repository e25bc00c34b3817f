// Shared helpers for the store tests: a scratch directory per test file and
// small ways to build message content streams.

import { after } from 'node:test';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { MailboxIndex } from '../../src/store/mbox-index.ts';
import type { MessageRecord } from '../../src/store/message-table.ts';

/** A fresh temporary directory, removed when the test file finishes. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `jjordan-${prefix}-`));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A content() function yielding `text` in pieces of `chunkSize` bytes. */
export function contentOf(text: string | Buffer, chunkSize = 7): () => AsyncIterable<Buffer> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return async function* () {
    for (let i = 0; i < bytes.length; i += chunkSize) yield bytes.subarray(i, i + chunkSize);
  };
}

/** Reads a file, or returns null if it does not exist. */
export async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** An index with its messages as plain records, for deepEqual (a MessageTable keeps its columns private). */
export function plainIndex(index: MailboxIndex): Omit<MailboxIndex, 'messages'> & { messages: MessageRecord[] } {
  return { ...index, messages: index.messages.records() };
}

/** Gives row `k` of the index these flags (as a STORE would, without a journal). */
export function setRowFlags(index: MailboxIndex, k: number, flags: string[]): void {
  const table = index.messages;
  table.setFlagsAt(k, table.flags.idOf(flags), ++index.highestModseq);
}

/** Directory entries without this process's dot-lock stamps (store/dotlock-stamp.ts: kept between locks). */
export function withoutStamps(names: string[]): string[] {
  return names.filter((name) => !name.startsWith(`.lock-stamp.${process.pid}.`));
}
