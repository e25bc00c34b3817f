// The benchmark's measurements besides SMTP itself: the server's memory from
// Linux /proc (RSS and its peak, VmHWM), the disk's raw rate of fsync'd
// appends, and the percentile and median helpers used for the reports.

import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { printableLines } from './bench-messages.ts';

const FSYNC_MAX_APPENDS = 2000;
const FSYNC_MIN_APPENDS = 20;
const FSYNC_MAX_SECONDS = 10;
const FSYNC_MAX_BYTES = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// The server's memory (Linux /proc)

export interface MemoryStatus {
  rss: number; // VmRSS, bytes
  hwm: number; // VmHWM, bytes: the peak RSS
}

export function readMemory(pid: number): MemoryStatus | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'latin1');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
    const status = { rss: field('VmRSS'), hwm: field('VmHWM') };
    return Number.isFinite(status.rss) && Number.isFinite(status.hwm) ? status : null;
  } catch {
    return null;
  }
}

/** Linux 4.0+: writing 5 to clear_refs resets VmHWM to the current RSS (own processes only). */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// The disk's raw fsync'd append rate

export interface FsyncResult {
  dir: string;
  appends: number;
  seconds: number;
  appendsPerSec: number;
  mibPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * One writer, no batching: append `size` bytes to a fresh file, fsync, repeat.
 * This is the ceiling for a server that fsyncs every message on its own.
 * Synchronous on purpose: nothing else runs meanwhile, and it is the
 * plainest measure of the disk.
 */
export function measureFsync(dir: string, size: number, count: number): FsyncResult {
  const appendsWanted = Math.max(FSYNC_MIN_APPENDS, Math.min(count, FSYNC_MAX_APPENDS));
  const data = printableLines(size);
  const file = join(dir, `.bench-smtp-fsync-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fd = openSync(file, 'a', 0o600); // O_APPEND, like an mbox
  const times: number[] = [];
  const started = performance.now();
  const stopAt = started + FSYNC_MAX_SECONDS * 1000;
  try {
    for (let written = 0; times.length < appendsWanted && written + size <= Math.max(size, FSYNC_MAX_BYTES); written += size) {
      const t = performance.now();
      if (t > stopAt) break;
      for (let done = 0; done < size; ) done += writeSync(fd, data, done, size - done);
      fsyncSync(fd);
      times.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
  const seconds = (performance.now() - started) / 1000;
  const sorted = times.toSorted((a, b) => a - b);
  return {
    dir,
    appends: times.length,
    seconds,
    appendsPerSec: times.length / seconds,
    mibPerSec: (times.length * size) / MiB / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export function median(values: number[]): number {
  return percentile(values.toSorted((a, b) => a - b), 0.5);
}
