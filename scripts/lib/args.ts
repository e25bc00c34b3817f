// Checks on command-line values for bench-smtp.ts and bench-pop3.ts. A bad
// value throws a UsageError, which the benchmark prints (with the usage when
// it comes from the options) and answers with exit status 2; any other
// error exits with 1.

import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

const MiB = 1024 * 1024;

export class UsageError extends Error {}

export function integer(name: string, text: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${name} must be a whole number from ${min} to ${max}`);
  return n;
}

/** "5000", "5k", "1m", "25M", "1.5m", "64KiB": k/m/g are powers of 1024. */
export function parseSize(text: string, max: number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`--size: cannot read ${JSON.stringify(text)} (try 5k, 1m, 25m)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bytes = Math.round(Number(match[1]) * scale);
  if (bytes < 1 || bytes > max) throw new UsageError(`--size must be between 1 byte and ${max / MiB} MiB`);
  return bytes;
}

/** Resolves `host` and insists that every address it names is loopback. */
export async function loopbackAddress(host: string): Promise<string> {
  const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true });
  const isLoopback = (a: string) => /^127\./.test(a) || a === '::1' || /^::ffff:127\./i.test(a);
  if (addresses.length === 0 || !addresses.every((a) => isLoopback(a.address))) {
    throw new UsageError(`--host ${host} is not a loopback address; this benchmark only targets this machine`);
  }
  return addresses[0].address;
}

/** Prints an error that ended the run ("bench-smtp: ...") and returns the exit status. */
export function failed(program: string, err: unknown): number {
  console.error(`${program}: ${err instanceof UsageError ? err.message : ((err as Error).stack ?? String(err))}`);
  return err instanceof UsageError ? 2 : 1;
}
