// The programs that signal a running one (mailq --flush signals the relay,
// the certbot hook the server) find it through the PID file it writes.
// A program that was killed leaves its PID file behind, and the PID may
// since belong to another program, which must not get our signal: on Linux
// /proc says what the process runs.

import { readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';

/**
 * The PID in `pidPath` if that process is alive and runs `program` (e.g.
 * 'src/relay/main.ts'); otherwise why not: no PID file, or a stale one.
 */
export async function runningPid(pidPath: string, program: string): Promise<number | 'no-pid-file' | 'stale'> {
  const pid = Number((await readFile(pidPath, 'utf8').catch(() => '')).trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return 'no-pid-file';
  try {
    process.kill(pid, 0);
  } catch {
    return 'stale';
  }
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg) => arg.endsWith(program)) ? pid : 'stale';
  } catch {
    return pid; // no /proc (not Linux): the process exists, trust the file
  }
}
