// The password check's share of a bench-pop3 login: this project's server
// checks every login with scrypt, on purpose slow, so the benchmark times
// the same scrypt (the account's own parameters, from passwd) to tell that
// cost apart from the rest of the login.

import { scrypt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { median } from './measure.ts';

/** Runs timed; the report gives their median. */
export const SCRYPT_RUNS = 3;
const MiB = 1024 * 1024;

export interface ScryptCost {
  params: string;
  ms: number;
}

/**
 * The median time of `user`'s scrypt in passwdPath, or null if the line is
 * not an scrypt hash one can afford to run. Only an estimate: it runs in
 * this process, not the server's.
 */
export async function scryptCost(passwdPath: string, user: string, password: string): Promise<ScryptCost | null> {
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
  return { params: `ln=${ln},r=${r},p=${p}`, ms: median(times) };
}
