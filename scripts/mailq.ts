// mailq: what is waiting in the outbound queue, like Postfix's mailq.
//
//   node scripts/mailq.ts [--config FILE | --data DIR]          list the queue
//   node scripts/mailq.ts [--config FILE | --data DIR] --flush  try everything now
//
// For each message: id, age, sender, size, and each recipient still pending
// with the last error and the time of the next try. --flush signals the
// running relay (SIGUSR1, PID from <data>/relay.pid) to attempt every
// message now, whatever its schedule says.
//
// The last error is a remote server's reply: its control characters are
// printed as escapes (src/log.ts), so a reply cannot drive the terminal.

import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { loadConfig, dataDirOf } from '../src/config.ts';
import { escapeForTerminal } from '../src/log.ts';
import { runWhenStarted } from './lib/cli.ts';
import { runningPid } from './lib/pid-file.ts';
import { becomeOwnerOf } from '../src/privileges.ts';
import { parseQueueEnvelope } from '../src/queue/queue-file.ts';
import { listQueue, messagePath, readState } from '../src/queue/queue-state.ts';
import type { QueueState } from '../src/queue/queue-state.ts';
import type { QueueEnvelope } from '../src/queue/queue-file.ts';
import { relayPidPath } from '../src/relay/main.ts';

function age(since: Date, now: Date): string {
  const minutes = Math.floor((now.getTime() - since.getTime()) / 60_000);
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
  return `${Math.floor(minutes / 1440)}d`;
}

/** The listing as text (exported for the tests). */
export async function describeQueue(dataDir: string, now = new Date()): Promise<string> {
  const ids = await listQueue(dataDir);
  if (ids.length === 0) return 'Mail queue is empty\n';
  const lines: string[] = [];
  for (const id of ids) {
    const path = messagePath(dataDir, id);
    const head = await readFile(path).catch(() => null);
    if (!head) continue; // delivered while we looked
    let envelope: QueueEnvelope;
    let state: QueueState;
    try {
      envelope = parseQueueEnvelope(head.subarray(0, 1024 * 1024)).envelope;
      state = await readState(dataDir, envelope);
    } catch (err) {
      // Left for the admin by the relay: show it rather than stop the listing.
      lines.push(`${id}  cannot be read: ${escapeForTerminal((err as Error).message)}`);
      continue;
    }
    const size = (await stat(path)).size;
    const safe = escapeForTerminal;
    lines.push(`${id}  ${age(envelope.arrived, now).padStart(6)}  ${size} bytes  from <${safe(envelope.from)}>  attempts ${state.attempts}`);
    for (const r of state.recipients) {
      if (r.status !== 'pending') continue;
      lines.push(`    <${safe(r.address)}>  next try ${safe(state.nextAttempt)}${r.lastReply ? `\n        last: ${safe(r.lastReply)}` : ''}`);
    }
  }
  lines.push(`-- ${ids.length} message${ids.length === 1 ? '' : 's'} in the queue`);
  return lines.join('\n') + '\n';
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, data: { type: 'string' }, flush: { type: 'boolean', default: false } } });
  const dataDir = values.data ? resolve(values.data) : dataDirOf(loadConfig(values.config));
  if (values.flush) {
    // As root, act as the relay's user: the PID file is theirs to write, and
    // root must not send signals on the word of a file someone else wrote.
    becomeOwnerOf(dataDir);
    const pid = await runningPid(relayPidPath(dataDir), 'src/relay/main.ts');
    if (typeof pid !== 'number') {
      console.error(`mailq: no relay is running (${pid === 'stale' ? 'stale relay.pid' : 'no relay.pid'})`);
      return 1;
    }
    process.kill(pid, 'SIGUSR1');
    console.log(`asked the relay (pid ${pid}) to try every queued message now`);
    return 0;
  }
  process.stdout.write(await describeQueue(dataDir));
  return 0;
}

runWhenStarted(import.meta.url, 'mailq', main);
