// Where the CPU went during a stretch of a benchmark (Linux /proc): the
// server's processes (the tree under its pid: Dovecot's and Postfix's
// children count, see proc-tree.ts), this process, and everything else on
// the machine.
// "Everything else" is what makes a figure untrustworthy: another job busy
// on the same cores slows the server down in ways no profile explains, so
// the report shows it next to the figures it may have spoiled.

import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { cpuBetween, treeCpu } from './proc-tree.ts';

/** Linux's USER_HZ, the unit of /proc times: 100 on every common platform. */
const CLOCK_TICKS = 100;

export interface CpuUse {
  /** Wall-clock seconds measured. */
  seconds: number;
  /** CPU seconds (user + system) of the server's process tree, null without its pid. */
  server: number | null;
  /** CPU seconds of this process (all its threads). */
  client: number;
  /** CPU seconds of every other process, null where /proc is not readable. */
  others: number | null;
  cores: number;
}

export class CpuMeter {
  readonly #pid: number | null;
  readonly #startedAt = performance.now();
  readonly #client = process.cpuUsage();
  /** CPU seconds of each process of the server's tree at the start. */
  readonly #server: Map<number, number> | null;
  readonly #machine: number | null;

  constructor(serverPid: number | null) {
    this.#pid = serverPid;
    this.#server = serverPid ? treeCpu(serverPid) : null;
    this.#machine = machineCpu();
  }

  stop(): CpuUse {
    const client = process.cpuUsage(this.#client);
    const clientSeconds = (client.user + client.system) / 1e6;
    // A process that ended meanwhile (a POP3 child after QUIT) is not counted.
    const serverNow = this.#pid && this.#server ? treeCpu(this.#pid) : null;
    const server = serverNow && this.#server ? cpuBetween(this.#server, serverNow) : null;
    const machineNow = machineCpu();
    const machine = machineNow !== null && this.#machine !== null ? machineNow - this.#machine : null;
    return {
      seconds: (performance.now() - this.#startedAt) / 1000,
      server,
      client: clientSeconds,
      // Ticks are coarse (10 ms): never below zero.
      others: machine === null ? null : Math.max(0, machine - clientSeconds - (server ?? 0)),
      cores: availableParallelism(),
    };
  }
}

/** A process's CPU seconds so far (utime + stime), or null. */
export function processCpu(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The fields after the ")" that ends the command name; utime and stime are the 12th and 13th.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

/** CPU seconds all cores spent busy since boot (everything but idle and iowait), or null. */
function machineCpu(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    const ticks = user + nice + system + irq + softirq + (steal ?? 0);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS : null;
  } catch {
    return null;
  }
}

/** "0.74 s (107% of one core)". */
export function describeCpu(cpuSeconds: number, wallSeconds: number): string {
  return `${cpuSeconds.toFixed(2)} s (${((100 * cpuSeconds) / wallSeconds).toFixed(0)}% of one core)`;
}
