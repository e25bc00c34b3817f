// A recipient's result as the queue state keeps it (queue-state.ts) and as
// a bounce later reports it (bounces.ts): who said it matters. `remoteMta`
// is set only when `lastReply` is a reply that server sent; our own
// verdicts (no route, no connection, a check before sending, expiry) have
// none, and a bounce reports them as ours (RFC 3464 2.3.5, 2.3.6).

import type { RecipientState } from '../queue/queue-state.ts';
import type { SmtpResult } from './smtp-client.ts';

/**
 * A recipient's latest result. `remoteMta` names the server only when
 * `reply` is what that server said; for our own verdicts (no route, no
 * connection, expired) there is none, and a stale one is cleared.
 */
export function record(recipient: RecipientState, status: RecipientState['status'], statusCode: string, reply: string, remoteMta?: string): void {
  recipient.status = status;
  recipient.statusCode = statusCode;
  recipient.lastReply = reply;
  if (remoteMta) recipient.remoteMta = remoteMta;
  else delete recipient.remoteMta;
}

/** `550 5.1.1 text`, as logs and bounces quote a reply. */
export function replyText(reply: SmtpResult): string {
  return `${reply.code} ${reply.enhanced} ${reply.text}`.replace(/ +/g, ' ');
}
