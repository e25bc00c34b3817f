// Helpers for the tests that run the real programs as processes: `node
// src/main.ts`, adduser, the relay and the certbot hook, each in its own
// process, in temporary directories removed when the test file ends.

import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';

export const PROJECT = resolve(import.meta.dirname, '../..');
export const MAIN = join(PROJECT, 'src/main.ts');
export const ADDUSER = join(PROJECT, 'src/auth/adduser.ts');
export const RELAY = join(PROJECT, 'src/relay/main.ts');
export const DEPLOY_HOOK = join(PROJECT, 'scripts/certbot-deploy-hook.ts');

export const isRoot = process.getuid?.() === 0;

/** uid and gid of the `mail` user, the server's default runAs user. */
export function mailIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'mail'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A scratch directory, open to other users (the server may run as `mail`), removed at the end. */
export async function workDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jjordan-main-'));
  await chmod(dir, 0o755);
  dirs.push(dir);
  return dir;
}

/**
 * A copy of the programs in a directory only root can enter, as after
 * `git clone` into root's home (mode 0700). Returns the copy's root.
 */
export async function privateCheckout(): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'jjordan-home-'));
  dirs.push(home);
  await chmod(home, 0o700);
  const checkout = join(home, 'jjordan-mail');
  for (const part of ['src', 'scripts', 'package.json']) await cp(join(PROJECT, part), join(checkout, part), { recursive: true });
  return checkout;
}

/** A free loopback port (bound and released at once). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((ok) => server.close(() => ok()));
  return port;
}

export interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Wait until the output matches `pattern`; fails with the output if it does not within 10 s. */
  waitFor(pattern: RegExp, what?: string): Promise<void>;
  stop(): Promise<number | null>;
}

/** Start a program (default: the server) and collect its output. */
export function spawnProgram(args: string[], cwd: string, program = MAIN, env?: NodeJS.ProcessEnv): Running {
  const child = spawn(process.execPath, [program, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((ok) =>
    child.once('exit', (code, signal) => {
      if (signal) output += `\n[ended by ${signal}]\n`;
      ok(code);
    }),
  );
  const waitFor = async (pattern: RegExp, what = String(pattern)) => {
    const deadline = Date.now() + 10_000;
    while (!pattern.test(output)) {
      if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${what}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output}`);
      await new Promise((ok) => setTimeout(ok, 20));
    }
  };
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return exited;
  };
  return { child, output: () => output, exited, waitFor, stop };
}

/** Start the server and wait for its `ready` log line (after it dropped root, if it had it). */
export async function startMain(cwd: string, args: string[], program = MAIN): Promise<Running> {
  const running = spawnProgram(args, cwd, program);
  await running.waitFor(/ main ready /, 'the server to be ready');
  return running;
}

/** `npm run adduser -- NAME [args]` with the password "secret" on a pipe. */
export function addUser(name: string, args: string[], cwd = PROJECT, program = ADDUSER): string {
  const run = spawnSync(process.execPath, [program, name, ...args], { cwd, input: 'secret\n', encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout;
}

/** The Uid:, Gid: and Groups: lines of /proc/PID/status, as numbers. */
export async function processIds(pid: number): Promise<{ uids: number[]; gids: number[]; groups: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const numbers = (field: string) =>
    (status.match(new RegExp(`^${field}:(.*)$`, 'm'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return { uids: numbers('Uid'), gids: numbers('Gid'), groups: numbers('Groups') };
}
