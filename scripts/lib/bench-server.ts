// `--start-server` of bench-smtp.ts, bench-pop3.ts and bench-imap.ts: runs
// this project's own server as a child process for one benchmark, in a
// throw-away data directory.
//
// Two steps, so bench-pop3.ts and bench-imap.ts can fill the maildrop in
// between (the server then meets the mailbox for the first time at the first
// login or SELECT, and must build its side index then):
// `prepareProjectServer` makes the temporary directory and creates the
// account with the project's adduser command
// (password on stdin, as a script would); `start()` writes a config file
// (the benchmark's one listener on a loopback port the kernel just reported
// free, every other listener off, the benchmark's settings on top of the
// defaults), starts `node src/main.ts --config FILE` with the environment and
// Node options of package.json's start command (what `npm start` runs), and
// waits for its "listening" log line. `startProjectServer` does both at once. Stopping
// sends SIGTERM (the server's clean shutdown), escalates to SIGKILL if it
// does not exit, and removes the directory.
//
// The server's log goes to a file in the temporary directory rather than a
// pipe: writes to a pipe are synchronous on Linux, so a benchmark busy
// sending could otherwise stall the server it is measuring.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defaults } from '../../src/config.ts';
import { mailboxPath } from '../../src/store/paths.ts';

/**
 * The repository whose server is started: this one (this file is
 * scripts/lib/bench-server.ts), or another checkout named by the
 * JJORDAN_BENCH_PROJECT environment variable, so one benchmark script can
 * measure an older commit and the current one on the same machine.
 */
export const PROJECT_ROOT = process.env.JJORDAN_BENCH_PROJECT
  ? resolve(process.env.JJORDAN_BENCH_PROJECT)
  : resolve(import.meta.dirname, '..', '..');

export interface ServerOptions {
  /** Names the temporary directory: `<name>-XXXXXX` (e.g. bench-smtp). */
  name: string;
  /** The one listener to open, as the config's `ports` names it (smtp, pop3, pop3s, imap). */
  listener: string;
  /** The account to create. */
  account: string;
  /** More accounts, with random passwords (bench-smtp --mailboxes). */
  moreAccounts?: string[];
  /** Its password; a random one when the benchmark never logs in. */
  password?: string;
  /** Loopback address to listen on. */
  host: string;
  /** Where to create the temporary directory (its disk is the one measured). */
  parentDir: string;
  /** Extra options for the server's node (e.g. --cpu-prof). */
  nodeArgs: string[];
  /** Config settings on top of the defaults: smtpSettings(), POP3_SETTINGS or imapSettings(). */
  settings: Record<string, unknown>;
  /** Every listener on a free port, not only `listener` (as `npm start` runs it). */
  allListeners?: boolean;
  /** Start the relay process too (the bench default is off: nothing to relay). */
  relay?: boolean;
  /** More environment for the server (e.g. NODE_DISABLE_COMPILE_CACHE=1). */
  env?: Record<string, string>;
  /** The checkout whose server runs (default PROJECT_ROOT). */
  projectRoot?: string;
}

/**
 * What package.json's start command puts in front of src/main.ts: its
 * environment (`NAME=value` words) and its Node options. The benchmarks
 * start the server the way `npm start` does, so that what they measure is
 * what a user runs.
 */
export async function startCommand(projectRoot = PROJECT_ROOT): Promise<{ env: Record<string, string>; nodeArgs: string[] }> {
  const scripts = JSON.parse(await readFile(join(projectRoot, 'package.json'), 'utf8')).scripts as Record<string, string>;
  const words = (scripts.start ?? 'node src/main.ts').trim().split(/\s+/);
  const env: Record<string, string> = {};
  while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0])) {
    const [name, ...value] = words.shift()!.split('=');
    env[name] = value.join('=');
  }
  if (words.shift() !== 'node' || words.pop() !== 'src/main.ts') throw new Error(`cannot read the start command of ${projectRoot}: ${scripts.start}`);
  return { env, nodeArgs: words };
}

export interface PreparedServer {
  dataDir: string;
  /** The account's INBOX (bench-pop3 fills it before start()). */
  mboxPath: string;
  /** Any account's INBOX. */
  mboxPathOf(account: string): string;
  /** The passwd file adduser wrote (for the cost of its password hash). */
  passwdPath: string;
  /** Starts the server; again after stop(), on the same data (a new port). */
  start(): Promise<RunningServer>;
  /** Stop the server if it runs (SIGTERM, then SIGKILL); the directory stays. */
  stop(): Promise<void>;
  /** Stop the server if it runs, then remove the temporary directory. */
  remove(): Promise<void>;
}

export interface RunningServer {
  port: number;
  /** Every listener's port by name (only `listener` unless allListeners). */
  ports: Record<string, number>;
  pid: number;
  /** The relay's pid, when it was started (from the server's log). */
  relayPid(): Promise<number | null>;
  /** The last lines of the server's log, for error messages. */
  logTail(lines?: number): Promise<string>;
}

export interface StartedServer extends RunningServer {
  mboxPath: string;
  mboxPathOf(account: string): string;
  /** SIGTERM, wait, SIGKILL if needed; then remove the temporary directory. */
  stop(): Promise<void>;
}

const ADDUSER_TIMEOUT_MS = 60_000; // scrypt is slow on purpose
const LISTEN_TIMEOUT_MS = 20_000;
const STARTUP_SETTLE_MS = 300;
const STOP_TIMEOUT_MS = 20_000; // the server's own grace period is 10 s

/**
 * bench-smtp's settings: `domain` the only local domain, and the limits
 * raised to what the benchmark needs (never lowered below the defaults).
 */
export function smtpSettings(domain: string, connections: number, messageBytes: number): Record<string, unknown> {
  // Dot-stuffing and the end-of-data line travel too, and a server may count
  // them; leave room so a message of exactly --size is never refused.
  const maxMessageBytes = Math.max(defaults.limits.maxMessageBytes, messageBytes + Math.ceil(messageBytes / 50) + 64 * 1024);
  return {
    domains: [domain],
    limits: {
      maxMessageBytes,
      maxConnections: Math.max(defaults.limits.maxConnections, connections + 10),
      maxConnectionsPerIp: Math.max(defaults.limits.maxConnectionsPerIp, connections + 2),
    },
  };
}

/** bench-pop3's settings: USER/PASS in clear, but only from loopback, which is all it uses. */
export const POP3_SETTINGS: Record<string, unknown> = { auth: { allowPlaintextOnLoopback: true } };

/**
 * bench-imap's settings: LOGIN in clear from loopback (as POP3's), and room
 * for `sessions` connections from one address at once (its IDLE phase),
 * plus a few for the sessions that come and go beside them.
 */
export function imapSettings(sessions: number): Record<string, unknown> {
  return {
    auth: { allowPlaintextOnLoopback: true },
    limits: {
      maxConnections: Math.max(defaults.limits.maxConnections, sessions + 20),
      maxConnectionsPerIp: Math.max(defaults.limits.maxConnectionsPerIp, sessions + 10),
    },
  };
}

/** Both steps at once: the server runs when this returns. */
export async function startProjectServer(opts: ServerOptions): Promise<StartedServer> {
  const prepared = await prepareProjectServer(opts);
  try {
    const running = await prepared.start();
    return { ...running, mboxPath: prepared.mboxPath, mboxPathOf: prepared.mboxPathOf, stop: prepared.remove };
  } catch (err) {
    await prepared.remove();
    throw err;
  }
}

export async function prepareProjectServer(opts: ServerOptions): Promise<PreparedServer> {
  const workDir = await mkdtemp(join(opts.parentDir, `${opts.name}-`));
  const dataDir = join(workDir, 'data');
  const logPath = join(workDir, 'server.log');
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let hasExited = false;

  const logTail = async (lines = 20) => {
    const text = await readFile(logPath, 'utf8').catch(() => '');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  };
  const stop = async () => {
    if (child && !hasExited) {
      child.kill('SIGTERM');
      if (!(await within(exited, STOP_TIMEOUT_MS))) {
        child.kill('SIGKILL');
        await within(exited, 5000);
      }
    }
  };
  const remove = async () => {
    await stop();
    // JJORDAN_BENCH_LOG=FILE keeps the server's log (appended) for a look afterwards.
    if (process.env.JJORDAN_BENCH_LOG) await appendFile(process.env.JJORDAN_BENCH_LOG, await readFile(logPath).catch(() => '')).catch(() => {});
    await rm(workDir, { recursive: true, force: true });
  };

  const start = async (): Promise<RunningServer> => {
    if (child && !hasExited) throw new Error('the server was already started');
    hasExited = false;
    const ports: Record<string, number> = {};
    const known = await projectDefaults(opts.projectRoot ?? PROJECT_ROOT);
    for (const name of opts.allListeners ? Object.keys(known.ports) : [opts.listener]) ports[name] = await freePort(opts.host);
    const port = ports[opts.listener];
    const configPath = join(workDir, 'config.json');
    await writeFile(configPath, JSON.stringify(benchConfig(dataDir, opts, ports, known), null, 2) + '\n');
    const projectRoot = opts.projectRoot ?? PROJECT_ROOT;
    const command = await startCommand(projectRoot);
    const logFd = openSync(logPath, 'a', 0o600);
    const logStart = fstatSync(logFd).size; // a restart looks only at its own lines
    try {
      child = spawn(process.execPath, [...command.nodeArgs, ...opts.nodeArgs, join('src', 'main.ts'), '--config', configPath], {
        cwd: projectRoot,
        env: { ...process.env, ...command.env, ...opts.env },
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd); // the child has its own copy
    }
    const proc = child;
    exited = new Promise<void>((done) => proc.once('exit', () => done()));
    void exited.then(() => (hasExited = true));
    try {
      await waitForListening(logPath, logStart, opts.listener, port, () => hasExited);
      // A server may bind first and refuse to run just after (privileges,
      // certificates): give it a moment to change its mind.
      await within(exited, STARTUP_SETTLE_MS);
      if (hasExited) throw new Error('the server exited right after it started listening');
    } catch (err) {
      const tail = await logTail();
      await stop();
      throw new Error(`${(err as Error).message}\n--- server log ---\n${tail}`);
    }
    const relayPid = async () => {
      const match = /\brelay-started pid=(\d+)/.exec(await readFile(logPath, 'utf8').catch(() => ''));
      return match ? Number(match[1]) : null;
    };
    return { port, ports, pid: proc.pid!, relayPid, logTail };
  };

  try {
    const projectRoot = opts.projectRoot ?? PROJECT_ROOT;
    await addAccount(projectRoot, opts.account, opts.password ?? randomBytes(12).toString('hex'), dataDir, workDir);
    for (const account of opts.moreAccounts ?? []) await addAccount(projectRoot, account, randomBytes(12).toString('hex'), dataDir, workDir);
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    dataDir,
    mboxPath: mailboxPath(dataDir, opts.account, 'INBOX'),
    mboxPathOf: (account) => mailboxPath(dataDir, account, 'INBOX'),
    passwdPath: join(dataDir, 'passwd'),
    start,
    stop,
    remove,
  };
}

// `node src/auth/adduser.ts NAME --data DIR`, password on stdin. Run as
// root, adduser would become the config's runAs user, who cannot reach a
// private temporary directory: it gets the config the server gets (root
// stays root) and a data directory made here, as root.
async function addAccount(projectRoot: string, account: string, password: string, dataDir: string, workDir: string): Promise<void> {
  const args = [join('src', 'auth', 'adduser.ts'), account, '--data', dataDir];
  if (process.getuid?.() === 0) {
    const configPath = join(workDir, 'adduser.json');
    const { runAs } = benchConfig(dataDir, { host: '127.0.0.1', settings: {} }, {}, await projectDefaults(projectRoot));
    await writeFile(configPath, JSON.stringify({ runAs }) + '\n');
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    args.push('--config', configPath);
  }
  const child = spawn(process.execPath, args, {
    cwd: projectRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.stdin!.end(password + '\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), ADDUSER_TIMEOUT_MS);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`adduser ${account} failed (exit ${code}): ${output.trim()}`);
}

/**
 * The config file: the project's defaults with the benchmark's needs on top.
 * Only keys the project's config schema knows are set inside each section
 * (it refuses unknown ones), so this keeps working as the schema grows.
 */
function benchConfig(dataDir: string, opts: Pick<ServerOptions, 'host' | 'settings' | 'relay'>, ports: Record<string, number>, known: ConfigSchema): Record<string, unknown> {
  const pick = (section: string, values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).filter(([key]) => known[section] && Object.hasOwn(known[section], key)));
  const isSection = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);

  // Our ports for our listeners; every other listener off (-1; 0 would mean "any free port").
  const config: Record<string, unknown> = {
    dataDir,
    listenAddress: opts.host,
    ports: Object.fromEntries(Object.keys(known.ports ?? {}).map((name) => [name, ports[name] ?? -1])),
    // Nothing to relay, as a rule: no child process to measure around.
    relay: pick('relay', { enabled: opts.relay === true }),
  };
  for (const [key, value] of Object.entries(opts.settings)) config[key] = isSection(value) ? pick(key, value) : value;
  // Started as root, the server drops to runAs.user, which could not reach a
  // data directory under a private temporary one; a benchmark run as root
  // (in a container, say) keeps root instead.
  if (process.getuid?.() === 0 && known.runAs && Object.hasOwn(known.runAs, 'allowRoot')) {
    config.runAs = pick('runAs', { user: '', group: '', allowRoot: true });
  }
  return config;
}

type ConfigSchema = Record<string, Record<string, unknown>>;

/** The config defaults of the checkout that runs: an older one (--before) may not know every key of this one. */
async function projectDefaults(projectRoot: string): Promise<ConfigSchema> {
  // (This checkout's own config is already loaded; JJORDAN_BENCH_PROJECT may name another.)
  if (resolve(projectRoot) === resolve(fileURLToPath(new URL('../..', import.meta.url)))) return defaults as unknown as ConfigSchema;
  const module = (await import(pathToFileURL(join(projectRoot, 'src', 'config.ts')).href)) as { defaults: ConfigSchema };
  return module.defaults;
}

/** A port nobody listens on right now (the kernel's pick for port 0). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

// The server logs `... listening service=smtp address=... port=N ...` once it accepts connections.
async function waitForListening(logPath: string, from: number, service: string, port: number, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  const ready = new RegExp(`\\blistening\\b.*\\bservice=${service}\\b.*\\bport=${port}\\b`);
  while (Date.now() < deadline) {
    const text = (await readFile(logPath).catch(() => Buffer.alloc(0))).subarray(from).toString('utf8');
    if (ready.test(text)) return;
    if (hasExited()) throw new Error('the server exited during start-up');
    await sleep(50);
  }
  throw new Error(`the server did not report listening on port ${port} within ${LISTEN_TIMEOUT_MS / 1000} s`);
}

/** True if `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((done) => (timer = setTimeout(() => done(false), ms)));
  const result = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
