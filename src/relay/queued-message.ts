// A queued message opened for one delivery attempt: its envelope, where its
// bytes are in the queue file, its header (for DKIM and for bounces), and
// the message as it goes on the wire - the DKIM-Signature, if any, in front
// of the stored bytes - with its size as RFC 1870's SIZE= counts it.
//
// The file stays open for the attempt (the runner closes it), so the body is
// streamed from it as often as needed and never held in memory.

import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { readInto, readRange } from '../store/file-io.ts';
import { findHeaderEnd } from '../mime/header.ts';
import { parseQueueEnvelope } from '../queue/queue-file.ts';
import type { QueueEnvelope } from '../queue/queue-file.ts';
import { messagePath } from '../queue/queue-state.ts';
import { DotWriter } from '../wire/dot-writer.ts';

/** A queued message opened for one run: envelope, and where its bytes are. */
export interface QueuedMessage {
  envelope: QueueEnvelope;
  file: FileHandle;
  bodyOffset: number;
  bodyBytes: number;
  /** Octets on the wire (CRLF, signature included), for SIZE=; set once the message is due. */
  wireSize: number;
  header: Buffer;
  /** `DKIM-Signature: ...` (LF line endings) to put in front, or empty. */
  signature: Buffer;
}

const HEAD_LIMIT = 1024 * 1024;

/** Open a queue file: its envelope and its header (for DKIM and bounces). */
export async function openQueued(dataDir: string, id: string): Promise<QueuedMessage> {
  const file = await open(messagePath(dataDir, id), 'r');
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(size, HEAD_LIMIT));
    await readInto(file, head, head.length, 0); // (one read may return less)
    const { envelope, bodyOffset } = parseQueueEnvelope(head);
    // The state file and the removal go by envelope.id: a file under another
    // name (copied, renamed) would otherwise be delivered again and again.
    if (envelope.id !== id) throw new Error(`queue file ${id}.msg holds message ${envelope.id}`);
    const message = head.subarray(bodyOffset);
    const end = findHeaderEnd(message);
    const header = end ? message.subarray(0, end.headerLength) : message;
    const bodyBytes = size - bodyOffset;
    return { envelope, file, bodyOffset, bodyBytes, wireSize: 0, header: Buffer.from(header), signature: Buffer.alloc(0) };
  } catch (err) {
    await file.close();
    throw err;
  }
}

/** The message as sent: the DKIM-Signature, if any, then the stored bytes. */
export async function* messageContent(message: QueuedMessage): AsyncIterable<Buffer> {
  if (message.signature.length > 0) yield message.signature;
  yield* readRange(message.file, message.bodyOffset, message.bodyBytes);
}

/**
 * RFC 1870: SIZE= counts what is sent (line ends as CRLF), the signature
 * too. Counted by the writer that will send it, so the two always agree.
 */
export async function countWireOctets(message: QueuedMessage): Promise<number> {
  const counter = new DotWriter();
  for await (const chunk of messageContent(message)) counter.push(chunk);
  counter.end();
  return counter.messageOctets;
}

/** The body after the header and its blank line: what DKIM's bh= hashes. */
export function bodyAfterHeader(message: QueuedMessage): AsyncIterable<Buffer> {
  const headerBytes = message.header.length + 1; // the header and its blank line
  return readRange(message.file, message.bodyOffset + headerBytes, Math.max(0, message.bodyBytes - headerBytes));
}
