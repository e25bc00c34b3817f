// The sending side: C concurrent connections, each opening an SMTP session
// (greeting, EHLO) and then taking message numbers from a shared counter,
// sending MAIL / RCPT / DATA for each and recording replies and latencies.

import { performance } from 'node:perf_hooks';
import { END_OF_DATA, SmtpClient, describeReply } from './smtp-client.ts';
import type { SmtpReply } from './smtp-client.ts';
import type { MessageFactory } from './bench-messages.ts';

const CONNECT_TIMEOUT_MS = 10_000;
const RECONNECTS_PER_WORKER = 3;

/** The part of bench-smtp's options the senders use. */
export interface SendOptions {
  port: number;
  /** Message n goes to recipients[n % length]. */
  recipients: string[];
  count: number;
  size: number;
  pipelining: boolean;
}

export interface SendStats {
  accepted: number;
  /** Messages that were sent but not accepted, or lost with their connection. */
  failed: number;
  latenciesMs: number[];
  /** "DATA 451", "RCPT 550", "connection" ... -> count */
  errors: Map<string, number>;
  /** The first reply or message seen for each error key. */
  errorSamples: Map<string, string>;
  firstConnectAt: number;
  lastAcceptAt: number;
}

export interface Shared {
  next: number; // index of the next message to send
  deadline: number; // Date.now() value: stop when passed
}

function countError(stats: SendStats, key: string, sample: string): void {
  stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
  if (!stats.errorSamples.has(key)) stats.errorSamples.set(key, sample);
}

async function openSession(
  opts: SendOptions,
  address: string,
  shared: Shared,
): Promise<{ client: SmtpClient; pipelining: boolean; sizeParam: boolean }> {
  const deadline = Math.min(shared.deadline, Date.now() + CONNECT_TIMEOUT_MS);
  const client = await SmtpClient.open(address, opts.port, Math.max(1, deadline - Date.now()));
  try {
    const greeting = await client.readReply(shared.deadline);
    if (greeting.code !== 220) throw new Error(`greeting: ${describeReply(greeting)}`);
    const ehlo = await client.command('EHLO bench-smtp.localhost', shared.deadline);
    if (ehlo.code !== 250) throw new Error(`EHLO: ${describeReply(ehlo)}`);
    const keywords = ehlo.lines.slice(1).map((line) => line.split(' ')[0].toUpperCase());
    return { client, pipelining: opts.pipelining && keywords.includes('PIPELINING'), sizeParam: keywords.includes('SIZE') };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/** One connection's loop: takes message numbers from `shared` until none are left. */
export async function sender(
  opts: SendOptions,
  address: string,
  messages: MessageFactory,
  shared: Shared,
  stats: SendStats,
): Promise<void> {
  let session: Awaited<ReturnType<typeof openSession>> | null = null;
  let failures = 0;
  try {
    while (shared.next < opts.count && Date.now() < shared.deadline) {
      if (!session) {
        if (stats.firstConnectAt === 0) stats.firstConnectAt = performance.now();
        try {
          session = await openSession(opts, address, shared);
        } catch (err) {
          countError(stats, 'connect', (err as Error).message);
          if (++failures > RECONNECTS_PER_WORKER) return;
          await sleep(100 * failures);
          continue;
        }
      }
      const index = shared.next++;
      try {
        await sendOne(session, opts, messages, index, shared.deadline, stats);
      } catch (err) {
        // The connection broke mid-transaction: the message may or may not
        // be stored, so it is not retried (that could make a duplicate).
        stats.failed++;
        countError(stats, 'connection', (err as Error).message);
        session.client.destroy();
        session = null;
        if (++failures > RECONNECTS_PER_WORKER) return;
      }
    }
  } finally {
    await session?.client.quit(shared.deadline + 2000);
  }
}

async function sendOne(
  session: { client: SmtpClient; pipelining: boolean; sizeParam: boolean },
  opts: SendOptions,
  messages: MessageFactory,
  index: number,
  deadline: number,
  stats: SendStats,
): Promise<void> {
  const { client } = session;
  const started = performance.now();
  const mailFrom = `MAIL FROM:<bench@bench-smtp.invalid>${session.sizeParam ? ` SIZE=${opts.size}` : ''}`;
  const rcptTo = `RCPT TO:<${opts.recipients[index % opts.recipients.length]}>`;
  let mail: SmtpReply;
  let rcpt: SmtpReply | null = null;
  let data: SmtpReply | null = null;
  if (session.pipelining) {
    // RFC 2920 3.1: DATA may end a pipelined group; the message itself waits for 354.
    client.send(mailFrom);
    client.send(rcptTo);
    client.send('DATA');
    mail = await client.readReply(deadline);
    rcpt = await client.readReply(deadline);
    data = await client.readReply(deadline);
  } else {
    mail = await client.command(mailFrom, deadline);
    if (mail.code === 250) rcpt = await client.command(rcptTo, deadline);
    if (rcpt && (rcpt.code === 250 || rcpt.code === 251)) data = await client.command('DATA', deadline);
  }
  let failed: { step: string; reply: SmtpReply } | null = null;
  if (mail.code !== 250) failed = { step: 'MAIL', reply: mail };
  else if (rcpt && rcpt.code !== 250 && rcpt.code !== 251) failed = { step: 'RCPT', reply: rcpt };
  else if (data && data.code !== 354) failed = { step: 'DATA', reply: data };
  if (failed) {
    stats.failed++;
    countError(stats, `${failed.step} ${failed.reply.code}`, describeReply(failed.reply));
    // A pipelined DATA that got 354 anyway must be ended before RSET.
    if (data?.code === 354) await client.command('.', deadline);
    await client.command('RSET', deadline);
    return;
  }
  await client.write(messages.header(index), deadline);
  await client.write(messages.body, deadline);
  await client.write(END_OF_DATA, deadline);
  const final = await client.readReply(deadline);
  if (final.code === 250) {
    stats.accepted++;
    stats.lastAcceptAt = performance.now();
    stats.latenciesMs.push(stats.lastAcceptAt - started);
  } else {
    stats.failed++;
    countError(stats, `end-of-DATA ${final.code}`, describeReply(final));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
