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
//     messages this run filled in, that RETR n returned message n.
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
// scripts/lib/ holds the parts: the self-contained POP3 client
// (pop3-client.ts, so any server can be measured), the maildrop filler
// (mbox-fill.ts) and the server starter (pop3-bench-server.ts).

import { randomBytes, scrypt } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { UsageError, integer, parseSize } from './lib/args.ts';
import { percentile, readMemory } from './lib/measure.ts';
import { CpuMeter, describeCpu } from './lib/cpu-meter.ts';
import type { CpuUse } from './lib/cpu-meter.ts';
import { fillMbox } from './lib/mbox-fill.ts';
import type { FillResult } from './lib/mbox-fill.ts';
import { Pop3Client, Pop3Error } from './lib/pop3-client.ts';
import type { Pop3Response } from './lib/pop3-client.ts';
import { preparePop3Server } from './lib/pop3-bench-server.ts';

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
const CONNECT_TIMEOUT_MS = 10_000;
const SCRYPT_RUNS = 3;
const MiB = 1024 * 1024;
const MB = 1_000_000;
// The issue's targets (5,000 x 5.4 KB).
const TARGET_FIRST_MS = 500;
const TARGET_LATER_MS = 10;
const TARGET_RETR_PER_SEC = 4000;
/** Other processes busier than this share of the machine make the figures suspect. */
const NOISY_SHARE = 0.1;

interface Options {
  host: string;
  port: number;
  user: string;
  password: string;
  auth: 'user' | 'plain';
  tls: boolean;
  pipelining: boolean;
  window: number;
  mbox: string | null;
  fill: number;
  size: number;
  sessions: number;
  firstAnswerOnly: boolean;
  timeoutSeconds: number;
  startServer: boolean;
  bigFill: number;
  bigSize: number;
  dir: string;
  pid: number | null;
  nodeArgs: string[];
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

/** Resolves `host` and insists that every address it names is loopback. */
async function loopbackAddress(host: string): Promise<string> {
  const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true });
  const isLoopback = (a: string) => /^127\./.test(a) || a === '::1' || /^::ffff:127\./i.test(a);
  if (addresses.length === 0 || !addresses.every((a) => isLoopback(a.address))) {
    throw new UsageError(`--host ${host} is not a loopback address; this benchmark only targets this machine`);
  }
  return addresses[0].address;
}

// ---------------------------------------------------------------------------
// Sessions

/** Mutable so Ctrl-C can end the run at once. */
interface Clock {
  deadline: number;
}

interface Target {
  address: string;
  port: number;
  tls: boolean;
  user: string;
  password: string;
  auth: 'user' | 'plain';
}

/** Milliseconds from the start of connect to each answer, and what STAT said. */
interface LoginTiming {
  connectMs: number; // TCP (and TLS) established
  greetingMs: number; // +OK greeting
  userMs: number | null; // +OK to USER (null with AUTH PLAIN)
  loginMs: number; // +OK to PASS or AUTH: password check and maildrop opened
  statMs: number; // +OK to STAT: the first answer about the mailbox
  messages: number;
  octets: number;
}

function expectOk(response: Pop3Response, what: string): Pop3Response {
  if (!response.ok || response.continuation) throw new Pop3Error(`${what} refused: ${response.continuation ? '+' : '-ERR'} ${response.text}`);
  return response;
}

/** Connect, greeting, log in, STAT: the time to first answer. */
async function loginAndStat(target: Target, clock: Clock): Promise<{ client: Pop3Client; timing: LoginTiming }> {
  const started = performance.now();
  const since = (at: number) => at - started;
  const client = await Pop3Client.open({ host: target.address, port: target.port, tls: target.tls, timeoutMs: CONNECT_TIMEOUT_MS });
  try {
    const connectMs = since(performance.now());
    const greeting = expectOk(await client.read(clock.deadline), 'greeting');
    let userMs: number | null = null;
    let login: Pop3Response;
    if (target.auth === 'user') {
      userMs = since(expectOk(await client.command(`USER ${target.user}`, clock.deadline), 'USER').at);
      login = await client.command(`PASS ${target.password}`, clock.deadline);
    } else {
      // RFC 4616: authzid NUL authcid NUL password; RFC 5034 4: initial response on the command line.
      const plain = Buffer.from(`\0${target.user}\0${target.password}`).toString('base64');
      login = await client.command(`AUTH PLAIN ${plain}`, clock.deadline);
      if (login.continuation) {
        client.answer(plain); // a server that ignores the initial response asks again
        login = await client.read(clock.deadline);
      }
    }
    const loginMs = since(expectOk(login, 'login').at);
    const stat = expectOk(await client.command('STAT', clock.deadline), 'STAT');
    const match = /^(\d+) (\d+)/.exec(stat.text);
    if (!match) throw new Pop3Error(`cannot read the STAT answer: ${stat.text}`);
    return {
      client,
      timing: {
        connectMs,
        greetingMs: since(greeting.at),
        userMs,
        loginMs,
        statMs: since(stat.at),
        messages: Number(match[1]),
        octets: Number(match[2]),
      },
    };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

interface DownloadResult {
  pipelined: boolean;
  pipeliningOffered: boolean;
  window: number;
  listMs: number;
  listed: number;
  uidlMs: number;
  uids: number;
  uniqueUids: number;
  retrieved: number;
  refused: number;
  refusedSample: string | null;
  messageOctets: number;
  wireBytes: number;
  retrSeconds: number;
  /** Where the CPU went during the RETRs. */
  cpu: CpuUse | null;
  /** RETR octet counts that differ from LIST (first few kept). */
  sizeMismatches: number;
  mismatchSamples: string[];
  /** Lines received with a bare LF (the octet count then differs). */
  bareLf: number;
  /** LIST sizes that differ from the size the messages were filled with. */
  unexpectedSizes: number;
  /** Of the messages filled in this run: how many were checked, how many were another message. */
  seqChecked: number;
  seqWrong: number;
}

/** LIST, UIDL, then RETR of every message, in the session `client` is logged into. */
async function download(
  client: Pop3Client,
  stat: LoginTiming,
  opts: { pipelining: boolean; window: number; filled: number; filledSize: number; pid: number | null },
  clock: Clock,
): Promise<DownloadResult> {
  // RFC 2449 5: CAPA is allowed after login too.
  const capa = await client.command('CAPA', clock.deadline, 'lines');
  const pipeliningOffered = capa.ok && (capa.lines ?? []).some((line) => /^PIPELINING\b/i.test(line));
  const window = opts.pipelining && pipeliningOffered ? opts.window : 1;

  let started = performance.now();
  const list = expectOk(await client.command('LIST', clock.deadline, 'lines'), 'LIST');
  const listMs = list.at - started;
  const sizes = new Map<number, number>();
  for (const line of list.lines!) {
    const match = /^(\d+) (\d+)/.exec(line);
    if (match) sizes.set(Number(match[1]), Number(match[2]));
  }

  started = performance.now();
  const uidl = expectOk(await client.command('UIDL', clock.deadline, 'lines'), 'UIDL');
  const uidlMs = uidl.at - started;
  const uids = uidl.lines!.map((line) => line.split(' ')[1] ?? '');

  // Messages this run filled in are the last `filled` ones (as long as
  // nothing else arrived meanwhile): message n carries X-Bench-Seq n - before.
  const before = stat.messages - opts.filled;
  const numbers = [...sizes.keys()];
  const result: DownloadResult = {
    pipelined: window > 1,
    pipeliningOffered,
    window,
    listMs,
    listed: sizes.size,
    uidlMs,
    uids: uids.length,
    uniqueUids: new Set(uids).size,
    retrieved: 0,
    refused: 0,
    refusedSample: null,
    messageOctets: 0,
    wireBytes: 0,
    retrSeconds: 0,
    cpu: null,
    sizeMismatches: 0,
    mismatchSamples: [],
    bareLf: 0,
    unexpectedSizes: 0,
    seqChecked: 0,
    seqWrong: 0,
  };
  if (opts.filled > 0) {
    for (const [n, size] of sizes) if (n > before && size !== opts.filledSize) result.unexpectedSizes++;
  }

  // RETR in a window: `window` commands in flight, one more sent as each
  // answer completes (window 1: one at a time). Bounded by the message count.
  const bytesBefore = client.bytesReceived;
  const meter = new CpuMeter(opts.pid);
  started = performance.now();
  let lastAt = started;
  let sent = 0;
  for (; sent < Math.min(window, numbers.length); sent++) client.send(`RETR ${numbers[sent]}`, 'count');
  for (let done = 0; done < numbers.length; done++) {
    const response = await client.read(clock.deadline);
    if (sent < numbers.length) client.send(`RETR ${numbers[sent++]}`, 'count');
    lastAt = response.at;
    const n = numbers[done];
    if (!response.ok) {
      result.refused++;
      result.refusedSample ??= `RETR ${n}: -ERR ${response.text}`;
      continue;
    }
    result.retrieved++;
    result.messageOctets += response.octets!;
    result.bareLf += response.bareLf!;
    if (response.octets !== sizes.get(n)) {
      result.sizeMismatches++;
      if (result.mismatchSamples.length < 5) result.mismatchSamples.push(`RETR ${n}: ${response.octets} octets, LIST said ${sizes.get(n)}`);
    }
    if (opts.filled > 0 && n > before) {
      result.seqChecked++;
      const seq = /^X-Bench-Seq: (\d+)\r?$/m.exec(response.head!.toString('latin1'));
      if (!seq || Number(seq[1]) !== n - before) result.seqWrong++;
    }
  }
  result.retrSeconds = (lastAt - started) / 1000;
  result.wireBytes = client.bytesReceived - bytesBefore;
  result.cpu = meter.stop();
  return result;
}

// ---------------------------------------------------------------------------
// Phases

interface PhaseSpec {
  label: string;
  fill: number;
  size: number;
  full: boolean;
  /** The issue's targets apply (the 5,000-message phase). */
  targets: boolean;
}

interface PhaseResult {
  spec: PhaseSpec;
  fill: FillResult | null;
  sessions: LoginTiming[];
  download: DownloadResult | null;
  downloadLogin: LoginTiming | null;
  errors: string[];
  serverPeakRss: number | null;
  /** Where the CPU went from the first connect to the end of the phase. */
  cpu: CpuUse | null;
}

/** What the sessions find; the caller adds the fill and the server's memory. */
type Measured = Omit<PhaseResult, 'fill' | 'serverPeakRss'>;

/** The login+STAT sessions, then (unless first-answer-only) the download session. */
async function runSessions(
  spec: PhaseSpec,
  target: Target,
  opts: Options,
  pid: number | null,
  clock: Clock,
): Promise<Measured> {
  const meter = new CpuMeter(pid);
  const result: Measured = { spec, sessions: [], download: null, downloadLogin: null, errors: [], cpu: null };
  try {
    await measureSessions(result, spec, target, opts, pid, clock);
  } finally {
    result.cpu = meter.stop();
  }
  return result;
}

async function measureSessions(
  result: Measured,
  spec: PhaseSpec,
  target: Target,
  opts: Options,
  pid: number | null,
  clock: Clock,
): Promise<void> {
  for (let i = 0; i < opts.sessions && Date.now() < clock.deadline; i++) {
    try {
      const { client, timing } = await loginAndStat(target, clock);
      result.sessions.push(timing);
      await client.quit(Math.min(clock.deadline, Date.now() + 10_000));
    } catch (err) {
      result.errors.push(`session ${i + 1}: ${(err as Error).message}`);
      if (i === 0) return; // the first login failing says enough
    }
  }
  if (!spec.full || Date.now() >= clock.deadline) return;
  try {
    const { client, timing } = await loginAndStat(target, clock);
    result.downloadLogin = timing;
    try {
      result.download = await download(client, timing, { pipelining: opts.pipelining, window: opts.window, filled: spec.fill, filledSize: spec.size, pid }, clock);
    } finally {
      await client.quit(Math.min(clock.deadline, Date.now() + 10_000));
    }
  } catch (err) {
    result.errors.push(`download session: ${(err as Error).message}`);
  }
}

async function fillPhase(mboxPath: string, spec: PhaseSpec, user: string, clock: Clock): Promise<FillResult | null> {
  if (spec.fill === 0) return null;
  console.error(`bench-pop3: filling ${mboxPath} with ${spec.fill} x ${formatSize(spec.size)}...`);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return fillMbox({ mboxPath, count: spec.fill, size: spec.size, runId, to: `${user}@localhost`, deadline: clock.deadline });
}

/** A phase on a fresh server of this project's: prepare, fill, start, measure, remove. */
async function startedPhase(spec: PhaseSpec, opts: Options, address: string, clock: Clock): Promise<{ result: PhaseResult; scrypt: ScryptCost | null; pid: number }> {
  const prepared = await preparePop3Server({
    account: opts.user,
    password: opts.password,
    host: address,
    tls: opts.tls,
    parentDir: opts.dir,
    nodeArgs: opts.nodeArgs,
  });
  try {
    const fill = await fillPhase(prepared.mboxPath, spec, opts.user, clock);
    const scrypt = await scryptCost(prepared.passwdPath, opts.user, opts.password);
    console.error(`bench-pop3: starting the server (${spec.label})...`);
    const server = await prepared.start();
    const target: Target = { address, port: server.port, tls: opts.tls, user: opts.user, password: opts.password, auth: opts.auth };
    const measured = await runSessions(spec, target, opts, server.pid, clock);
    const memory = readMemory(server.pid);
    if (measured.errors.length > 0) console.error(`--- server log (last lines) ---\n${await server.logTail()}`);
    return { result: { ...measured, fill, serverPeakRss: memory?.hwm ?? null }, scrypt, pid: server.pid };
  } finally {
    await prepared.remove();
  }
}

// ---------------------------------------------------------------------------
// The password check's share of a login

interface ScryptCost {
  params: string;
  ms: number;
}

/**
 * This project's server checks every login with scrypt, on purpose slow.
 * Timing the same scrypt here (the account's own parameters, from passwd)
 * tells how much of each login it is. Only an estimate: it runs in this
 * process, not the server's.
 */
async function scryptCost(passwdPath: string, user: string, password: string): Promise<ScryptCost | null> {
  const text = await readFile(passwdPath, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith(`${user}:`));
  const match = /^[^:]+:\$scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([^$]+)\$([^$\s]+)/.exec(line ?? '');
  if (!match) return null;
  const [ln, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (ln > 22 || r > 32 || p > 16) return null; // not worth the memory
  const salt = Buffer.from(match[4], 'base64');
  const length = Buffer.from(match[5], 'base64').length;
  const N = 2 ** ln;
  const times: number[] = [];
  for (let i = 0; i < SCRYPT_RUNS; i++) {
    const t = performance.now();
    await new Promise<void>((done, fail) =>
      scrypt(password, salt, length, { N, r, p, maxmem: 256 * N * r + MiB }, (err) => (err ? fail(err) : done())),
    );
    times.push(performance.now() - t);
  }
  return { params: `ln=${ln},r=${r},p=${p}`, ms: percentile(times.toSorted((a, b) => a - b), 0.5) };
}

// ---------------------------------------------------------------------------
// Report

function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % (MiB / 10) === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB (${bytes} B)`;
  return `${bytes} B`;
}

const ms = (n: number) => `${n.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');

function later(result: PhaseResult): LoginTiming[] {
  return result.sessions.slice(1);
}

function median(values: number[]): number {
  return percentile(values.toSorted((a, b) => a - b), 0.5);
}

function reportPhase(result: PhaseResult, scrypt: ScryptCost | null, opts: Options, lines: string[]): void {
  const row = (label: string, text: string) => lines.push(`  ${label.padEnd(18)}${text}`);
  const { spec, fill, sessions, download: dl } = result;
  lines.push(
    `${spec.label}: ${spec.full ? 'login+STAT, LIST, UIDL, RETR of every message' : 'time to first answer (login+STAT) only'}`,
  );
  if (fill) {
    row(
      'filled',
      `${fill.messages} x ${formatSize(spec.size)}, ${(fill.bytes / MB).toFixed(1)} MB of mbox, in ${fill.seconds.toFixed(2)} s` +
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
  const rest = later(result);
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

function retrRate(dl: DownloadResult): number {
  return dl.retrSeconds > 0 ? dl.retrieved / dl.retrSeconds : 0;
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

function cpuJson(cpu: CpuUse | null): Record<string, number | null> | null {
  const round = (n: number | null) => (n === null ? null : Number(n.toFixed(3)));
  return cpu ? { seconds: round(cpu.seconds), server: round(cpu.server), client: round(cpu.client), others: round(cpu.others), cores: cpu.cores } : null;
}

function phaseJson(result: PhaseResult): Record<string, unknown> {
  const round = (n: number | null | undefined, digits = 2) => (n === null || n === undefined || !Number.isFinite(n) ? null : Number(n.toFixed(digits)));
  const dl = result.download;
  const rest = later(result).map((t) => t.statMs);
  return {
    label: result.spec.label,
    fill: result.spec.fill,
    size: result.spec.size,
    fillSeconds: round(result.fill?.seconds, 3),
    mboxBytes: result.fill?.bytes ?? null,
    messages: result.sessions[0]?.messages ?? null,
    octets: result.sessions[0]?.octets ?? null,
    firstMs: round(result.sessions[0]?.statMs),
    laterMedianMs: rest.length ? round(median(rest)) : null,
    laterMaxMs: rest.length ? round(Math.max(...rest)) : null,
    sessions: result.sessions.map((t) => ({
      connectMs: round(t.connectMs),
      greetingMs: round(t.greetingMs),
      userMs: round(t.userMs),
      loginMs: round(t.loginMs),
      statMs: round(t.statMs),
    })),
    download: dl
      ? {
          pipelined: dl.pipelined,
          window: dl.window,
          listMs: round(dl.listMs),
          uidlMs: round(dl.uidlMs),
          uids: dl.uids,
          uniqueUids: dl.uniqueUids,
          retrieved: dl.retrieved,
          refused: dl.refused,
          retrSeconds: round(dl.retrSeconds, 3),
          cpu: cpuJson(dl.cpu),
          msgPerSec: round(retrRate(dl), 0),
          mbPerSec: round(dl.messageOctets / MB / dl.retrSeconds),
          messageOctets: dl.messageOctets,
          wireBytes: dl.wireBytes,
          sizeMismatches: dl.sizeMismatches,
          bareLf: dl.bareLf,
          seqChecked: dl.seqChecked,
          seqWrong: dl.seqWrong,
          unexpectedSizes: dl.unexpectedSizes,
        }
      : null,
    cpu: cpuJson(result.cpu),
    serverPeakRssMiB: result.serverPeakRss === null ? null : round(result.serverPeakRss / MiB, 1),
    errors: result.errors,
  };
}

/** True when the phase ran cleanly (targets aside). */
function clean(result: PhaseResult): boolean {
  const dl = result.download;
  const downloadOk = !dl || (dl.refused === 0 && dl.sizeMismatches === 0 && dl.seqWrong === 0 && dl.uniqueUids === dl.uids && dl.retrieved === dl.listed);
  return result.errors.length === 0 && result.sessions.length > 0 && downloadOk;
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
    const rest = first ? later(first).map((t) => t.statMs) : [];
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
        scryptMs: scrypt ? Number(scrypt.ms.toFixed(2)) : null,
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
    console.error(`bench-pop3: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}`);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.exitCode = await main();
