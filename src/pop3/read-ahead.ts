// Read-ahead for a download one command at a time. A mail client that
// fetches new mail (Thunderbird, fetchmail, K-9 Mail) sends RETR n + 1 as
// soon as it has message n, and sends nothing until then. So while it reads
// message n, the server gets message n + 1 ready: read, checked against the
// index and put in its wire form. When the RETR comes, the answer goes out
// at once instead of after a read and a conversion: on the development
// machine a fifth less time between two messages (scripts/bench-pop3.ts,
// one command at a time). A client that pipelines its RETRs (RFC 2449 6.6)
// does not wait for each answer, so the loop does none of this for it
// (protocol/session.ts meanwhile()).
//
// Bounds:
// - Only a small message (the ones RETR reads at once, up to 128 KiB), one
//   per session, and at most READ_AHEAD_BYTES held by all sessions
//   together: memory has a global cap.
// - A prepared answer is good for FRESH_MS only. The message was checked
//   against the mailbox when it was read, as any RETR's is; then it is no
//   older than an answer still on its way to a slow client. The RETR that
//   takes it checks again that the message is still there, unchanged in
//   size and not marked deleted (commands.ts).

import { DotWriter } from '../wire/dot-writer.ts';
import type { Maildrop } from './maildrop.ts';
import { statusLine } from './types.ts';
import type { Pop3Reply } from './types.ts';

/** Held by all sessions together, at most. */
export const READ_AHEAD_BYTES = 1024 * 1024;
/** How long a prepared answer stays good. */
const FRESH_MS = 1000;

let heldBytes = 0;

/** The answer to RETR of a small message: status line, dot-stuffed text and "." as one piece of wire (one write). */
export function messageReply(size: number, content: string): Pop3Reply {
  const reply: Pop3Reply = { ok: true, text: `${size} octets` };
  reply.wire = new DotWriter().pushLastText(content, statusLine(reply));
  return reply;
}

/** One session's prepared answer: for one message number, at most. */
export class ReadAhead {
  #number = 0;
  #reply: Pop3Reply | null = null;
  #bytes = 0;
  #madeAt = 0;

  /** The answer prepared for message `n`, if there is a fresh one. Given once: it is let go either way. */
  take(n: number): Pop3Reply | null {
    const reply = this.#number === n && performance.now() - this.#madeAt <= FRESH_MS ? this.#reply : null;
    this.clear();
    return reply;
  }

  /**
   * Get message `n` of `drop` ready, if it is there, small, and the budget
   * has room. Throws what a RETR's read would (the loop ignores it: the RETR
   * will read the message itself and answer -ERR).
   */
  prepare(drop: Maildrop, n: number): void {
    this.clear();
    const message = drop.get(n);
    if (message === null || heldBytes + message.size > READ_AHEAD_BYTES) return;
    const content = drop.readSmallText(message);
    if (content === null) return; // a large message: RETR streams it
    this.#number = n;
    this.#reply = messageReply(message.size, content);
    this.#bytes = message.size;
    this.#madeAt = performance.now();
    heldBytes += message.size;
  }

  /** Let go of the prepared answer (taken, replaced, or the session is over). */
  clear(): void {
    heldBytes -= this.#bytes;
    this.#bytes = 0;
    this.#reply = null;
  }
}

/** Bytes held by prepared answers of all sessions (for the tests). */
export function readAheadBytes(): number {
  return heldBytes;
}
