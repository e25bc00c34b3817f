// The memory phases of scripts/bench-budget.ts, each against a fresh server
// of one checkout (this one, or an older one for the "before" column):
//
//  - rest: RSS of the server and of its relay a few seconds after start,
//    with no traffic; the first start (no compile cache yet) and a later one;
//  - growth: N deliveries (200,000 by default) over 10 connections, with the
//    server's RSS and V8 heap at 10%, half way and the end;
//  - burst: RSS after the first burst of 8 logins (8 accounts, so 8 scrypt
//    checks), against RSS before it;
//  - idle: 300 logged-in POP3 sessions that do nothing, RSS per session.
//
// The rates (POP3 downloads, SMTP deliveries) come from bench-pop3.ts and
// bench-smtp.ts, run as child processes by bench-budget.ts.

import { spawn } from 'node:child_process';
import { scrypt, randomBytes } from 'node:crypto';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POP3_SETTINGS, prepareProjectServer, smtpSettings, startCommand } from './bench-server.ts';
import type { ServerOptions } from './bench-server.ts';
import { MessageFactory } from './bench-messages.ts';
import { sender } from './senders.ts';
import type { SendStats } from './senders.ts';
import { loginAndStat } from './pop3-session.ts';
import type { Target } from './pop3-session.ts';
import type { Pop3Client } from './pop3-client.ts';
import { processRss, treeMemory } from './proc-tree.ts';

const HEAP_SAMPLER = fileURLToPath(new URL('./heap-sampler.mjs', import.meta.url));
const SETTLE_MS = 3000;
const MiB = 1024 * 1024;

export interface PhaseContext {
  projectRoot: string;
  host: string;
  parentDir: string;
  deadline: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function serverOptions(ctx: PhaseContext, extra: Partial<ServerOptions> & Pick<ServerOptions, 'listener' | 'settings'>): ServerOptions {
  return { name: 'bench-budget', account: 'jjordan', host: ctx.host, parentDir: ctx.parentDir, nodeArgs: [], projectRoot: ctx.projectRoot, ...extra };
}

// ---------------------------------------------------------------------------
// At rest

export interface RestResult {
  /** MiB, cold: the first start of this checkout (no compile cache). */
  coldServer: number;
  coldRelay: number | null;
  /** MiB, a later start. */
  server: number;
  relay: number | null;
}

/** The server as `npm start` runs it (every listener, the relay), RSS after SETTLE_MS. */
async function startAndMeasure(ctx: PhaseContext, env: Record<string, string>): Promise<{ server: number; relay: number | null }> {
  const prepared = await prepareProjectServer(serverOptions(ctx, { listener: 'smtp', settings: {}, allListeners: true, relay: true, env }));
  try {
    const running = await prepared.start();
    await sleep(SETTLE_MS);
    const relayPid = await running.relayPid();
    return { server: processRss(running.pid) / MiB, relay: relayPid ? processRss(relayPid) / MiB : null };
  } finally {
    await prepared.remove();
  }
}

export async function restPhase(ctx: PhaseContext): Promise<RestResult> {
  const cold = await startAndMeasure(ctx, { NODE_DISABLE_COMPILE_CACHE: '1' });
  await startAndMeasure(ctx, {}); // fills the compile cache, if the start command has one
  const warm = await startAndMeasure(ctx, {});
  return { coldServer: cold.server, coldRelay: cold.relay, ...warm };
}

/** What bounds the rest figure (bench-budget --floor): Node alone, and the server's modules loaded but nothing started. */
export interface RestFloor {
  /** MiB: node with the start command's options, running an empty program. */
  node: number;
  /** MiB: the same, after importing src/main.ts (every module the server loads; main() does not run when imported). */
  imported: number;
}

/** Node with the start command's options and `program`, RSS after SETTLE_MS. */
async function programRss(ctx: PhaseContext, program: string): Promise<number> {
  const { env, nodeArgs } = await startCommand(ctx.projectRoot);
  const child = spawn(process.execPath, [...nodeArgs, '--input-type=module', '-e', `${program}\nsetInterval(() => {}, 60_000);`], {
    cwd: ctx.projectRoot,
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  try {
    await sleep(SETTLE_MS);
    if (child.exitCode !== null) throw new Error(`the floor program exited (${child.exitCode}): ${program}`);
    return processRss(child.pid!) / MiB;
  } finally {
    child.kill('SIGKILL');
  }
}

export async function restFloorPhase(ctx: PhaseContext): Promise<RestFloor> {
  const main = `await import(${JSON.stringify(join(ctx.projectRoot, 'src/main.ts'))});`;
  await programRss(ctx, main); // the compile cache, as a later start of the server finds it
  return { node: await programRss(ctx, ''), imported: await programRss(ctx, main) };
}

// ---------------------------------------------------------------------------
// Growth over many deliveries

export interface GrowthPoint {
  delivered: number;
  rssMiB: number;
  heapUsedMiB: number | null;
  heapTotalMiB: number | null;
}

export interface GrowthResult {
  points: GrowthPoint[];
  accepted: number;
  failed: number;
  seconds: number;
}

export async function growthPhase(ctx: PhaseContext, count: number, size: number): Promise<GrowthResult> {
  const connections = 10;
  const samples = join(ctx.parentDir, `bench-budget-heap-${process.pid}-${randomBytes(3).toString('hex')}.jsonl`);
  const prepared = await prepareProjectServer(
    serverOptions(ctx, {
      listener: 'smtp',
      settings: smtpSettings('localhost', connections, size),
      nodeArgs: ['--import', HEAP_SAMPLER],
      env: { JJORDAN_HEAP_SAMPLES: samples },
    }),
  );
  try {
    const running = await prepared.start();
    const messages = new MessageFactory(randomBytes(4).toString('hex'), 'jjordan@localhost', count, size);
    const stats: SendStats = { accepted: 0, failed: 0, latenciesMs: [], errors: new Map(), errorSamples: new Map(), firstConnectAt: 0, lastAcceptAt: 0 };
    const shared = { next: 0, deadline: ctx.deadline };
    const options = { port: running.port, recipients: ['jjordan@localhost'], count, size, pipelining: false };
    const started = Date.now();
    const senders = Promise.all(Array.from({ length: connections }, () => sender(options, ctx.host, messages, shared, stats)));
    let done = false;
    void senders.finally(() => (done = true));
    // The curve: 10%, 50% and 100% of the deliveries (the issue: after 20,000 and after 200,000).
    const milestones = [Math.round(count / 10), Math.round(count / 2), count];
    const points: GrowthPoint[] = [];
    while (milestones.length > 0 && !(done && stats.accepted < milestones[0])) {
      if (stats.accepted >= milestones[0]) {
        milestones.shift();
        // RSS now; the heap as the sampler saw it within the last second.
        points.push({ delivered: stats.accepted, rssMiB: processRss(running.pid) / MiB, ...(await lastHeapSample(samples)) });
        console.error(`bench-budget: growth: ${stats.accepted} delivered, RSS ${points.at(-1)!.rssMiB.toFixed(1)} MiB`);
      }
      await sleep(50);
    }
    await senders;
    return { points, accepted: stats.accepted, failed: stats.failed, seconds: (Date.now() - started) / 1000 };
  } finally {
    await prepared.remove();
    await rm(samples, { force: true });
  }
}

async function lastHeapSample(path: string): Promise<{ heapUsedMiB: number | null; heapTotalMiB: number | null }> {
  const lines = (await readFile(path, 'utf8').catch(() => '')).trimEnd().split('\n');
  try {
    const last = JSON.parse(lines.at(-1)!) as { heapUsed: number; heapTotal: number };
    return { heapUsedMiB: last.heapUsed / MiB, heapTotalMiB: last.heapTotal / MiB };
  } catch {
    return { heapUsedMiB: null, heapTotalMiB: null };
  }
}

// ---------------------------------------------------------------------------
// Logins: a burst of first logins, and many idle sessions

/** A passwd line as adduser writes it (auth/password.ts), with cost 2^ln. */
export async function passwdLine(name: string, password: string, ln: number): Promise<string> {
  const salt = randomBytes(16);
  const N = 2 ** ln;
  const key = await new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, 32, { N, r: 8, p: 1, maxmem: 256 * N * 8 + MiB }, (err, k) => (err ? reject(err) : resolve(k))),
  );
  return `${name}:$scrypt$ln=${ln},r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}\n`;
}

/** A POP3 server of the checkout with `accounts` (password: the name + "-pw") added to its passwd. */
async function pop3Server(ctx: PhaseContext, accounts: string[], ln: number, connections: number) {
  const limits = { maxConnections: connections + 50, maxConnectionsPerIp: connections + 50 };
  const prepared = await prepareProjectServer(
    serverOptions(ctx, { listener: 'pop3', settings: { ...POP3_SETTINGS, limits } }),
  );
  const lines = await Promise.all(accounts.map((name) => passwdLine(name, `${name}-pw`, ln)));
  await appendFile(join(prepared.dataDir, 'passwd'), lines.join(''));
  return prepared;
}

export function pop3Target(host: string, port: number, user: string): Target {
  return { address: host, port, tls: false, user, password: `${user}-pw`, auth: 'user' };
}

/** RSS of `rootPid`'s process tree (MiB) before and after `logins` concurrent first logins. */
export async function measureLogins(
  host: string,
  port: number,
  rootPid: number,
  accounts: string[],
  deadline: number,
  concurrency: number,
): Promise<{ beforeMiB: number; afterMiB: number; clients: Pop3Client[] }> {
  await sleep(SETTLE_MS);
  const beforeMiB = treeMemory(rootPid, false).rss / MiB;
  const clients: Pop3Client[] = [];
  for (let i = 0; i < accounts.length; i += concurrency) {
    const batch = accounts.slice(i, i + concurrency);
    const opened = await Promise.all(batch.map((user) => loginAndStat(pop3Target(host, port, user), { deadline })));
    clients.push(...opened.map((o) => o.client));
  }
  await sleep(SETTLE_MS);
  return { beforeMiB, afterMiB: treeMemory(rootPid, false).rss / MiB, clients };
}

export async function burstPhase(ctx: PhaseContext): Promise<{ beforeMiB: number; afterMiB: number }> {
  const accounts = Array.from({ length: 8 }, (_, i) => `burst${i + 1}`);
  const prepared = await pop3Server(ctx, accounts, 14, accounts.length); // adduser's cost (auth/password.ts)
  try {
    const running = await prepared.start();
    const { beforeMiB, afterMiB, clients } = await measureLogins(ctx.host, running.port, running.pid, accounts, ctx.deadline, accounts.length);
    await Promise.all(clients.map((c) => c.quit(ctx.deadline)));
    return { beforeMiB, afterMiB };
  } finally {
    await prepared.remove();
  }
}

/** Sessions opened and closed before an idle run, so that one-time costs (compiling the login path) are not counted per session. */
export const WARM_UP_SESSIONS = 20;

/**
 * `sessions` idle POP3 sessions, each logged in to an account of its own
 * (one session per maildrop), after WARM_UP_SESSIONS that came and went.
 */
export async function idlePhase(ctx: PhaseContext, sessions: number): Promise<{ beforeMiB: number; afterMiB: number }> {
  const accounts = Array.from({ length: sessions }, (_, i) => `idle${i + 1}`);
  // A cheap hash (2^8): the logins are not what is measured here.
  const prepared = await pop3Server(ctx, accounts, 8, sessions);
  try {
    const running = await prepared.start();
    await warmUp(ctx.host, running.port, accounts.slice(0, WARM_UP_SESSIONS), ctx.deadline);
    const { beforeMiB, afterMiB, clients } = await measureLogins(ctx.host, running.port, running.pid, accounts, ctx.deadline, 20);
    await Promise.all(clients.map((c) => c.quit(ctx.deadline).catch(() => {})));
    return { beforeMiB, afterMiB };
  } finally {
    await prepared.remove();
  }
}

/** Log in with each of `accounts` and log out again. */
export async function warmUp(host: string, port: number, accounts: string[], deadline: number): Promise<void> {
  const opened = await Promise.all(accounts.map((user) => loginAndStat(pop3Target(host, port, user), { deadline })));
  await Promise.all(opened.map(({ client }) => client.quit(deadline).catch(() => {})));
}
