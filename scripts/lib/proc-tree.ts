// A server as the set of its processes (Linux /proc): Dovecot and Postfix
// run one master and many children (a pop3 process per login, an smtpd per
// connection, cleanup, qmgr, virtual ...), this project one server and one
// relay. Their memory and CPU are compared as sums over the process tree
// under the master: RSS (VmRSS) here, CPU seconds in cpu-meter.ts.

import { readFileSync, readdirSync } from 'node:fs';

/** Linux's USER_HZ, the unit of /proc times. */
const CLOCK_TICKS = 100;

interface ProcStat {
  ppid: number;
  cpuSeconds: number;
}

function procStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The fields after the ")" that ends the command name: state, ppid, ... utime (12th), stime (13th).
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
  } catch {
    return null;
  }
}

/** `root` and every process below it, alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(name));
    children.set(stat.ppid, list);
  }
  const tree: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    tree.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return tree.filter((pid) => procStat(pid) !== null);
}

/** VmRSS of one process in bytes, or 0 when it is gone. */
export function rssOf(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Sum of VmRSS over the tree under `root`, in bytes, and how many processes. */
export function treeRss(root: number): { bytes: number; processes: number } {
  const pids = processTree(root);
  return { bytes: pids.reduce((sum, pid) => sum + rssOf(pid), 0), processes: pids.length };
}
