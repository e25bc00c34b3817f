// After an attempt: save what happened and decide what comes next. Every
// recipient final: bounce the failures and remove the message. Some still
// pending: past the queue lifetime they fail as expired (4.4.7, our own
// verdict); after delayWarningHours the sender hears once that the mail is
// late; otherwise the next attempt is scheduled (schedule.ts).
//
// Invariant: the state is saved after every attempt, and the message leaves
// the queue only once every recipient is delivered or bounced.

import { removeQueued, writeState } from '../queue/queue-state.ts';
import type { QueueState } from '../queue/queue-state.ts';
import { delayWarningDue, isExpired, nextAttemptAt } from './schedule.ts';
import { tryNotifySender } from './bounces.ts';
import { record } from './recipient-results.ts';
import type { QueuedMessage } from './queued-message.ts';
import { nowOf } from './runner-deps.ts';
import type { RunnerDeps } from './runner-deps.ts';

/** Save the results; bounce final failures; schedule, expire or remove. */
export async function finishAttempt(deps: RunnerDeps, message: QueuedMessage, state: QueueState): Promise<'removed' | 'deferred'> {
  const { config, dataDir, log } = deps;
  const { envelope } = message;
  const now = nowOf(deps);
  state.attempts++;
  state.lastAttempt = now.toISOString();
  const pending = state.recipients.filter((r) => r.status === 'pending');
  if (pending.length > 0 && isExpired(envelope.arrived, now, config.relay.maxAgeHours)) {
    for (const r of pending) record(r, 'failed', '4.4.7', `message expired after ${config.relay.maxAgeHours} hours; last error: ${r.lastReply ?? 'none'}`);
  } else if (pending.length > 0 && delayWarningDue(envelope.arrived, now, config.relay.delayWarningHours, state.delayWarned)) {
    state.delayWarned = await tryNotifySender(deps, message, pending, 'delayed');
  }
  const toBounce = state.recipients.filter((r) => r.status === 'failed' && !r.notified);
  if (toBounce.length > 0 && (await tryNotifySender(deps, message, toBounce, 'failed'))) {
    for (const r of toBounce) r.notified = true;
  }
  // A bounce that could not be written keeps the message (and its state) for the next attempt.
  if (state.recipients.every((r) => r.status === 'delivered' || (r.status === 'failed' && r.notified))) {
    await removeQueued(dataDir, envelope.id);
    log.event('done', { id: envelope.id, delivered: state.recipients.filter((r) => r.status === 'delivered').length, failed: toBounce.length });
    return 'removed';
  }
  state.nextAttempt = nextAttemptAt(now, state.attempts).toISOString();
  await writeState(dataDir, envelope.id, state);
  log.event('deferred', { id: envelope.id, pending: state.recipients.filter((r) => r.status === 'pending').length, next: state.nextAttempt });
  return 'deferred';
}
