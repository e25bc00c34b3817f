// The queue runner: the heart of the relay process, and its main loop. For
// each queued message that is due, one attempt:
//
//   1. open the queue file and read its state          queued-message.ts
//   2. group the pending recipients by domain          routing.ts
//   3. sign it (DKIM) and count its octets for SIZE=   message-signing.ts
//   4. per domain: find the hosts, hand the message    delivery-attempt.ts
//      to the SMTP client, record each recipient's     (routing.ts, tls-policy.ts,
//      result                                           smtp-client.ts)
//   5. save the results; bounce what failed, warn of   attempt-end.ts, bounces.ts
//      long delays, expire what is too old, schedule
//      the next attempt or remove the message
//
// Invariant: a message leaves the queue only after every recipient has a
// final result, and the state is saved after every attempt. The runner
// itself only decides which messages are due and that one message is never
// in two attempts at once.

import { listQueue, readState } from '../queue/queue-state.ts';
import { retryDelayMs } from './schedule.ts';
import { countWireOctets, openQueued } from './queued-message.ts';
import type { QueuedMessage } from './queued-message.ts';
import { groupByDomain } from './routing.ts';
import { signatureFor } from './message-signing.ts';
import { deliverToDomain } from './delivery-attempt.ts';
import { finishAttempt } from './attempt-end.ts';
import { nowOf } from './runner-deps.ts';
import type { RunnerDeps } from './runner-deps.ts';

export type { RunnerDeps } from './runner-deps.ts';

export class QueueRunner {
  private readonly deps: RunnerDeps;
  private readonly busy = new Set<string>();
  /** Messages whose last attempt threw (see processMessage): not retried before this time (ms). */
  private readonly failedUntil = new Map<string, number>();

  constructor(deps: RunnerDeps) {
    this.deps = deps;
  }

  /** Attempt every message that is due (all of them when `force`, as `mailq --flush` asks). */
  async runDue(force = false): Promise<void> {
    const ids = (await listQueue(this.deps.dataDir)).filter((id) => !this.busy.has(id));
    for (const id of this.failedUntil.keys()) if (!ids.includes(id) && !this.busy.has(id)) this.failedUntil.delete(id);
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        await this.processMessage(id, force).catch((err: Error) => this.deps.log.event('error', { id, error: err.message }));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.deps.config.relay.concurrency) }, worker));
  }

  /** One attempt at one message, if it is due. */
  async processMessage(id: string, force = false): Promise<'removed' | 'deferred' | 'not-due'> {
    const { deps } = this;
    if (this.busy.has(id)) return 'not-due';
    this.busy.add(id);
    let message: QueuedMessage | null = null;
    try {
      if (!force && (this.failedUntil.get(id) ?? 0) > nowOf(deps).getTime()) return 'not-due';
      message = await openQueued(deps.dataDir, id);
      const state = await readState(deps.dataDir, message.envelope);
      if (!force && new Date(state.nextAttempt) > nowOf(deps)) return 'not-due';

      const pending = state.recipients.filter((r) => r.status === 'pending');
      const byDomain = groupByDomain(pending, deps.config.relay.smarthost.host !== '');
      if (byDomain.size > 0) {
        message.signature = await signatureFor(message, deps.dkimKeys, deps.log);
        // Counted only now, for a message that is due: not on every scan of the queue.
        message.wireSize = await countWireOctets(message);
      }
      for (const [domain, recipients] of byDomain) await deliverToDomain(deps, message, domain, recipients);
      const result = await finishAttempt(deps, message, state);
      this.failedUntil.delete(id);
      return result;
    } catch (err) {
      // A corrupt file, a full disk: leave the message for the admin, and do
      // not try it again (nor log it again) at every scan; --flush still does.
      this.failedUntil.set(id, nowOf(deps).getTime() + retryDelayMs(1));
      throw err;
    } finally {
      await message?.file.close().catch(() => {});
      this.busy.delete(id);
    }
  }
}
