// A small board's budget, every figure in one run: memory at rest and under
// load, growth over many deliveries, and the POP3 and SMTP rates, for this
// checkout and, side by side, an older one (--before) and Dovecot/Postfix
// (--compare), on the same machine in the same run.
//
//   node scripts/bench-budget.ts
//   node scripts/bench-budget.ts --before /tmp/old-checkout --compare
//   node scripts/bench-budget.ts --only rest,burst --repeat 1
//   node scripts/bench-budget.ts --only smtp --floor
//
// The figures (the rows of the table it prints):
//  - rest: RSS of the server and of its relay 3 s after start, no traffic,
//    started as package.json's start command starts it (cold: the first
//    start, before the compile cache exists; warm: any later start);
//  - growth: RSS (and the V8 heap) after 10%, 50% and 100% of --growth
//    deliveries of 1 KiB over 10 connections, and the growth per message
//    between 10% and 100%;
//  - burst: what the first burst of 8 logins (8 scrypt checks) adds;
//  - idle: RSS per logged-in, idle POP3 session (--sessions of them, after
//    20 that came and went, so that one-time costs are not counted);
//  - pop3: RETR of 5,000 messages of 5.4 KB, one command at a time and
//    pipelined (scripts/bench-pop3.ts), and the same again in a new session:
//    the first download after a start runs much of this server's code before
//    V8 has optimized it, the second shows what it does once warm;
//  - smtp: 5,000 messages of 5 KB over 10 connections into one mbox and
//    into 10 mboxes (scripts/bench-smtp.ts).
// With --floor, each row that is not met also gets what bounds it: at rest,
// node alone with the start command's options and the server's modules
// imported with nothing started; for POP3, the least POP3 server Node can
// run with the same client (scripts/lib/floor-pop3.ts: each message read
// from the mbox, checked, converted and sent as this server does), and the
// same on this project's shared protocol layer (its --layer: the line
// limits, deadlines, back-pressure and command table every protocol of the
// server runs on); for SMTP,
// three columns from scripts/lib/floor-smtp.ts, the least SMTP receiver Node
// can run with the same client: storing without an fsync (nothing durable:
// what no server can pass on this machine with this client); storing with
// group commit and an fsync per batch; and storing with this server's
// guarantees (also a dot-lock and a durable record before each batch).
// Every floor runs with the start command's environment and Node options,
// as the server does, so that the two differ only in the code they run.
// Each rate and memory figure is taken --repeat times (default 2) and all
// are printed, so the noise of a shared machine shows; the growth run is
// long and is taken once. Columns are measured one after the other, each
// with all its repetitions; with --interleave the repetitions are taken in
// rounds instead (this server, the one before, Dovecot and Postfix, the
// floors, then all again), so that a drift of the machine's speed within
// the run falls on every column alike and their ratios stay fair. Rates come with the server's CPU per message,
// which other jobs on the machine disturb less than the rates.
//
// Safe by construction: loopback only, bounded in count and time
// (--timeout), temporary directories removed, reference servers stopped.
// The parts: scripts/lib/budget-phases.ts (the memory phases),
// reference-servers.ts (Dovecot and Postfix), floor-pop3.ts and floor-smtp.ts (the floors),
// budget-report.ts (the table).

import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { createServer } from 'node:net';
import { UsageError, failed, integer, loopbackAddress } from './lib/args.ts';
import { PROJECT_ROOT, startCommand } from './lib/bench-server.ts';
import { WARM_UP_SESSIONS, burstPhase, growthPhase, idlePhase, measureLogins, restFloorPhase, restPhase, warmUp } from './lib/budget-phases.ts';
import type { PhaseContext } from './lib/budget-phases.ts';
import { startDovecot, startPostfix } from './lib/reference-servers.ts';
import type { ReferenceServer } from './lib/reference-servers.ts';
import { treeMemory } from './lib/proc-tree.ts';
import { mergeColumns, printReport } from './lib/budget-report.ts';
import type { Column, Figures } from './lib/budget-report.ts';

const run = promisify(execFile);
const USAGE = `usage: node scripts/bench-budget.ts [options]
  --before DIR        also measure the checkout in DIR (an older commit), its own start command
  --compare           also measure Dovecot (POP3) and Postfix (SMTP), as root (apt-get install dovecot-pop3d postfix)
  --floor             also measure the floors: Node alone and the modules imported (rest),
                      the least Node POP3 server and SMTP receiver (scripts/lib/floor-*.ts)
  --only LIST         phases, comma-separated: rest,growth,burst,idle,pop3,smtp (default: all)
  --repeat R          times each figure is taken, growth aside (default 2)
  --interleave        take the repetitions in rounds, every column once a round
  --growth N          deliveries in the growth run (default 200000)
  --sessions N        idle POP3 sessions (default 300)
  --host H            loopback address (default 127.0.0.1)
  --dir DIR           where the temporary data directories go (default: the temp dir)
  --timeout SECONDS   bound on the whole run (default 7200)`;

const PHASES = ['rest', 'growth', 'burst', 'idle', 'pop3', 'smtp'] as const;
type Phase = (typeof PHASES)[number];
const MiB = 1024 * 1024;

interface Options {
  before: string | null;
  compare: boolean;
  floor: boolean;
  only: Set<Phase>;
  repeat: number;
  interleave: boolean;
  growth: number;
  sessions: number;
  host: string;
  dir: string;
  timeoutSeconds: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      before: { type: 'string' },
      compare: { type: 'boolean', default: false },
      floor: { type: 'boolean', default: false },
      only: { type: 'string', default: PHASES.join(',') },
      repeat: { type: 'string', default: '2' },
      interleave: { type: 'boolean', default: false },
      growth: { type: 'string', default: '200000' },
      sessions: { type: 'string', default: '300' },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string', default: tmpdir() },
      timeout: { type: 'string', default: '7200' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = new Set(values.only.split(',').map((p) => p.trim()));
  for (const phase of only) if (!(PHASES as readonly string[]).includes(phase)) throw new UsageError(`--only: unknown phase ${phase}`);
  return {
    before: values.before ? resolve(values.before) : null,
    compare: values.compare,
    floor: values.floor,
    only: only as Set<Phase>,
    repeat: integer('--repeat', values.repeat, 1, 10),
    interleave: values.interleave,
    growth: integer('--growth', values.growth, 1000, 10_000_000),
    sessions: integer('--sessions', values.sessions, 1, 2000),
    host: values.host,
    dir: resolve(values.dir),
    timeoutSeconds: integer('--timeout', values.timeout, 60, 7 * 24 * 3600),
  };
}

/** Runs bench-pop3.ts or bench-smtp.ts for `projectRoot` and returns its JSON line. */
async function childBench(script: string, args: string[], projectRoot: string | null, timeoutMs: number): Promise<Record<string, any>> {
  const env = { ...process.env, ...(projectRoot ? { JJORDAN_BENCH_PROJECT: projectRoot } : {}) };
  const { stdout } = await run(process.execPath, [`scripts/${script}`, ...args], { cwd: PROJECT_ROOT, env, timeout: timeoutMs, maxBuffer: 16 * MiB }).catch(
    (err: { stdout?: string; stderr?: string; message: string }) => {
      // A run with errors still prints its figures; the report shows them.
      if (err.stdout?.includes('{"bench"')) return { stdout: err.stdout };
      throw new Error(`${script} ${args.join(' ')}: ${err.message}\n${err.stderr ?? ''}`);
    },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('{"bench"'));
  if (!line) throw new Error(`${script}: no JSON line in its output`);
  return JSON.parse(line);
}

function freePort(host: string): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

// ---------------------------------------------------------------------------
// One column: a checkout of this project

async function measureProject(projectRoot: string, label: string, opts: Options, deadline: number): Promise<Column> {
  const ctx: PhaseContext = { projectRoot, host: opts.host, parentDir: opts.dir, deadline };
  const figures: Figures = {};
  const times = Array.from({ length: opts.repeat }, (_, i) => i);
  const left = () => Math.max(1000, deadline - Date.now());
  const say = (what: string) => console.error(`bench-budget: ${label}: ${what}`);
  if (opts.only.has('rest')) {
    for (const _ of times) {
      say('at rest');
      const rest = await restPhase(ctx);
      (figures.rest ??= []).push(rest);
    }
  }
  if (opts.only.has('growth')) {
    say(`growth over ${opts.growth} deliveries`);
    figures.growth = await growthPhase(ctx, opts.growth, 1024);
  }
  if (opts.only.has('burst')) {
    for (const _ of times) {
      say('burst of logins');
      const burst = await burstPhase(ctx);
      (figures.burstMiB ??= []).push(burst.afterMiB - burst.beforeMiB);
    }
  }
  if (opts.only.has('idle')) {
    for (const _ of times) {
      say(`${opts.sessions} idle POP3 sessions`);
      const idle = await idlePhase(ctx, opts.sessions);
      (figures.idleKiB ??= []).push(((idle.afterMiB - idle.beforeMiB) * 1024) / opts.sessions);
    }
  }
  if (opts.only.has('pop3')) {
    for (const pipelining of [false, true]) {
      for (const _ of times) {
        say(`POP3 RETR of 5,000, ${pipelining ? 'pipelined' : 'one at a time'}`);
        const json = await childBench('bench-pop3.ts', ['--start-server', '--big-fill', '0', '--count-sessions', '2', '--downloads', '2', '--dir', opts.dir, ...(pipelining ? ['--pipelining'] : [])], projectRoot, left());
        recordPop3(figures, pipelining, json);
      }
    }
  }
  if (opts.only.has('smtp')) {
    for (const mailboxes of [1, 10]) {
      for (const _ of times) {
        say(`SMTP 5,000 x 5 KB into ${mailboxes} mbox(es)`);
        const args = ['--start-server', '--count', '5000', '--size', '5k', '--connections', '10', '--mailboxes', String(mailboxes), '--fsync-dir', opts.dir];
        const json = await childBench('bench-smtp.ts', args, projectRoot, left());
        (figures[mailboxes === 1 ? 'smtpOne' : 'smtpTen'] ??= []).push(smtpFigure(json));
      }
    }
  }
  return { label, figures };
}

function pop3Figure(dl: Record<string, any> | undefined) {
  return { perSec: dl?.msgPerSec ?? 0, cpuUs: dl?.cpu?.server != null && dl.retrieved ? (1e6 * dl.cpu.server) / dl.retrieved : null, others: dl?.cpu?.others ?? null, seconds: dl?.cpu?.seconds ?? null };
}

/** A POP3 download's figures: the first (the target's) and the same again in a new session (code warm). */
function recordPop3(figures: Figures, pipelining: boolean, json: Record<string, any>): void {
  const phase = json.phases?.[0];
  (figures[pipelining ? 'pop3Pipelined' : 'pop3Serial'] ??= []).push(pop3Figure(phase?.download));
  if (phase?.laterDownloads?.[0]) (figures[pipelining ? 'pop3PipelinedAgain' : 'pop3SerialAgain'] ??= []).push(pop3Figure(phase.laterDownloads[0]));
}

function smtpFigure(json: Record<string, any>) {
  return { perSec: json.msgPerSec ?? 0, cpuUs: json.serverCpuUsPerMessage ?? null, others: json.otherCpuSeconds ?? null, seconds: json.seconds ?? null };
}

// ---------------------------------------------------------------------------
// The reference column: Dovecot for POP3, Postfix for SMTP

async function measureReference(opts: Options, deadline: number): Promise<Column> {
  const figures: Figures = {};
  const times = Array.from({ length: opts.repeat }, (_, i) => i);
  const left = () => Math.max(1000, deadline - Date.now());
  const idleAccounts = Array.from({ length: opts.sessions }, (_, i) => `idle${i + 1}`);
  let dovecot: ReferenceServer | null = null;
  let postfix: ReferenceServer | null = null;
  try {
    if (opts.only.has('rest') || opts.only.has('idle') || opts.only.has('pop3')) {
      console.error('bench-budget: Dovecot');
      dovecot = await startDovecot(await freePort(opts.host), ['jjordan', ...idleAccounts]);
      await sleep(3000);
      figures.restDovecot = treeMemory(dovecot.rootPid, false).rss / MiB;
      if (opts.only.has('idle')) {
        for (const _ of times) {
          await warmUp(opts.host, dovecot.port, idleAccounts.slice(0, WARM_UP_SESSIONS), deadline);
          const { beforeMiB, afterMiB, clients } = await measureLogins(opts.host, dovecot.port, dovecot.rootPid, idleAccounts, deadline, 20);
          (figures.idleKiB ??= []).push(((afterMiB - beforeMiB) * 1024) / opts.sessions);
          await Promise.all(clients.map((c) => c.quit(deadline).catch(() => {})));
          await sleep(2000);
        }
      }
      if (opts.only.has('pop3')) {
        let filled = false;
        for (const pipelining of [false, true]) {
          for (const _ of times) {
            const args = ['--port', String(dovecot.port), '--user', 'jjordan', '--password', 'jjordan-pw', '--count-sessions', '2', '--downloads', '2', '--pid', String(dovecot.rootPid)];
            if (!filled) args.push('--mbox', dovecot.mboxPathOf('jjordan'), '--fill', '5000');
            filled = true;
            const json = await childBench('bench-pop3.ts', [...args, ...(pipelining ? ['--pipelining'] : [])], null, left());
            recordPop3(figures, pipelining, json);
          }
        }
      }
      await dovecot.stop();
      dovecot = null;
    }
    if (opts.only.has('rest') || opts.only.has('smtp')) {
      console.error('bench-budget: Postfix');
      const boxes = ['jjordan', ...Array.from({ length: 10 }, (_, i) => `jjordan${i + 1}`)];
      postfix = await startPostfix(await freePort(opts.host), boxes);
      await sleep(3000);
      figures.restPostfix = treeMemory(postfix.rootPid, false).rss / MiB;
      if (opts.only.has('smtp')) {
        for (const mailboxes of [1, 10]) {
          for (const _ of times) {
            const mbox = mailboxes === 1 ? postfix.mboxPathOf('jjordan') : postfix.mboxPathOf('jjordan{n}');
            const args = ['--port', String(postfix.port), '--to', 'jjordan@localhost', '--mbox', mbox, '--mailboxes', String(mailboxes), '--pid', String(postfix.rootPid)];
            const json = await childBench('bench-smtp.ts', [...args, '--count', '5000', '--size', '5k', '--connections', '10'], null, left());
            (figures[mailboxes === 1 ? 'smtpOne' : 'smtpTen'] ??= []).push(smtpFigure(json));
          }
        }
      }
    }
  } finally {
    await dovecot?.stop();
    await postfix?.stop();
  }
  return { label: 'Dovecot 2.3 / Postfix 3.7', figures };
}

// ---------------------------------------------------------------------------
// The floor columns: the least POP3 server and SMTP receiver in Node, with the same clients

/**
 * Starts scripts/lib/floor-*.ts on a free port; its first line of output
 * says which. It runs with the start command's environment and Node options
 * (a small young generation costs a few percent of CPU), so that the floor
 * and the server differ only in the code they run.
 */
async function startFloor(script: string, args: string[]): Promise<{ port: number; pid: number; stop: () => void }> {
  const { env, nodeArgs } = await startCommand(PROJECT_ROOT);
  const child = spawn(process.execPath, [...nodeArgs, `scripts/lib/${script}`, '0', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await Promise.race([once(child.stdout!, 'data'), once(child, 'exit').then(() => ['exited'])])) as [Buffer | string];
  const port = Number(/listening on [^ ]+:(\d+),/.exec(String(line))?.[1] ?? 0);
  if (port === 0) {
    child.kill('SIGKILL');
    throw new Error(`${script} did not start: ${String(line)}`);
  }
  return { port, pid: child.pid!, stop: () => child.kill('SIGTERM') };
}

/** POP3 against floor-pop3.ts (with `layer`, on the shared protocol layer): its own mbox, filled by the first run as Dovecot's is. */
async function measurePop3Floor(opts: Options, deadline: number, layer: boolean): Promise<Column> {
  const label = layer ? 'floor: POP3 on the shared layer' : 'floor: POP3';
  const figures: Figures = {};
  const left = () => Math.max(1000, deadline - Date.now());
  const dir = await mkdtemp(join(opts.dir, 'bench-floor-'));
  const mbox = join(dir, 'jjordan');
  await writeFile(mbox, '');
  const floor = await startFloor('floor-pop3.ts', [mbox, ...(layer ? ['--layer'] : [])]);
  try {
    let filled = false;
    for (const pipelining of [false, true]) {
      for (let i = 0; i < opts.repeat; i++) {
        console.error(`bench-budget: ${label}: RETR of 5,000, ${pipelining ? 'pipelined' : 'one at a time'}`);
        const args = ['--port', String(floor.port), '--user', 'jjordan', '--password', 'any', '--count-sessions', '2', '--downloads', '2', '--pid', String(floor.pid)];
        if (!filled) args.push('--mbox', mbox, '--fill', '5000');
        filled = true;
        const json = await childBench('bench-pop3.ts', [...args, ...(pipelining ? ['--pipelining'] : [])], null, left());
        recordPop3(figures, pipelining, json);
      }
    }
  } finally {
    floor.stop();
    await rm(dir, { recursive: true, force: true });
  }
  return { label, figures };
}

/**
 * The floors, each doing a little more: the protocol and a write, no fsync;
 * storing with an fsync per batch; storing with everything this server
 * guarantees (a dot-lock and a durable record before each batch: issue 9's
 * crash safety).
 */
const FLOORS = [
  { label: 'floor: no fsync', flags: ['--no-fsync'] },
  { label: 'floor: + fsync', flags: [] },
  { label: 'floor: + lock, record', flags: ['--record', '--lock'] },
] as const;

async function measureRestFloor(opts: Options, deadline: number): Promise<Column> {
  const ctx: PhaseContext = { projectRoot: PROJECT_ROOT, host: opts.host, parentDir: opts.dir, deadline };
  const restFloor = [];
  for (let i = 0; i < opts.repeat; i++) {
    console.error('bench-budget: floor: node alone, then the modules imported');
    restFloor.push(await restFloorPhase(ctx));
  }
  return { label: 'floor: start command', figures: { restFloor } };
}

async function measureFloor(floor: (typeof FLOORS)[number], opts: Options, deadline: number): Promise<Column> {
  const figures: Figures = {};
  const left = () => Math.max(1000, deadline - Date.now());
  for (const mailboxes of [1, 10]) {
    for (let i = 0; i < opts.repeat; i++) {
      console.error(`bench-budget: ${floor.label}: SMTP 5,000 x 5 KB into ${mailboxes} mbox(es)`);
      const dir = await mkdtemp(join(opts.dir, 'bench-floor-'));
      const server = await startFloor('floor-smtp.ts', [dir, ...floor.flags]).catch(async (err: Error) => {
        await rm(dir, { recursive: true, force: true });
        throw err;
      });
      try {
        const boxes = mailboxes === 1 ? ['jjordan'] : Array.from({ length: 10 }, (_, n) => `jjordan${n + 1}`);
        for (const box of boxes) await writeFile(join(dir, box), ''); // the watcher reads from the start
        const mbox = join(dir, mailboxes === 1 ? 'jjordan' : 'jjordan{n}');
        const args = ['--port', String(server.port), '--to', 'jjordan@localhost', '--mbox', mbox, '--mailboxes', String(mailboxes), '--pid', String(server.pid)];
        const json = await childBench('bench-smtp.ts', [...args, '--count', '5000', '--size', '5k', '--connections', '10', '--fsync-dir', opts.dir], null, left());
        (figures[mailboxes === 1 ? 'smtpOne' : 'smtpTen'] ??= []).push(smtpFigure(json));
      } finally {
        server.stop();
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
  return { label: floor.label, figures };
}

/** Every column once, in the report's order. */
async function measureColumns(opts: Options, deadline: number): Promise<Column[]> {
  const columns: Column[] = [];
  if (opts.before) columns.push(await measureProject(opts.before, 'before', opts, deadline));
  columns.push(await measureProject(PROJECT_ROOT, 'after', opts, deadline));
  if (opts.compare) columns.push(await measureReference(opts, deadline));
  if (opts.floor && opts.only.has('rest')) columns.push(await measureRestFloor(opts, deadline));
  // (In this order: budget-report.ts takes the last POP3 floor as the one on this server's protocol layer.)
  if (opts.floor && opts.only.has('pop3')) for (const layer of [false, true]) columns.push(await measurePop3Floor(opts, deadline, layer));
  if (opts.floor && opts.only.has('smtp')) for (const floor of FLOORS) columns.push(await measureFloor(floor, opts, deadline));
  return columns;
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
    await loopbackAddress(opts.host);
  } catch (err) {
    console.error(`bench-budget: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  try {
    let columns: Column[] = [];
    // With --interleave, `repeat` rounds of one repetition each; the growth run in the first only.
    const rounds = opts.interleave ? opts.repeat : 1;
    for (let round = 0; round < rounds; round++) {
      const only = new Set([...opts.only].filter((phase) => round === 0 || phase !== 'growth'));
      const pass = opts.interleave ? { ...opts, repeat: 1, only } : opts;
      if (rounds > 1) console.error(`bench-budget: round ${round + 1} of ${rounds}`);
      columns = mergeColumns(columns, await measureColumns(pass, deadline));
    }
    printReport(columns, opts);
    return 0;
  } catch (err) {
    return failed('bench-budget', err);
  }
}

process.exitCode = await main();
