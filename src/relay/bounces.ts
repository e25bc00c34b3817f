// Telling the sender: a bounce for recipients that failed for good, a delay
// warning for those still waiting (RFC 3464 reports, built by dsn.ts). A
// report to one of our own users goes straight into their INBOX; any other
// is queued as a new message from <> and delivered like any mail.

import { newId } from '../queue/queue-id.ts';
import { writeQueueFile } from '../queue/queue-file.ts';
import type { RecipientState } from '../queue/queue-state.ts';
import { buildDsn, LOCAL_DIAGNOSTIC_TYPE, shouldBounce } from './dsn.ts';
import type { DsnRecipient } from './dsn.ts';
import type { QueuedMessage } from './queued-message.ts';
import { nowOf } from './runner-deps.ts';
import type { RunnerDeps } from './runner-deps.ts';

/**
 * notifySender(), but a failure (a full disk, a locked INBOX) is logged and
 * reported as false instead of thrown: the results of this attempt must
 * still be saved, or the recipients just delivered would get it again.
 */
export async function tryNotifySender(deps: RunnerDeps, message: QueuedMessage, recipients: RecipientState[], action: 'failed' | 'delayed'): Promise<boolean> {
  try {
    await notifySender(deps, message, recipients, action);
    return true;
  } catch (err) {
    deps.log.event('bounce-failed', { id: message.envelope.id, action, error: (err as Error).message });
    return false;
  }
}

/** A delivery status notification to the sender (RFC 3464), never to <> (RFC 5321 4.5.5). */
async function notifySender(deps: RunnerDeps, message: QueuedMessage, recipients: RecipientState[], action: 'failed' | 'delayed'): Promise<void> {
  const { envelope } = message;
  const { config, log } = deps;
  if (!shouldBounce(envelope.from)) {
    log.event('no-bounce', { id: envelope.id, reason: 'null sender', action });
    return;
  }
  const dsnRecipients: DsnRecipient[] = recipients.map((r) => ({
    address: r.address,
    action,
    status: r.statusCode ?? (action === 'failed' ? '5.0.0' : '4.0.0'),
    // RFC 3464 2.3.6: smtp; only quotes a remote server, and only then is there a Remote-MTA.
    diagnostic: r.lastReply ? `${r.remoteMta ? 'smtp' : LOCAL_DIAGNOSTIC_TYPE}; ${r.lastReply}` : undefined,
    remoteMta: r.remoteMta,
    lastAttempt: nowOf(deps),
  }));
  const dsn = buildDsn({
    reportingMta: config.hostname,
    postmaster: `MAILER-DAEMON@${config.hostname}`,
    to: envelope.from,
    queueId: envelope.id,
    arrivalDate: envelope.arrived,
    recipients: dsnRecipients,
    originalHeader: message.header,
    willRetryUntil: new Date(envelope.arrived.getTime() + config.relay.maxAgeHours * 3_600_000),
    now: nowOf(deps),
  });
  if (await deps.deliverLocally(envelope.from, dsn)) {
    log.event('bounce', { id: envelope.id, action, to: `<${envelope.from}>`, delivered: 'local' });
    return;
  }
  const id = newId();
  // 8BITMIME only when the report carries 8-bit bytes (from the original header), or it could not go to a 7-bit server.
  const body = dsn.some((byte) => byte > 0x7f) ? '8bitmime' : '7bit';
  await writeQueueFile(deps.dataDir, { id, from: '', to: [envelope.from], arrived: nowOf(deps), auth: '', body, smtputf8: false }, async function* () {
    yield dsn;
  });
  log.event('bounce', { id: envelope.id, action, to: `<${envelope.from}>`, queued: id });
}
