// POP3 download benchmark: how fast a POP3 server answers a big maildrop
// the first time and the times after, and how fast it hands over every
// message.
//
//   node scripts/bench-pop3.ts --start-server
//   node scripts/bench-pop3.ts --start-server --pipelining
//   node scripts/bench-pop3.ts --port 2110 --user jjordan --password secret
//   node scripts/bench-pop3.ts --port 2110 --mbox spool/mail/jjordan/INBOX --fill 5000
//
// What it measures:
//  1. Time to first answer: connect, greeting, USER/PASS (or AUTH PLAIN),
//     STAT, repeated --count-sessions times. The first login is the first
//     time the server sees the mailbox (with --start-server the mailbox is
//     filled before the server starts), so it includes whatever the server
//     must build, such as a side index; the later ones show what a mail
//     client polling every few minutes costs. The password check is part of
//     every login; for this project's server its cost (scrypt) is timed on
//     its own, to tell it apart.
//  2. Downloading: one more session sends LIST, UIDL, and RETR for every
//     message, one at a time or, with --pipelining and a server that lists
//     PIPELINING in CAPA (RFC 2449 6.6), in a window of --window commands
//     in flight. Reported: messages/s and MB/s (1 MB = 10^6 bytes; the
//     messages' octets, and all bytes received besides), and every RETR's
//     octet count checked against the size LIST gave for it, and, for the
//     messages this run filled in, that RETR n returned message n. With
//     --downloads D, D-1 more sessions download the same again: a server
//     that compiles its code as it runs (Node's V8) shows there what it
//     does once warm, beside the figure of its first download.
//  3. With --start-server, a second phase on a fresh server: a maildrop of
//     --big-fill small messages (50,000 x 1 KiB by default), time to first
//     answer only.
//
// Targets from the issue, for 5,000 messages of 5.4 KB (27 MB): first STAT
// <= 0.5 s, later ones <= 10 ms, RETR of all >= 4,000 messages/s. They are
// checked in the report of the first phase.
//
// Safe by construction: loopback targets only, every loop bounded in count
// and time (--timeout), only Node's built-in modules (and, to fill a
// maildrop and to run this project's server, this project's own code).
// This file reads the options, runs and reports; scripts/lib/ holds the
// parts: the self-contained POP3 client (pop3-client.ts, so any server can
// be measured), the timed sessions (pop3-session.ts), the phases and their
// JSON form (pop3-phases.ts), the maildrop filler (mbox-fill.ts), the
// password check's cost (scrypt-cost.ts), the CPU figures (cpu-meter.ts),
// the checks on option values (args.ts) and, for --start-server, this
// project's own server (bench-server.ts).

import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError, failed, integer, loopbackAddress, parseSize } from './lib/args.ts';
import { describeCpu } from './lib/cpu-meter.ts';
import type { CpuUse } from './lib/cpu-meter.ts';
import { formatSize, round } from './lib/format.ts';
import { median, readMemory } from './lib/measure.ts';
import { clean, fillPhase, laterSessions, phaseJson, runSessions, startedPhase } from './lib/pop3-phases.ts';
import type { PhaseOptions, PhaseResult, PhaseSpec } from './lib/pop3-phases.ts';
import { retrRate } from './lib/pop3-session.ts';
import type { Clock, LoginTiming, Target } from './lib/pop3-session.ts';
import { SCRYPT_RUNS } from './lib/scrypt-cost.ts';
import type { ScryptCost } from './lib/scrypt-cost.ts';

const USAGE = `usage: node scripts/bench-pop3.ts [options]
  --host H              server address, loopback only (default 127.0.0.1)
  --port P              POP3 port (default 2110, or 2995 with --tls)
  --user NAME           account to log in as (default jjordan)
  --password PW         its password (default secret)
  --auth user|plain     USER/PASS (default) or AUTH PLAIN (RFC 5034)
  --tls                 implicit TLS (RFC 8314), certificate not verified
  --pipelining          RETR in a window when CAPA lists PIPELINING (else one at a time)
  --window W            RETR commands in flight with --pipelining (default 16)
  --mbox FILE           the account's maildrop (mbox), for --fill
  --fill N              append N messages to the maildrop before the run
                        (default 0; 5000 with --start-server)
  --size S              octets per filled message: 5000, 5.4k, 1m (default 5.4k; k/m = 1024-based)
  --count-sessions K    login+STAT sessions: the first, then K-1 later ones (default 4)
  --downloads D         download sessions: the first, then D-1 more, the same again (default 1)
  --first-answer-only   only the login+STAT sessions: no LIST, UIDL, RETR
  --timeout SECONDS     bound on the whole run (default 900)
  --start-server        run this project's server on a fresh data dir, the maildrop
                        filled before it starts (fills in port and mbox)
  --big-fill N          with --start-server: a second phase on a fresh server with N
                        messages, login+STAT only (default 50000; 0: no second phase)
  --big-size S          octets per message of the second phase (default 1k)
  --dir DIR             where --start-server makes its data dir (default: the temp dir)
  --pid PID             an external server's process, for its peak RSS
  --node-arg=ARG        extra node option for the started server, repeatable
                        (e.g. --node-arg=--cpu-prof --node-arg=--cpu-prof-dir=/tmp/prof)`;

const MAX_MESSAGES = 1_000_000;
const MAX_SIZE = 64 * 1024 * 1024;
const MAX_WINDOW = 1000;
const MAX_SESSIONS = 1000;
const MiB = 1024 * 1024;
const MB = 1_000_000;
// The issue's targets (5,000 x 5.4 KB).
const TARGET_FIRST_MS = 500;
const TARGET_LATER_MS = 10;
const TARGET_RETR_PER_SEC = 4000;
/** Other processes busier than this share of the machine make the figures suspect. */
const NOISY_SHARE = 0.1;

/** The phases' options (user, password, auth, tls, pipelining, window, sessions, dir, nodeArgs) and the rest. */
interface Options extends PhaseOptions {
  host: string;
  port: number;
  mbox: string | null;
  fill: number;
  size: number;
  firstAnswerOnly: boolean;
  timeoutSeconds: number;
  startServer: boolean;
  bigFill: number;
  bigSize: number;
  pid: number | null;
}

// ---------------------------------------------------------------------------
// Arguments

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      user: { type: 'string', default: 'jjordan' },
      password: { type: 'string', default: 'secret' },
      auth: { type: 'string', default: 'user' },
      tls: { type: 'boolean', default: false },
      pipelining: { type: 'boolean', default: false },
      window: { type: 'string', default: '16' },
      mbox: { type: 'string' },
      fill: { type: 'string' },
      size: { type: 'string', default: '5.4k' },
      'count-sessions': { type: 'string', default: '4' },
      downloads: { type: 'string', default: '1' },
      'first-answer-only': { type: 'boolean', default: false },
      timeout: { type: 'string', default: '900' },
      'start-server': { type: 'boolean', default: false },
      'big-fill': { type: 'string', default: '50000' },
      'big-size': { type: 'string', default: '1k' },
      dir: { type: 'string' },
      pid: { type: 'string' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (values.auth !== 'user' && values.auth !== 'plain') throw new UsageError('--auth must be user or plain');
  if (/[\r\n\0]/.test(values.user + values.password)) throw new UsageError('--user and --password cannot hold CR, LF or NUL');
  const startServer = values['start-server'];
  const fill = integer('--fill', values.fill ?? (startServer ? '5000' : '0'), 0, MAX_MESSAGES);
  if (fill > 0 && !startServer && !values.mbox) throw new UsageError('--fill needs --mbox (or --start-server)');
  if (startServer && (values.port !== undefined || values.mbox !== undefined || values.pid !== undefined)) {
    throw new UsageError('--start-server picks the port, the mbox and the pid itself');
  }
  return {
    host: values.host,
    port: integer('--port', values.port ?? (values.tls ? '2995' : '2110'), 1, 65535),
    user: values.user,
    password: values.password,
    auth: values.auth,
    tls: values.tls,
    pipelining: values.pipelining,
    window: integer('--window', values.window, 1, MAX_WINDOW),
    mbox: values.mbox ?? null,
    fill,
    size: parseSize(values.size, MAX_SIZE),
    sessions: integer('--count-sessions', values['count-sessions'], 1, MAX_SESSIONS),
    downloads: integer('--downloads', values.downloads, 1, 10),
    firstAnswerOnly: values['first-answer-only'],
    timeoutSeconds: integer('--timeout', values.timeout, 1, 24 * 3600),
    startServer,
    bigFill: startServer ? integer('--big-fill', values['big-fill'], 0, MAX_MESSAGES) : 0,
    bigSize: parseSize(values['big-size'], MAX_SIZE),
    dir: values.dir ?? tmpdir(),
    pid: values.pid === undefined ? null : integer('--pid', values.pid, 1, 2 ** 31),
    nodeArgs: values['node-arg'],
  };
}

// ---------------------------------------------------------------------------
// Report

const ms = (n: number) => `${n.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

function reportPhase(result: PhaseResult, scrypt: ScryptCost | null, opts: Options, lines: string[]): void {
  const row = (label: string, text: string) => lines.push(`  ${label.padEnd(18)}${text}`);
  const { spec, fill, sessions, download: dl } = result;
  lines.push(
    `${spec.label}: ${spec.full ? 'login+STAT, LIST, UIDL, RETR of every message' : 'time to first answer (login+STAT) only'}`,
  );
  if (fill) {
    row(
      'filled',
      `${fill.messages} x ${formatSize(spec.size, true)}, ${(fill.bytes / MB).toFixed(1)} MB of mbox, in ${fill.seconds.toFixed(2)} s` +
        (opts.startServer ? ', before the server started' : ''),
    );
  }
  const split = (t: LoginTiming) =>
    `connect ${t.connectMs.toFixed(1)}, greeting ${t.greetingMs.toFixed(1)}, ` +
    `${t.userMs === null ? '' : `USER ${(t.userMs - t.greetingMs).toFixed(1)}, `}` +
    `${t.userMs === null ? 'AUTH' : 'PASS'} ${(t.loginMs - (t.userMs ?? t.greetingMs)).toFixed(1)}, STAT ${(t.statMs - t.loginMs).toFixed(1)} ms`;
  const first = sessions[0];
  if (first) {
    row('first login+STAT', `${ms(first.statMs)} from connect to the STAT +OK (${split(first)})`);
    row('', `STAT: ${first.messages} messages, ${first.octets} octets`);
    if (spec.targets) row('', `target <= ${TARGET_FIRST_MS} ms: ${verdict(first.statMs <= TARGET_FIRST_MS)}`);
  }
  const rest = laterSessions(result);
  if (rest.length > 0) {
    const totals = rest.map((t) => t.statMs);
    row(
      'later login+STAT',
      `median ${ms(median(totals))}, min ${ms(Math.min(...totals))}, max ${ms(Math.max(...totals))} over ${rest.length} session(s)`,
    );
    const mid = rest.toSorted((a, b) => a.statMs - b.statMs)[Math.floor((rest.length - 1) / 2)];
    row('', `median session: ${split(mid)}`);
    if (spec.targets) row('', `target <= ${TARGET_LATER_MS} ms: ${verdict(median(totals) <= TARGET_LATER_MS)}`);
    if (scrypt) row('', `of which the password check (scrypt, below) is about ${ms(Math.min(scrypt.ms, median(totals)))}`);
  }
  if (scrypt && first) {
    row(
      'password check',
      `scrypt ${scrypt.params} takes ${ms(scrypt.ms)} here (median of ${SCRYPT_RUNS}, timed in this process), ` +
        `part of every PASS/AUTH above`,
    );
  }
  if (dl) {
    if (result.downloadLogin) row('download login', `${ms(result.downloadLogin.statMs)} from connect to the STAT +OK`);
    row('LIST', `${ms(dl.listMs)} (${dl.listed} messages)`);
    row('UIDL', `${ms(dl.uidlMs)} (${dl.uids} ids, ${dl.uniqueUids} distinct)`);
    const perSec = retrRate(dl);
    if (dl.listed === 0) row('RETR all', 'no messages to retrieve');
    else row(
      'RETR all',
      `${dl.retrieved} messages in ${dl.retrSeconds.toFixed(3)} s: ${perSec.toFixed(0)} msg/s, ` +
        `${(dl.messageOctets / MB / dl.retrSeconds).toFixed(1)} MB/s of message octets ` +
        `(${(dl.wireBytes / MB / dl.retrSeconds).toFixed(1)} MB/s, ${(dl.wireBytes / MB).toFixed(1)} MB, received in all)`,
    );
    row(
      '',
      dl.pipelined
        ? `pipelined: ${dl.window} RETR in flight (the server lists PIPELINING)`
        : `one RETR at a time${dl.pipeliningOffered ? ' (the server lists PIPELINING; add --pipelining)' : ' (no PIPELINING in CAPA)'}`,
    );
    if (spec.targets) row('', `target >= ${TARGET_RETR_PER_SEC} msg/s: ${verdict(perSec >= TARGET_RETR_PER_SEC)}`);
    if (dl.cpu) row('CPU during RETR', describeUse(dl.cpu));
    for (const later of result.laterDownloads) {
      const cpuUs = later.cpu?.server != null && later.retrieved ? ` (server CPU ${((1e6 * later.cpu.server) / later.retrieved).toFixed(0)} us per message)` : '';
      row('the same again', `${later.retrieved} messages: ${retrRate(later).toFixed(0)} msg/s${cpuUs}, in a new session`);
    }
    row(
      'RETR sizes',
      dl.sizeMismatches === 0 && dl.refused === 0
        ? `all ${dl.retrieved} equal their LIST size`
        : `${dl.sizeMismatches} differ from LIST, ${dl.refused} refused`,
    );
    for (const sample of dl.mismatchSamples) row('', sample);
    if (dl.refusedSample) row('', dl.refusedSample);
    if (dl.bareLf > 0) row('', `${dl.bareLf} line(s) ended in a bare LF, not CRLF (RFC 1939 3)`);
    if (spec.fill > 0) {
      row(
        'RETR content',
        `${dl.seqChecked - dl.seqWrong}/${dl.seqChecked} filled messages came back as the message asked for` +
          (dl.unexpectedSizes > 0 ? `; ${dl.unexpectedSizes} LIST size(s) differ from --size ${spec.size}` : `; every LIST size = ${spec.size}`),
      );
    }
  }
  if (result.cpu) {
    row('CPU in the phase', describeUse(result.cpu));
    const othersShare = result.cpu.others === null ? null : result.cpu.others / (result.cpu.seconds * result.cpu.cores);
    if (othersShare !== null && othersShare > NOISY_SHARE && result.cpu.seconds >= 0.5) {
      row('', `WARNING: other processes kept ${(100 * othersShare).toFixed(0)}% of the machine busy: the figures above are unreliable`);
    }
  }
  if (result.serverPeakRss !== null) row('server memory', `peak RSS (VmHWM) ${(result.serverPeakRss / MiB).toFixed(1)} MiB`);
  for (const error of result.errors) row('ERROR', error);
}

/** "server 0.74 s (107% of one core), this client 0.41 s (59% ...), other processes 0.02 s (...)". */
function describeUse(cpu: CpuUse): string {
  const parts = [
    `server ${cpu.server === null ? 'unknown (no pid)' : describeCpu(cpu.server, cpu.seconds)}`,
    `this client ${describeCpu(cpu.client, cpu.seconds)}`,
  ];
  if (cpu.others !== null) parts.push(`other processes ${describeCpu(cpu.others, cpu.seconds)}`);
  return `${parts.join(', ')}; ${cpu.seconds.toFixed(2)} s on ${cpu.cores} cores`;
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`bench-pop3: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const clock: Clock = { deadline: Date.now() + opts.timeoutSeconds * 1000 };
  // Ctrl-C: end the run at once; the finally blocks still stop the server.
  process.once('SIGINT', () => {
    clock.deadline = Date.now();
    console.error('bench-pop3: interrupted');
  });

  try {
    const address = await loopbackAddress(opts.host);
    const results: PhaseResult[] = [];
    let scrypt: ScryptCost | null = null;
    let header: string;
    if (opts.startServer) {
      const specs: PhaseSpec[] = [
        { label: `phase 1: ${opts.fill} messages`, fill: opts.fill, size: opts.size, full: !opts.firstAnswerOnly, targets: true },
      ];
      if (opts.bigFill > 0) specs.push({ label: `phase 2: ${opts.bigFill} messages`, fill: opts.bigFill, size: opts.bigSize, full: false, targets: false });
      const pids: number[] = [];
      for (const spec of specs) {
        if (Date.now() >= clock.deadline) break;
        const phase = await startedPhase(spec, opts, address, clock);
        results.push(phase.result);
        scrypt ??= phase.scrypt;
        pids.push(phase.pid);
      }
      header = `this project's server, a fresh one per phase (pid ${pids.join(', ')}), started by the benchmark`;
    } else {
      const spec: PhaseSpec = { label: 'phase 1', fill: opts.fill, size: opts.size, full: !opts.firstAnswerOnly, targets: true };
      const fill = opts.mbox ? await fillPhase(opts.mbox, spec, opts.user, clock) : null;
      const target: Target = { address, port: opts.port, tls: opts.tls, user: opts.user, password: opts.password, auth: opts.auth };
      const measured = await runSessions(spec, target, opts, opts.pid, clock);
      results.push({ ...measured, fill, serverPeakRss: opts.pid ? (readMemory(opts.pid)?.hwm ?? null) : null });
      header = 'an external server';
    }

    const lines = [
      `bench-pop3: ${opts.startServer ? `${address} (port picked per phase)` : `${address}:${opts.port}`}${opts.tls ? ' over TLS' : ''}, ${opts.auth === 'user' ? 'USER/PASS' : 'AUTH PLAIN'}, ` +
        `${opts.pipelining ? `--pipelining (window ${opts.window})` : 'no pipelining'}; ${header}`,
    ];
    for (const result of results) reportPhase(result, scrypt, opts, lines);
    const timedOut = Date.now() >= clock.deadline;
    if (timedOut) lines.push(`  TIMED OUT after ${opts.timeoutSeconds} s (--timeout)`);
    console.log(lines.join('\n'));

    const first = results[0];
    const rest = first ? laterSessions(first).map((t) => t.statMs) : [];
    const dl = first?.download ?? null;
    console.log(
      JSON.stringify({
        bench: 'pop3',
        date: new Date().toISOString(),
        node: process.version,
        target: opts.startServer ? address : `${address}:${opts.port}`,
        server: opts.startServer ? 'started' : 'external',
        tls: opts.tls,
        auth: opts.auth,
        pipelining: opts.pipelining,
        window: opts.window,
        scryptMs: round(scrypt?.ms),
        phases: results.map(phaseJson),
        targets: {
          firstMs: { limit: TARGET_FIRST_MS, met: first?.sessions[0] ? first.sessions[0].statMs <= TARGET_FIRST_MS : null },
          laterMs: { limit: TARGET_LATER_MS, met: rest.length ? median(rest) <= TARGET_LATER_MS : null },
          retrPerSec: { limit: TARGET_RETR_PER_SEC, met: dl && dl.listed > 0 ? retrRate(dl) >= TARGET_RETR_PER_SEC : null },
        },
        timedOut,
      }),
    );
    return !timedOut && results.length > 0 && results.every(clean) ? 0 : 1;
  } catch (err) {
    return failed('bench-pop3', err);
  }
}

process.exitCode = await main();
