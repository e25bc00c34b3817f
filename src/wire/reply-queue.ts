// Replies waiting to be written, and how they are written together.
//
// RFC 2920 3.1 asks a server to answer a pipelined group of commands in as
// few writes as it can: connection.ts queues every reply here and writes
// the queue out only when the session is about to wait for the client (or
// once FLUSH_BYTES have gathered, so a long pipeline does not grow memory).
// Text replies are joined into one string; parts that hold buffers are
// handed to the socket corked, so the kernel gets them in one writev
// without their being copied into one buffer first. A pooled buffer (a
// large IMAP literal, buffer-pool.ts) is recycled in its write's callback:
// only then has the socket finished with its memory.
//
// A reply is a string (sent as UTF-8), a Buffer, or bytes held as a string
// of one character per byte (Latin1Text: POP3's RETR, wire/dot-writer.ts).
// Node writes a string of up to 16 KiB straight from the stack to the
// socket, so such a message goes out without a buffer made for it.

import type { Socket } from 'node:net';
import { isPooled, recycle } from '../buffer-pool.ts';

/** Bytes as a string of one character per byte ('latin1'), written as such rather than as UTF-8. */
export interface Latin1Text {
  readonly latin1: string;
}

/** What a reply is on the wire. */
export type Wire = string | Buffer | Latin1Text;

/** Queued replies are written out once they reach this size, even mid-pipeline. */
export const FLUSH_BYTES = 64 * 1024;

export class ReplyQueue {
  private parts: Wire[] = [];
  private queuedBytes = 0;

  /** Queue a reply; true when the queue has grown to FLUSH_BYTES and should be written now. */
  add(data: Wire): boolean {
    this.parts.push(data);
    this.queuedBytes += typeof data === 'string' || Buffer.isBuffer(data) ? data.length : data.latin1.length;
    return this.queuedBytes >= FLUSH_BYTES;
  }

  /** Bytes queued, not yet handed to the socket. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Hand everything queued to the socket in one write; a socket already gone gets nothing, and the queue is emptied either way. */
  writeTo(socket: Socket, connectionClosed: boolean): void {
    if (this.parts.length === 0) return;
    const parts = this.parts;
    this.clear();
    if (connectionClosed || socket.destroyed) return;
    if (parts.length === 1) {
      write(socket, parts[0]);
      return;
    }
    // The replies of a pipelined group are mostly short lines (SMTP's 250s,
    // POP3's +OKs, IMAP's untagged data): joined, they are one plain write,
    // cheaper than a corked write of each and the writev gathering them.
    if (parts.every((part) => typeof part === 'string')) {
      socket.write(parts.join(''));
      return;
    }
    socket.cork();
    for (const part of parts) write(socket, part);
    socket.uncork();
  }

  /** Forget what is queued (the connection is being destroyed). */
  clear(): void {
    this.parts = [];
    this.queuedBytes = 0;
  }
}

function write(socket: Socket, part: Wire): void {
  if (typeof part === 'string') socket.write(part);
  else if (!Buffer.isBuffer(part)) socket.write(part.latin1, 'latin1');
  // The callback runs once the kernel has the bytes, or the write failed: either way the memory is free.
  else if (isPooled(part)) socket.write(part, () => recycle(part));
  else socket.write(part);
}
