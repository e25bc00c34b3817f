// bench-imap.ts's STORE phase: what one flag change on one message of a
// 50,000-message folder costs. The issue asks that it not rewrite the whole
// index (this project appends a line to .INBOX.flags; Dovecot appends to
// dovecot.index.log). Measured three ways:
// - the time from STORE to its tagged OK (the first, and the median of
//   STORE_RUNS on different messages);
// - the files of the mailbox's directory (--index-dir: the mbox, the index
//   and its journal; recursively, so Dovecot's .imap/ is included) before
//   and after: size, mtime and inode, so an append, an in-place write and a
//   rewrite (a new file renamed over the old one: a new inode) tell apart;
//   looked at right after the OK, and again after LOGOUT (Dovecot writes
//   mbox headers lazily, when the mailbox is closed);
// - the bytes the server's processes passed to write() meanwhile
//   (/proc/PID/io wchar; the reply and log lines count too).

import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { median } from './measure.ts';
import { ioDelta, treeIo } from './proc-tree.ts';
import { openSession, phaseDeadline } from './imap-session.ts';
import type { Phase } from './imap-session.ts';
import { ms } from './imap-phases.ts';

const STORE_RUNS = 20;
const SETTLE_MS = 500;
/** A write of more than this per STORE means more than a journal line. */
const WRITE_LIMIT = 64 * 1024;
const MAX_FILES = 10_000;

interface FileState {
  size: number;
  mtimeMs: number;
  ino: number;
}

function snapshot(dir: string): Map<string, FileState> {
  const files = new Map<string, FileState>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (files.size >= MAX_FILES) return;
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        try {
          const s = statSync(path);
          files.set(relative(dir, path), { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino });
        } catch {
          // gone meanwhile (a lock file)
        }
      }
    }
  };
  walk(dir);
  return files;
}

/** "dovecot.index.log +96 B", ".INBOX.index rewritten (new file, 2.1 MB)", "x.lock new". */
function changes(before: Map<string, FileState>, after: Map<string, FileState>): { lines: string[]; rewritten: string[] } {
  const lines: string[] = [];
  const rewritten: string[] = [];
  for (const [name, now] of after) {
    const was = before.get(name);
    if (!was) lines.push(`${name} new (${now.size} B)`);
    else if (was.ino !== now.ino) {
      lines.push(`${name} REWRITTEN (new file, ${now.size} B, was ${was.size} B)`);
      rewritten.push(name);
    } else if (was.size !== now.size) lines.push(`${name} ${now.size > was.size ? '+' : ''}${now.size - was.size} B (now ${now.size} B)`);
    else if (was.mtimeMs !== now.mtimeMs) lines.push(`${name} written in place (${now.size} B)`);
  }
  for (const name of before.keys()) if (!after.has(name)) lines.push(`${name} removed`);
  return { lines, rewritten };
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export const STORE_PHASE: Phase = {
  name: 'store',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const { client, timing } = await openSession(ctx.target, deadline);
    const dir = ctx.indexDir;
    const pid = ctx.serverPid;
    const exists = timing.exists;
    // Messages away from the start and from the big one (the middle).
    const seqs = Array.from({ length: STORE_RUNS }, (_, i) => 1 + Math.floor((exists * (i + 1)) / (STORE_RUNS + 3)));
    const start = dir ? snapshot(dir) : null;
    const ioStart = pid ? treeIo(pid) : null;
    const times: number[] = [];
    let firstWrite: number | null = null;
    let firstChanges: string[] = [];
    let rewrittenOnce: string[] = [];
    try {
      for (const seq of seqs) {
        if (Date.now() >= deadline) break;
        const before = times.length === 0 && dir ? snapshot(dir) : null;
        const io = pid && times.length === 0 ? treeIo(pid) : null;
        const result = await client.ok(`STORE ${seq} +FLAGS (\\Flagged)`, deadline);
        times.push(result.ms);
        if (times.length === 1) {
          await sleep(SETTLE_MS); // a write that follows the reply counts too
          firstWrite = pid ? (ioDelta(io, treeIo(pid))?.wchar ?? null) : null;
          if (before) ({ lines: firstChanges, rewritten: rewrittenOnce } = changes(before, snapshot(dir!)));
        }
      }
    } finally {
      await client.logout(deadline);
    }
    await sleep(SETTLE_MS);
    const ioAll = pid ? ioDelta(ioStart, treeIo(pid)) : null;
    const afterLogout = start ? changes(start, snapshot(dir!)) : null;
    const rewritten = [...new Set([...rewrittenOnce, ...(afterLogout?.rewritten ?? [])])];

    const notes = [
      `STORE n +FLAGS (\\Flagged): first ${ms(times[0])}, median ${ms(median(times))} over ${times.length} messages`,
      firstWrite === null ? 'bytes written: unknown (no server pid)' : `the first STORE: the server wrote ${firstWrite} B (write() calls, reply and log included)`,
    ];
    if (start) notes.push(`files after the first STORE: ${firstChanges.join('; ') || 'no change'}`);
    if (afterLogout) notes.push(`files after ${times.length} STOREs and LOGOUT: ${afterLogout.lines.join('; ') || 'no change'}`);
    if (ioAll) notes.push(`all ${times.length} STOREs and LOGOUT: the server wrote ${ioAll.wchar} B, ${(ioAll.wchar / times.length).toFixed(0)} B per STORE`);
    const known = firstWrite !== null || start !== null;
    const met = known ? rewritten.length === 0 && (firstWrite === null || firstWrite <= WRITE_LIMIT) : null;
    return [
      {
        label: 'STORE +FLAGS on one message',
        figure: `${ms(times[0])}, ${firstWrite === null ? '?' : `${firstWrite} B`} written`,
        target: 'no index rewrite',
        met,
        notes,
        json: { firstMs: times[0], medianMs: median(times), firstWriteBytes: firstWrite, totalWriteBytes: ioAll?.wchar ?? null, rewritten, stores: times.length },
      },
    ];
  },
};
