// What a server costs the machine, read from Linux /proc for a process and
// all its descendants: this project's server is one process, Dovecot is a
// master with a login process and one `imap` process per session, so the
// tree is what compares.
//
// - memory: the sum of VmRSS, and the sum of Pss (proportional set size,
//   /proc/PID/smaps_rollup: a page shared by n processes counts 1/n in
//   each), which is the fair figure for many processes sharing libraries;
// - I/O: the sums of rchar and wchar (/proc/PID/io: bytes passed to read()
//   and write(), sockets and logs included) and read_bytes/write_bytes (what
//   reached the disk layer; 0 while the page cache absorbs it);
// - a sampler that polls the tree's RSS every few milliseconds and keeps the
//   peak, for the growth during one command;
// - the tree's CPU time, so the report can tell the server's share from
//   other processes' (cpu-meter.ts).

import { readdirSync, readFileSync } from 'node:fs';

export interface TreeMemory {
  processes: number;
  rss: number; // bytes
  pss: number | null; // bytes; null where smaps_rollup cannot be read
}

export interface TreeIo {
  rchar: number;
  wchar: number;
  readBytes: number;
  writeBytes: number;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return null;
  }
}

/** `pid` and every process below it, walking /proc's parent links once. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readText(`/proc/${name}/stat`);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = stat ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : NaN;
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const tree: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const next = queue.pop()!;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

function field(text: string | null, name: string): number {
  const match = text && new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}

/** RSS of one process in bytes, or NaN once it is gone. */
export function processRss(pid: number): number {
  return field(readText(`/proc/${pid}/status`), 'VmRSS') * 1024;
}

export function treeMemory(pid: number, withPss = true): TreeMemory {
  let rss = 0;
  let pss: number | null = withPss ? 0 : null;
  let processes = 0;
  for (const p of processTree(pid)) {
    const r = processRss(p);
    if (!Number.isFinite(r)) continue; // a process that ended meanwhile
    processes++;
    rss += r;
    if (pss !== null) {
      const value = field(readText(`/proc/${p}/smaps_rollup`), 'Pss') * 1024;
      pss = Number.isFinite(value) ? pss + value : null;
    }
  }
  return { processes, rss, pss };
}

export function treeIo(pid: number): TreeIo | null {
  const total: TreeIo = { rchar: 0, wchar: 0, readBytes: 0, writeBytes: 0 };
  for (const p of processTree(pid)) {
    const text = readText(`/proc/${p}/io`);
    if (text === null) continue;
    total.rchar += field(text, 'rchar');
    total.wchar += field(text, 'wchar');
    total.readBytes += field(text, 'read_bytes');
    total.writeBytes += field(text, 'write_bytes');
  }
  return Number.isFinite(total.rchar) ? total : null;
}

export function ioDelta(before: TreeIo | null, after: TreeIo | null): TreeIo | null {
  if (!before || !after) return null;
  return {
    rchar: after.rchar - before.rchar,
    wchar: after.wchar - before.wchar,
    readBytes: after.readBytes - before.readBytes,
    writeBytes: after.writeBytes - before.writeBytes,
  };
}

/**
 * Polls the tree's RSS every `everyMs` until stop(); returns the highest sum
 * seen. The tree's members are listed once at the start (a command does not
 * start processes), so a poll is a few small reads.
 */
export function sampleRss(pid: number, everyMs = 5): { stop(): number } {
  const members = processTree(pid);
  const sum = () => members.reduce((total, p) => total + (processRss(p) || 0), 0);
  let peak = sum();
  const timer = setInterval(() => (peak = Math.max(peak, sum())), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, sum());
    },
  };
}

/**
 * CPU seconds so far of each process of the tree, by pid: its own (utime,
 * stime) and that of its children that ended and were waited for (cutime,
 * cstime), so Dovecot's per-session processes still count once they are
 * gone. Linux's USER_HZ is 100 (cpu-meter.ts).
 */
export function treeCpu(pid: number): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const p of processTree(pid)) {
    const stat = readText(`/proc/${p}/stat`);
    if (stat === null) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    if (Number.isFinite(ticks)) cpu.set(p, ticks / 100);
  }
  return cpu;
}

/**
 * CPU seconds the tree used between two treeCpu() readings. A process that
 * ended meanwhile counts through its parent's cutime once the parent waited
 * for it; one not yet waited for is lost.
 */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [p, seconds] of after) total += seconds - (before.get(p) ?? 0);
  return total;
}
