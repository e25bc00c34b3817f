// `bench-smtp.ts --start-server`: runs this project's own server as a child
// process for one benchmark, in a throw-away data directory.
//
// Steps: make a temporary directory, create the test account with the
// project's adduser command (password on stdin, as a script would), write a
// config file (SMTP on a loopback port the kernel just reported free, every
// other listener off, the limits raised to what the benchmark needs), then
// start `node src/main.ts --config FILE` and wait for its "listening" log
// line. `stop()` sends SIGTERM (the server's clean shutdown), escalates to
// SIGKILL if it does not exit, and removes the directory.
//
// The server's log goes to a file in the temporary directory rather than a
// pipe: writes to a pipe are synchronous on Linux, so a benchmark busy
// sending could otherwise stall the server it is measuring.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { defaults } from '../../src/config.ts';

/** The repository root (this file is scripts/lib/bench-server.ts). */
export const PROJECT_ROOT = resolve(import.meta.dirname, '..', '..');

export interface ServerOptions {
  /** Account that receives the mail (the local part of --to). */
  account: string;
  /** Domain of --to: the server's only local domain. */
  domain: string;
  /** Loopback address to listen on. */
  host: string;
  /** Concurrent connections the benchmark will open. */
  connections: number;
  /** Largest message the benchmark will send, in bytes. */
  messageBytes: number;
  /** Where to create the temporary directory (its disk is the one measured). */
  parentDir: string;
  /** Extra options for the server's node (e.g. --cpu-prof). */
  nodeArgs: string[];
}

export interface StartedServer {
  port: number;
  pid: number;
  mboxPath: string;
  dataDir: string;
  logPath: string;
  /** The last lines of the server's log, for error messages. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, wait, SIGKILL if needed; then remove the temporary directory. */
  stop(): Promise<void>;
}

const ADDUSER_TIMEOUT_MS = 60_000; // scrypt is slow on purpose
const LISTEN_TIMEOUT_MS = 20_000;
const STARTUP_SETTLE_MS = 300;
const STOP_TIMEOUT_MS = 20_000; // the server's own grace period is 10 s

export async function startProjectServer(opts: ServerOptions): Promise<StartedServer> {
  const workDir = await mkdtemp(join(opts.parentDir, 'bench-smtp-'));
  const dataDir = join(workDir, 'data');
  const logPath = join(workDir, 'server.log');
  const removeWorkDir = () => rm(workDir, { recursive: true, force: true });
  try {
    await addAccount(opts.account, dataDir);

    const port = await freePort(opts.host);
    const config = benchConfig(dataDir, opts, port);
    const configPath = join(workDir, 'config.json');
    await writeFile(configPath, JSON.stringify(config, null, 2) + '\n');

    const logFd = openSync(logPath, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...opts.nodeArgs, join('src', 'main.ts'), '--config', configPath], {
        cwd: PROJECT_ROOT,
        stdio: ['ignore', logFd, logFd],
      });
    } finally {
      closeSync(logFd); // the child has its own copy
    }
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    let hasExited = false;
    void exited.then(() => (hasExited = true));

    const logTail = async (lines = 20) => {
      const text = await readFile(logPath, 'utf8').catch(() => '');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    };
    const stop = async () => {
      if (!hasExited) {
        child.kill('SIGTERM');
        if (!(await within(exited, STOP_TIMEOUT_MS))) {
          child.kill('SIGKILL');
          await within(exited, 5000);
        }
      }
      await removeWorkDir();
    };

    try {
      await waitForListening(logPath, port, () => hasExited);
      // A server may bind first and refuse to run just after (privileges,
      // certificates): give it a moment to change its mind.
      await within(exited, STARTUP_SETTLE_MS);
      if (hasExited) throw new Error('the server exited right after it started listening');
    } catch (err) {
      const tail = await logTail();
      await stop();
      throw new Error(`${(err as Error).message}\n--- server log ---\n${tail}`);
    }
    return {
      port,
      pid: child.pid!,
      mboxPath: join(dataDir, 'mail', opts.account, 'INBOX'),
      dataDir,
      logPath,
      logTail,
      stop,
    };
  } catch (err) {
    await removeWorkDir();
    throw err;
  }
}

// `node src/auth/adduser.ts NAME --data DIR`, password on stdin.
async function addAccount(account: string, dataDir: string): Promise<void> {
  const child = spawn(process.execPath, [join('src', 'auth', 'adduser.ts'), account, '--data', dataDir], {
    cwd: PROJECT_ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  child.stdin!.end(randomBytes(12).toString('hex') + '\n');
  const timer = setTimeout(() => child.kill('SIGKILL'), ADDUSER_TIMEOUT_MS);
  const code = await exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`adduser ${account} failed (exit ${code}): ${output.trim()}`);
}

/**
 * The config file: the project's defaults with the benchmark's needs on top.
 * Only keys the project's config schema knows are set (it refuses unknown
 * ones), so this keeps working as the schema grows.
 */
function benchConfig(dataDir: string, opts: ServerOptions, port: number): Record<string, unknown> {
  const known = defaults as unknown as Record<string, Record<string, unknown>>;
  const pick = (section: string, values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).filter(([key]) => known[section] && Object.hasOwn(known[section], key)));

  // Dot-stuffing and the end-of-data line travel too, and a server may count
  // them; leave room so a message of exactly --size is never refused.
  const maxMessageBytes = Math.max(defaults.limits.maxMessageBytes, opts.messageBytes + Math.ceil(opts.messageBytes / 50) + 64 * 1024);
  // Our port for SMTP; every other listener off (-1; 0 would mean "any free port").
  const ports = Object.fromEntries(Object.keys(known.ports ?? {}).map((name) => [name, name === 'smtp' ? port : -1]));
  const config: Record<string, unknown> = {
    dataDir,
    domains: [opts.domain],
    listenAddress: opts.host,
    ports,
    relay: pick('relay', { enabled: false }), // nothing to relay: no child process to measure around
    limits: pick('limits', {
      maxMessageBytes,
      maxConnections: Math.max(defaults.limits.maxConnections, opts.connections + 10),
      maxConnectionsPerIp: Math.max(defaults.limits.maxConnectionsPerIp, opts.connections + 2),
    }),
  };
  // Started as root, the server drops to runAs.user, which could not reach a
  // data directory under a private temporary one; a benchmark run as root
  // (in a container, say) keeps root instead.
  if (process.getuid?.() === 0 && known.runAs && Object.hasOwn(known.runAs, 'allowRoot')) {
    config.runAs = pick('runAs', { user: '', group: '', allowRoot: true });
  }
  return config;
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
async function waitForListening(logPath: string, port: number, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  const ready = new RegExp(`\\blistening\\b.*\\bservice=smtp\\b.*\\bport=${port}\\b`);
  while (Date.now() < deadline) {
    const text = await readFile(logPath, 'utf8').catch(() => '');
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
