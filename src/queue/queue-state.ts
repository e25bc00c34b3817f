// What the relay knows about each queued message, beside the immutable
// `<id>.msg` file: one small JSON file `<id>.state` per message, rewritten
// atomically (safeio) after every attempt. A relay killed at any moment finds
// the last saved state and simply tries again: mail is delivered at least
// once, never lost (a recipient may get a duplicate if we die between the
// remote 250 and saving the state; RFC 5321 6.1 accepts that trade).

import { readFile, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../store/safeio.ts';
import { queueDir } from './queue-file.ts';
import type { QueueEnvelope } from './queue-file.ts';

export interface RecipientState {
  address: string;
  status: 'pending' | 'delivered' | 'failed';
  /** RFC 3463 status of the last attempt, e.g. '4.4.1' or '5.1.1'. */
  statusCode?: string;
  /** The last reply or error, as the log and a bounce show it. */
  lastReply?: string;
  /** The host that gave it (`dns; mx1.example.net`). */
  remoteMta?: string;
  /** The sender was told of this failure (one bounce per recipient). */
  notified?: boolean;
}

export interface QueueState {
  attempts: number;
  lastAttempt: string | null;
  /** ISO time of the next attempt. */
  nextAttempt: string;
  recipients: RecipientState[];
  /** A "delayed" notice was already sent to the sender. */
  delayWarned: boolean;
}

function statePath(dataDir: string, id: string): string {
  return join(queueDir(dataDir), `${id}.state`);
}

export function messagePath(dataDir: string, id: string): string {
  return join(queueDir(dataDir), `${id}.msg`);
}

/**
 * The saved state, or a fresh one (every recipient pending, due now) when
 * there is none yet. A state file that cannot be read or parsed throws:
 * starting afresh would deliver again to every recipient already delivered,
 * so the message waits for the admin instead.
 */
export async function readState(dataDir: string, envelope: QueueEnvelope): Promise<QueueState> {
  const path = statePath(dataDir, envelope.id);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return {
      attempts: 0,
      lastAttempt: null,
      nextAttempt: envelope.arrived.toISOString(),
      recipients: envelope.to.map((address) => ({ address, status: 'pending' })),
      delayWarned: false,
    };
  }
  let state: QueueState;
  try {
    state = JSON.parse(text) as QueueState;
  } catch (err) {
    throw new Error(`corrupt queue state ${path}: ${(err as Error).message}`);
  }
  if (!state || !Array.isArray(state.recipients) || typeof state.nextAttempt !== 'string') throw new Error(`corrupt queue state ${path}`);
  return state;
}

export async function writeState(dataDir: string, id: string, state: QueueState): Promise<void> {
  await writeFileAtomic(statePath(dataDir, id), JSON.stringify(state, null, 2) + '\n');
}

/** Every recipient has a final result: the message leaves the queue (message first, then its state). */
export async function removeQueued(dataDir: string, id: string): Promise<void> {
  // If the message cannot be removed, its state must stay: without it the
  // next attempt would start afresh and deliver to everyone again.
  const gone = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  };
  await unlink(messagePath(dataDir, id)).catch(gone);
  await unlink(statePath(dataDir, id)).catch(gone);
}

/** Ids of the messages in the queue, oldest name first. */
export async function listQueue(dataDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(queueDir(dataDir));
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.msg')).map((n) => n.slice(0, -4)).sort();
}
