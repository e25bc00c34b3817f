// A small tmpfs for the tests that need a really full disk (ENOSPC).
//
// Mounting needs root, and even root may be refused (a container without
// CAP_SYS_ADMIN, a seccomp profile, no `mount` program). Whether `mount`
// exists says nothing about that, so the probe really mounts a tiny tmpfs
// on a temporary directory and unmounts it; a test that needs one skips
// with the probe's reason instead of failing.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeAllStamps } from '../../src/store/dotlock-stamp.ts';

/** Mounts a tmpfs of `size` (mount's syntax: "1m") on `dir`; null on success, else why not. */
export function mountTmpfs(dir: string, size: string): string | null {
  const run = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' });
  if (run.error) return `cannot run mount: ${run.error.message}`;
  if (run.status !== 0) return `mount -t tmpfs failed: ${(run.stderr || `exit ${run.status}`).trim()}`;
  return null;
}

/** Unmounts `dir`; throws if that fails (a test must not leave a mount behind unnoticed). */
export function unmountTmpfs(dir: string): void {
  removeAllStamps(); // (this process's dot-lock stamps hold files open on it)
  const run = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (run.error || run.status !== 0) throw new Error(`umount ${dir} failed: ${run.error?.message ?? run.stderr.trim()}`);
}

let probed: string | false | undefined;

/**
 * false if this process can mount a tmpfs, else the reason it cannot,
 * ready for `test(name, { skip: tmpfsUnavailable() }, ...)`. Probed once.
 */
export function tmpfsUnavailable(): string | false {
  if (probed !== undefined) return probed;
  if (process.getuid?.() !== 0) return (probed = 'needs root to mount a small tmpfs');
  const dir = mkdtempSync(join(tmpdir(), 'jjordan-tmpfs-probe-'));
  try {
    const failed = mountTmpfs(dir, '64k');
    if (failed) return (probed = `cannot mount a tmpfs here (${failed})`);
    unmountTmpfs(dir);
    return (probed = false);
  } finally {
    rmdirSync(dir);
  }
}
