// DKIM-signing a queued message just before it goes out (RFC 6376; the
// signature itself is made in dkim.ts). The queue file is never changed:
// the signature is put in front of the stored bytes on the wire.

import type { Logger } from '../log.ts';
import { dkimSign, fromDomain } from './dkim.ts';
import type { DkimKey } from './dkim.ts';
import { bodyAfterHeader } from './queued-message.ts';
import type { QueuedMessage } from './queued-message.ts';

/**
 * A DKIM-Signature (RFC 6376) with the key of the From: domain, so d= is
 * the domain the reader sees (DMARC alignment, RFC 7489 3.1.1). No key for
 * that domain: no signature, rather than one for another domain. If
 * signing fails the mail goes out unsigned, and the log says why: a broken
 * key must not hold up the queue.
 */
export async function signatureFor(message: QueuedMessage, dkimKeys: Map<string, DkimKey>, log: Logger): Promise<Buffer> {
  const domain = fromDomain(message.header);
  const key = domain === null ? undefined : dkimKeys.get(domain);
  if (!key) return Buffer.alloc(0);
  try {
    const field = await dkimSign(message.header, bodyAfterHeader(message), key);
    return Buffer.from(field.replace(/\r\n/g, '\n'));
  } catch (err) {
    log.event('dkim-failed', { id: message.envelope.id, error: (err as Error).message });
    return Buffer.alloc(0);
  }
}
