// SMTP delivery benchmark: how many messages per second an SMTP server takes
// in AND makes durable, compared with what the disk underneath can do.
//
//   node scripts/bench-smtp.ts --start-server --count 5000 --size 5k --connections 10
//   node scripts/bench-smtp.ts --port 2525 --mbox spool/mail/jjordan/INBOX --pid 1234
//
// What it measures, in one run:
//  1. Delivery rate. N messages of S bytes go over C concurrent connections
//     (each connection: EHLO once, then MAIL / RCPT / DATA per message,
//     waiting for the 250 after the final dot). The clock runs from the first
//     connect until the last message is visible in the recipient's mbox
//     (counted from the file's size at the start, so earlier mail does not
//     matter). Also: per-message latency (MAIL to the 250 after the dot),
//     every reply that was not a success, and, with --pid, the server's peak
//     RSS (VmHWM) and how far its RSS grew while the messages went through.
//  2. The disk's raw rate for the same work without any cleverness: one
//     writer appending S bytes and calling fsync, over and over, in the same
//     directory as the mbox (or --fsync-dir).
//
// Why the second figure matters: a server may only answer 250 once the
// message is on disk (fsync), and an fsync costs from a fraction of a
// millisecond (a good SSD) to tens of milliseconds (an SD card, a busy
// disk), so a server that fsyncs each message on its own can never beat (2).
// Beating it is the proof that the server does group commit: concurrent
// deliveries share one write and one fsync. The report shows the ratio. On a
// disk whose fsync is cheaper than the server's own work per message the
// ratio stays below 1 whatever the server does; it is the slow disks, where
// the ratio must rise above 1, that show whether group commit works.
//
// Safe by construction: loopback targets only, every loop bounded in count
// and time (--timeout), only Node's built-in modules. This file reads the
// options, runs and reports; scripts/lib/ holds the parts: the self-contained
// SMTP client (smtp-client.ts, so any server can be measured), the messages
// (bench-messages.ts), the senders (senders.ts), the mbox watcher
// (mbox-watch.ts), the memory and fsync figures (measure.ts), the checks on
// option values (args.ts), the figures' formats (format.ts) and, for
// --start-server, this project's own server (bench-server.ts).

import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { smtpSettings, startProjectServer } from './lib/bench-server.ts';
import type { StartedServer } from './lib/bench-server.ts';
import { MessageFactory } from './lib/bench-messages.ts';
import { formatSize, round } from './lib/format.ts';
import { MboxWatcherGroup } from './lib/mbox-watch.ts';
import { measureFsync, percentile, readMemory, resetPeak } from './lib/measure.ts';
import { CpuMeter, describeCpu } from './lib/cpu-meter.ts';
import type { FsyncResult } from './lib/measure.ts';
import { sender } from './lib/senders.ts';
import type { SendStats, Shared } from './lib/senders.ts';
import { UsageError, failed, integer, loopbackAddress, parseSize } from './lib/args.ts';

const USAGE = `usage: node scripts/bench-smtp.ts [options]
  --host H            server address, loopback only (default 127.0.0.1)
  --port P            SMTP port (default 2525)
  --to ADDR           recipient (default jjordan@localhost)
  --mbox FILE         the recipient's mbox file, watched for the new messages
  --mailboxes N       spread the messages over N recipients, LOCAL1@DOMAIN .. LOCALN@DOMAIN
                      (from --to); --mbox then names their files with {n} (default 1)
  --count N           messages to send (default 5000)
  --size S            bytes per message: 5000, 5k, 1m, 25m (default 5k; k/m/g = 1024-based)
  --connections C     concurrent connections (default 10)
  --timeout SECONDS   bound on the whole run (default 300)
  --pid PID           server process, for its peak RSS (/proc/PID/status)
  --fsync-dir DIR     where to measure raw fsync'd appends (default: the mbox's directory)
  --pipelining        send MAIL, RCPT and DATA in one go when the server offers PIPELINING
  --start-server      start this project's server with a fresh data dir (fills in port, mbox, pid)
  --node-arg=ARG      extra node option for the started server, repeatable
                      (e.g. --node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof)`;

const MAX_COUNT = 10_000_000;
const MAX_CONNECTIONS = 1000;
const MAX_MAILBOXES = 100;
const MAX_SIZE = 1024 * 1024 * 1024;
const POLL_MS = 5;
const RSS_SAMPLE_MS = 50;
const MiB = 1024 * 1024;

interface Options {
  host: string;
  port: number;
  to: string;
  mbox: string | null;
  mailboxes: number;
  count: number;
  size: number;
  connections: number;
  timeoutSeconds: number;
  pid: number | null;
  fsyncDir: string | null;
  pipelining: boolean;
  startServer: boolean;
  nodeArgs: string[];
}

// ---------------------------------------------------------------------------
// Arguments

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '2525' },
      to: { type: 'string', default: 'jjordan@localhost' },
      mbox: { type: 'string' },
      mailboxes: { type: 'string', default: '1' },
      count: { type: 'string', default: '5000' },
      size: { type: 'string', default: '5k' },
      connections: { type: 'string', default: '10' },
      timeout: { type: 'string', default: '300' },
      pid: { type: 'string' },
      'fsync-dir': { type: 'string' },
      pipelining: { type: 'boolean', default: false },
      'start-server': { type: 'boolean', default: false },
      'node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const to = values.to;
  if (!/^[^\s<>@]+@[^\s<>@]+$/.test(to)) throw new UsageError(`--to must be local@domain, not ${JSON.stringify(to)}`);
  return {
    host: values.host,
    port: integer('--port', values.port, 1, 65535),
    to,
    mbox: values.mbox ?? null,
    mailboxes: integer('--mailboxes', values.mailboxes, 1, MAX_MAILBOXES),
    count: integer('--count', values.count, 1, MAX_COUNT),
    size: parseSize(values.size, MAX_SIZE),
    connections: integer('--connections', values.connections, 1, MAX_CONNECTIONS),
    timeoutSeconds: integer('--timeout', values.timeout, 1, 24 * 3600),
    pid: values.pid === undefined ? null : integer('--pid', values.pid, 1, 2 ** 31),
    fsyncDir: values['fsync-dir'] ?? null,
    pipelining: values.pipelining,
    startServer: values['start-server'],
    nodeArgs: values['node-arg'],
  };
}

// ---------------------------------------------------------------------------
// The run

/** The recipients: --to itself, or LOCAL1@DOMAIN .. LOCALN@DOMAIN with --mailboxes N. */
function recipientsOf(opts: Pick<Options, 'to' | 'mailboxes'>): string[] {
  if (opts.mailboxes === 1) return [opts.to];
  const [local, domain] = opts.to.split('@');
  return Array.from({ length: opts.mailboxes }, (_, i) => `${local}${i + 1}@${domain}`);
}

/** Their mbox files: --mbox, with {n} replaced by 1..N when there are several. */
function mboxPaths(opts: Options): string[] {
  if (opts.mailboxes === 1) return [opts.mbox!];
  return Array.from({ length: opts.mailboxes }, (_, i) => opts.mbox!.replaceAll('{n}', String(i + 1)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

async function run(opts: Options, server: StartedServer | null, shared: Shared): Promise<boolean> {
  const address = await loopbackAddress(opts.host);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const messages = new MessageFactory(runId, opts.to, opts.count, opts.size);
  const connections = Math.min(opts.connections, opts.count);

  const watcher = opts.mbox ? new MboxWatcherGroup(mboxPaths(opts), messages.tokenPrefix) : null;
  await watcher?.init();
  if (!watcher) console.error('bench-smtp: no --mbox given: timing ends at the last 250, not at the mbox');

  const memoryBefore = opts.pid ? readMemory(opts.pid) : null;
  if (opts.pid && !memoryBefore) console.error(`bench-smtp: cannot read /proc/${opts.pid}/status: no memory figures`);
  const peakReset = opts.pid && memoryBefore ? resetPeak(opts.pid) : false;
  let sampledPeak = memoryBefore?.rss ?? 0;

  const stats: SendStats = {
    accepted: 0,
    failed: 0,
    latenciesMs: [],
    errors: new Map(),
    errorSamples: new Map(),
    firstConnectAt: 0,
    lastAcceptAt: 0,
  };
  // CPU seconds per message: the figure other jobs on the machine disturb least.
  const cpuMeter = new CpuMeter(opts.pid);
  let sendersDone = false;
  let sendersEndAt = 0;
  const senders = Promise.all(
    Array.from({ length: connections }, () => sender({ ...opts, recipients: recipientsOf(opts) }, address, messages, shared, stats)),
  ).finally(() => {
    sendersDone = true;
    sendersEndAt = performance.now();
  });

  // Watch the mbox (and the server's RSS) until every accepted message is
  // visible, or time runs out. Bounded by the deadline.
  let lastSample = 0;
  let lastProgress = Date.now();
  const showProgress = process.stderr.isTTY === true;
  while (Date.now() < shared.deadline) {
    if (watcher) await watcher.poll();
    if (opts.pid && performance.now() - lastSample >= RSS_SAMPLE_MS) {
      lastSample = performance.now();
      sampledPeak = Math.max(sampledPeak, readMemory(opts.pid)?.rss ?? 0);
    }
    if (showProgress && Date.now() - lastProgress >= 1000) {
      lastProgress = Date.now();
      process.stderr.write(`\r  sent ${stats.accepted + stats.failed}/${opts.count}, in mbox ${watcher?.messages ?? '-'}   `);
    }
    if (sendersDone && (!watcher || watcher.problem || watcher.messages >= stats.accepted)) break;
    await sleep(POLL_MS);
  }
  if (showProgress) process.stderr.write('\r\x1b[K');
  await senders; // they stop by themselves at the deadline
  if (watcher) await watcher.poll();
  const cpu = cpuMeter.stop();

  const memoryAfter = opts.pid ? readMemory(opts.pid) : null;
  if (memoryAfter) sampledPeak = Math.max(sampledPeak, memoryAfter.rss);

  // The raw disk rate, measured after the run so the two do not compete.
  const fsyncDir = opts.fsyncDir ?? (opts.mbox ? dirname(mboxPaths(opts)[0]) : tmpdir());
  let fsync: FsyncResult | null = null;
  try {
    fsync = measureFsync(fsyncDir, opts.size, opts.count);
  } catch (err) {
    console.error(`bench-smtp: fsync measurement in ${fsyncDir} failed: ${(err as Error).message}`);
  }

  // Figures.
  const timedOut = Date.now() >= shared.deadline;
  const inMbox = watcher ? watcher.messages : null;
  const allVisible = watcher ? watcher.messages >= stats.accepted && !watcher.problem : true;
  // The end: the last message visible in the mbox, but never before its 250
  // (the server promises durability only with the 250). With nothing
  // accepted, the senders' own end, so the rates come out as 0.
  const lastAccept = stats.accepted > 0 ? stats.lastAcceptAt : sendersEndAt;
  const endAt = watcher && allVisible && stats.accepted > 0 ? Math.max(watcher.lastGrowthAt, lastAccept) : lastAccept;
  const seconds = (endAt - stats.firstConnectAt) / 1000;
  const sendSeconds = (lastAccept - stats.firstConnectAt) / 1000;
  const delivered = watcher ? Math.min(watcher.messages, stats.accepted) : stats.accepted;
  const msgPerSec = delivered / seconds;
  const mibPerSec = (delivered * opts.size) / MiB / seconds;
  const latencies = stats.latenciesMs.toSorted((a, b) => a - b);
  const errorCount = [...stats.errors.values()].reduce((a, b) => a + b, 0);
  const unsent = opts.count - stats.accepted - stats.failed;

  const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
  const signedMib = (bytes: number) => `${bytes >= 0 ? '+' : '-'}${(Math.abs(bytes) / MiB).toFixed(1)} MiB`;
  const peak = memoryAfter ? (peakReset ? memoryAfter.hwm : Math.max(sampledPeak, memoryBefore?.rss ?? 0)) : null;
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`  ${label.padEnd(18)}${text}`);
  lines.push(
    `bench-smtp: ${opts.count} x ${formatSize(opts.size)} over ${connections} connection(s) to ${address}:${opts.port}` +
      (server ? ` (this project's server, pid ${server.pid}, started by the benchmark)` : ''),
  );
  row('accepted', `${stats.accepted}/${opts.count} got 250 after the dot${unsent > 0 ? `, ${unsent} never sent` : ''}${timedOut ? ' (TIMED OUT)' : ''}`);
  if (watcher) {
    row(
      'in the mbox',
      `${watcher.messages} new message(s), ${watcher.tokens.size} distinct tokens, ${watcher.duplicateTokens} duplicate(s)` +
        (watcher.problem ? `; ${watcher.problem}` : ''),
    );
  }
  row(
    'throughput',
    `${msgPerSec.toFixed(1)} msg/s, ${mibPerSec.toFixed(2)} MiB/s ` +
      `(${seconds.toFixed(2)} s from first connect to last message ${watcher ? 'in the mbox' : 'accepted'})`,
  );
  if (watcher) row('', `${(stats.accepted / sendSeconds).toFixed(1)} msg/s counting to the last 250 (${sendSeconds.toFixed(2)} s)`);
  row(
    'latency',
    `p50 ${latencies.length ? percentile(latencies, 0.5).toFixed(1) : '-'} ms, p99 ${latencies.length ? percentile(latencies, 0.99).toFixed(1) : '-'} ms, ` +
      `max ${latencies.length ? latencies[latencies.length - 1].toFixed(1) : '-'} ms (MAIL to the 250 after the dot)`,
  );
  if (cpu.server !== null) {
    row(
      'server CPU',
      `${describeCpu(cpu.server, cpu.seconds)}: ${((1e6 * cpu.server) / Math.max(1, stats.accepted)).toFixed(0)} us per message; ` +
        `this client ${describeCpu(cpu.client, cpu.seconds)}` +
        (cpu.others === null ? '' : `, other processes ${describeCpu(cpu.others, cpu.seconds)}`),
    );
  }
  row('errors', errorCount === 0 ? '0' : `${errorCount}: ${[...stats.errors].map(([k, v]) => `${k} x${v}`).join(', ')}`);
  for (const [key, sample] of stats.errorSamples) row('', `${key}: ${sample}`);
  if (memoryBefore && memoryAfter && peak !== null) {
    row(
      'server memory',
      `peak RSS (VmHWM) ${mib(memoryAfter.hwm)}; RSS before ${mib(memoryBefore.rss)}, after ${mib(memoryAfter.rss)}`,
    );
    row(
      'RSS growth',
      `peak ${signedMib(peak - memoryBefore.rss)} over the RSS before, end ${signedMib(memoryAfter.rss - memoryBefore.rss)}` +
        (peakReset ? ' (VmHWM reset at the start)' : ` (VmHWM not resettable: peak from ${RSS_SAMPLE_MS} ms samples)`),
    );
  }
  if (fsync) {
    row(
      'raw disk',
      `${fsync.appendsPerSec.toFixed(1)} fsync'd appends/s, ${fsync.mibPerSec.toFixed(2)} MiB/s ` +
        `(${fsync.appends} x ${formatSize(opts.size)} in ${fsync.seconds.toFixed(2)} s, one writer, p50 ${fsync.p50Ms.toFixed(2)} ms, in ${fsync.dir})`,
    );
    row('group commit', `server / raw fsync rate = ${(msgPerSec / fsync.appendsPerSec).toFixed(2)}x (above 1: deliveries share fsyncs)`);
  }
  console.log(lines.join('\n'));

  console.log(
    JSON.stringify({
      bench: 'smtp',
      date: new Date().toISOString(),
      node: process.version,
      target: `${address}:${opts.port}`,
      server: server ? 'started' : 'external',
      count: opts.count,
      size: opts.size,
      connections,
      pipelining: opts.pipelining,
      accepted: stats.accepted,
      failed: stats.failed,
      unsent,
      timedOut,
      inMbox,
      distinctTokens: watcher ? watcher.tokens.size : null,
      duplicateTokens: watcher ? watcher.duplicateTokens : null,
      seconds: round(seconds, 3),
      msgPerSec: round(msgPerSec, 1),
      mibPerSec: round(mibPerSec),
      sendSeconds: round(sendSeconds, 3),
      latencyMs: {
        p50: round(percentile(latencies, 0.5)),
        p99: round(percentile(latencies, 0.99)),
        max: round(latencies.at(-1) ?? null),
      },
      errors: Object.fromEntries(stats.errors),
      serverCpuUsPerMessage: cpu.server === null ? null : round((1e6 * cpu.server) / Math.max(1, stats.accepted), 0),
      otherCpuSeconds: round(cpu.others, 2),
      memory:
        memoryBefore && memoryAfter && peak !== null
          ? {
              peakHwmMiB: round(memoryAfter.hwm / MiB, 1),
              rssBeforeMiB: round(memoryBefore.rss / MiB, 1),
              rssAfterMiB: round(memoryAfter.rss / MiB, 1),
              peakGrowthMiB: round((peak - memoryBefore.rss) / MiB, 1),
              endGrowthMiB: round((memoryAfter.rss - memoryBefore.rss) / MiB, 1),
              hwmReset: peakReset,
            }
          : null,
      fsync: fsync
        ? {
            dir: fsync.dir,
            appends: fsync.appends,
            appendsPerSec: round(fsync.appendsPerSec, 1),
            mibPerSec: round(fsync.mibPerSec),
            p50Ms: round(fsync.p50Ms),
            p99Ms: round(fsync.p99Ms),
          }
        : null,
      groupCommitFactor: fsync ? round(msgPerSec / fsync.appendsPerSec) : null,
    }),
  );
  return stats.accepted === opts.count && errorCount === 0 && allVisible && (!watcher || watcher.duplicateTokens === 0);
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`bench-smtp: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const shared: Shared = { next: 0, deadline: Date.now() + opts.timeoutSeconds * 1000 };
  // Ctrl-C: end the run at once; the finally below still stops the server.
  process.once('SIGINT', () => {
    shared.deadline = Date.now();
    console.error('bench-smtp: interrupted');
  });

  let server: StartedServer | null = null;
  try {
    if (opts.startServer) {
      await loopbackAddress(opts.host);
      const [, domain] = opts.to.split('@');
      const accounts = recipientsOf(opts).map((address) => address.split('@')[0]);
      server = await startProjectServer({
        name: 'bench-smtp',
        listener: 'smtp',
        account: accounts[0],
        moreAccounts: accounts.slice(1),
        host: opts.host,
        parentDir: opts.fsyncDir ?? tmpdir(),
        nodeArgs: opts.nodeArgs,
        settings: smtpSettings(domain, opts.connections, opts.size),
      });
      // LOCAL1's INBOX with its account directory renamed LOCAL{n}.
      const first = server.mboxPathOf(accounts[0]);
      const mbox = opts.mailboxes === 1 ? first : join(dirname(dirname(first)), `${accounts[0].slice(0, -1)}{n}`, basename(first));
      opts = { ...opts, port: server.port, mbox, pid: server.pid };
    }
    const ok = await run(opts, server, shared);
    if (!ok && server) console.error(`--- server log (last lines) ---\n${await server.logTail()}`);
    return ok ? 0 : 1;
  } catch (err) {
    return failed('bench-smtp', err);
  } finally {
    await server?.stop();
  }
}

process.exitCode = await main();
