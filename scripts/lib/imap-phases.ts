// bench-imap.ts's phases on sessions and fetches: the first SELECT (the
// server meets the mailbox for the first time and builds its index), later
// LOGIN+SELECT, FETCH 1:* (UID FLAGS RFC822.SIZE), 100 random bodies, and
// the 25 MiB message (time and the server's memory while it streams). The
// STORE phase is in imap-store-phase.ts, the IDLE phase in imap-idle.ts.
//
// Each phase opens its own sessions and closes them (LOGOUT) before it
// returns, so the next one starts from a server with no session open.
// Every loop has a count and the phase's deadline.

import { performance } from 'node:perf_hooks';
import { collectClientGarbage } from './client-gc.ts';
import { ImapError } from './imap-client.ts';
import type { ImapClient } from './imap-client.ts';
import { seededRandom } from './imap-mailbox.ts';
import { median } from './measure.ts';
import { cpuBetween, ioDelta, processTree, sampleRss, treeCpu, treeIo, treeMemory } from './proc-tree.ts';
import { factsOf, incomplete, openSession, phaseDeadline } from './imap-session.ts';
import type { BenchContext, MailboxFacts, Phase } from './imap-session.ts';
import { readMemory, resetPeak } from './measure.ts';

const LATER_SESSIONS = 20;
const FETCH_RUNS = 5;
const RANDOM_BODIES = 100;
/** Random bodies fetched, untimed, before the same measure is taken again with the server's code warm. */
const WARM_UP_BODIES = 2000;
/** The client stops reading for this long at the start of the slow-reader BODY[]. */
const SLOW_READER_PAUSE_MS = 2000;
const MiB = 1024 * 1024;
/** What this benchmark counts as "bounded memory" while a 25 MiB message streams. */
const BIG_BODY_GROWTH_LIMIT = 8 * MiB;

export const ms = (n: number) => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`);
export const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;

// ---------------------------------------------------------------------------

const firstSelect: Phase = {
  name: 'first-select',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const { client, timing } = await openSession(ctx.target, deadline);
    await client.logout(deadline);
    return [
      {
        label: 'first SELECT (fresh index)',
        figure: ms(timing.selectOnlyMs),
        target: '<= 1.0 s',
        met: timing.selectOnlyMs <= 1000,
        notes: [
          `SELECT INBOX: ${timing.exists} messages; connect+greeting ${ms(timing.greetingMs)}, LOGIN ${ms(timing.loginMs - timing.greetingMs)}, ` +
            `all of it ${ms(timing.selectMs)}`,
        ],
        json: { selectMs: timing.selectOnlyMs, loginMs: timing.loginMs - timing.greetingMs, totalMs: timing.selectMs, exists: timing.exists },
      },
    ];
  },
};

const laterSelect: Phase = {
  name: 'later-select',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const totals: number[] = [];
    const logins: number[] = [];
    const selects: number[] = [];
    const cpuBefore = ctx.serverPid ? treeCpu(ctx.serverPid) : null;
    for (let i = 0; i < LATER_SESSIONS && Date.now() < deadline; i++) {
      const { client, timing } = await openSession(ctx.target, deadline);
      totals.push(timing.selectMs);
      logins.push(timing.loginMs - timing.greetingMs);
      selects.push(timing.selectOnlyMs);
      await client.logout(deadline);
    }
    const m = median(totals);
    // The server's CPU per session (10 ms ticks, averaged): less noisy than wall time on a busy machine.
    const cpuPerSession = cpuBefore ? (cpuBetween(cpuBefore, treeCpu(ctx.serverPid!)) * 1000) / totals.length : null;
    return [
      {
        label: `later LOGIN+SELECT (median of ${totals.length})`,
        figure: ms(m),
        target: '<= 15 ms',
        met: m <= 15,
        notes: [
          `connect to SELECT's OK; medians: LOGIN ${ms(median(logins))}, SELECT ${ms(median(selects))}; ` +
            `min ${ms(Math.min(...totals))}, max ${ms(Math.max(...totals))}`,
          ...(cpuPerSession === null ? [] : [`the server's CPU time per session (LOGIN, SELECT, LOGOUT): ${ms(cpuPerSession)} on average`]),
        ],
        json: { medianMs: m, loginMs: median(logins), selectMs: median(selects), sessions: totals.length, serverCpuMsPerSession: cpuPerSession },
      },
    ];
  },
};

const fetchSizes: Phase = {
  name: 'fetch-sizes',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const { client, timing } = await openSession(ctx.target, deadline);
    try {
      const times: number[] = [];
      const reads: number[] = []; // bytes the server read() during each FETCH
      const cpu: number[] = []; // the server's CPU seconds for each FETCH (less noisy than wall time on a busy machine)
      let facts: MailboxFacts | null = null;
      const counts: number[] = [];
      for (let i = 0; i < FETCH_RUNS && Date.now() < deadline; i++) {
        const ioBefore = ctx.serverPid ? treeIo(ctx.serverPid) : null;
        const cpuBefore = ctx.serverPid ? treeCpu(ctx.serverPid) : null;
        const result = await client.ok('FETCH 1:* (UID FLAGS RFC822.SIZE)', deadline, { keepUntagged: i === 0 });
        times.push(result.ms);
        counts.push(result.untaggedCount);
        const io = ctx.serverPid ? ioDelta(ioBefore, treeIo(ctx.serverPid)) : null;
        if (io) reads.push(io.rchar);
        if (cpuBefore) cpu.push(cpuBetween(cpuBefore, treeCpu(ctx.serverPid!)));
        if (i === 0) facts = factsOf(result.untagged.map((r) => r.text), timing.exists);
      }
      ctx.mailbox = facts;
      const m = median(times);
      const total = facts!.sizes.reduce((a, b) => a + b, 0);
      const notes = [
        `${timing.exists} messages, ${(total / 1e6).toFixed(1)} MB by RFC822.SIZE; runs: ${times.map(ms).join(', ')}`,
        `largest message: #${facts!.bigSeq}, UID ${facts!.uids[facts!.bigSeq - 1]}, ${mib(facts!.sizes[facts!.bigSeq - 1])}`,
      ];
      if (reads.length > 0) {
        notes.push(
          `the server read() ${reads.map((r) => (r < 1e5 ? `${r} B` : mib(r))).join(', ')} during these runs (its socket included): ` +
            (Math.max(...reads) < total / 100 ? 'no message bodies' : 'it READ THE MAILBOX'),
        );
      }
      if (cpu.length > 0) notes.push(`the server's CPU time per run: ${cpu.map((c) => ms(c * 1000)).join(', ')} (10 ms ticks)`);
      const missing = incomplete(facts!);
      if (missing > 0 || counts.some((c) => c < timing.exists)) notes.push(`CHECK FAILED: ${missing} messages without UID or size; responses per run ${counts.join(', ')}`);
      return [
        {
          label: `FETCH 1:* (UID FLAGS RFC822.SIZE) (median of ${times.length})`,
          figure: ms(m),
          target: '<= 60 ms',
          met: m <= 60,
          notes,
          json: { medianMs: m, runsMs: times, serverReadBytes: reads, serverCpuMs: cpu.map((c) => c * 1000) },
        },
      ];
    } finally {
      await client.logout(deadline);
    }
  },
};

/** The mailbox's UIDs and sizes, from the fetch-sizes phase or, if it was skipped, one FETCH now. */
async function mailboxFacts(ctx: BenchContext, deadline: number): Promise<MailboxFacts> {
  if (ctx.mailbox) return ctx.mailbox;
  const { client, timing } = await openSession(ctx.target, deadline);
  try {
    const result = await client.ok('FETCH 1:* (UID RFC822.SIZE)', deadline, { keepUntagged: true });
    ctx.mailbox = factsOf(result.untagged.map((r) => r.text), timing.exists);
    return ctx.mailbox;
  } finally {
    await client.logout(deadline);
  }
}

// The figure of the issue is the first 100 bodies a freshly started server
// sends. A server in V8 runs its code for the first time slowly (compiled
// on first use, then interpreted until it proves hot), so the same measure
// is taken again after WARM_UP_BODIES more: how it answers once it has been
// running a while. A server in C (Dovecot) shows no such difference.
const randomBodies: Phase = {
  name: 'random-bodies',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const facts = await mailboxFacts(ctx, deadline);
    const random = seededRandom(42);
    const { client } = await openSession(ctx.target, deadline);
    collectClientGarbage(); // (mailboxFacts may just have read 50,000 responses)
    try {
      const first = await fetchRandomBodies(client, facts, random, RANDOM_BODIES, deadline);
      let warmUpWrong = 0;
      for (let left = WARM_UP_BODIES; left > 0 && Date.now() < deadline; left -= 100) warmUpWrong += (await fetchRandomBodies(client, facts, random, Math.min(100, left), deadline)).wrongSize;
      collectClientGarbage();
      const warm = await fetchRandomBodies(client, facts, random, RANDOM_BODIES, deadline);
      if (warmUpWrong > 0) warm.notes.push(`CHECK FAILED: ${warmUpWrong} bodies of the warm-up differ in size from their RFC822.SIZE`);
      return [
        {
          label: `${first.done} random UID FETCH n BODY.PEEK[] (total)`,
          figure: ms(first.total),
          target: '<= 40 ms',
          met: first.total <= 40,
          notes: first.notes,
          json: { totalMs: first.total, messages: first.done, bytes: first.bytes, wrongSize: first.wrongSize },
        },
        {
          label: `  the same after ${WARM_UP_BODIES.toLocaleString('en')} more (code warm)`,
          figure: ms(warm.total),
          target: '',
          met: null,
          notes: warm.notes,
          json: { totalMs: warm.total, messages: warm.done, bytes: warm.bytes, wrongSize: warm.wrongSize },
        },
      ];
    } finally {
      await client.logout(deadline);
    }
  },
};

/** `count` random bodies (never the 25 MiB one), one command at a time: the total of their times, and checks. */
async function fetchRandomBodies(client: ImapClient, facts: MailboxFacts, random: () => number, count: number, deadline: number) {
  let total = 0;
  let bytes = 0;
  let wrongSize = 0;
  let done = 0;
  const started = performance.now();
  for (; done < count && Date.now() < deadline; done++) {
    let seq = 1 + Math.floor(random() * facts.exists);
    if (seq === facts.bigSeq) seq = seq === 1 ? 2 : seq - 1; // not the 25 MiB one
    const result = await client.ok(`UID FETCH ${facts.uids[seq - 1]} BODY.PEEK[]`, deadline);
    total += result.ms;
    bytes += result.literalBytes;
    if (result.literalBytes !== facts.sizes[seq - 1]) wrongSize++;
  }
  const wall = performance.now() - started;
  const notes = [done > 0 ? `${done} messages, ${(bytes / 1e6).toFixed(2)} MB; ${ms(total / done)} each on average; wall time ${ms(wall)}` : 'none fetched: the phase\'s time ran out'];
  if (wrongSize > 0) notes.push(`CHECK FAILED: ${wrongSize} bodies differ in size from their RFC822.SIZE`);
  return { total, bytes, wrongSize, done, notes };
}

// ---------------------------------------------------------------------------
// The big message: once read as fast as the client can, once with the
// client not reading for SLOW_READER_PAUSE_MS first. A server that streams
// waits for the socket (back-pressure); one that does not holds the rest of
// the message in memory meanwhile, and its RSS shows it.

interface BigFetch {
  ms: number;
  bytes: number;
  /** Peak RSS of the server's tree during the fetch, less before it. */
  growth: number | null;
}

async function fetchBig(ctx: BenchContext, uid: number, item: string, pauseMs: number, deadline: number): Promise<BigFetch> {
  const { client } = await openSession(ctx.target, deadline);
  try {
    const pid = ctx.serverPid;
    // One process (this project's server): the kernel's own peak, VmHWM, reset
    // first; a tree (Dovecot): the sum of RSS, polled.
    const single = pid !== null && processTree(pid).length === 1 && resetPeak(pid);
    const before = pid === null ? null : treeMemory(pid, false).rss;
    const sampler = pid === null ? null : sampleRss(pid);
    const started = performance.now();
    const tag = client.send(`UID FETCH ${uid} ${item}`);
    if (pauseMs > 0) {
      client.socket.pause();
      await new Promise((done) => setTimeout(done, pauseMs));
      client.socket.resume();
    }
    const result = await client.finish(tag, started, deadline);
    if (result.status !== 'OK') throw new ImapError(`UID FETCH ${uid} ${item}: ${result.status} ${result.text}`);
    const polled = sampler?.stop() ?? null;
    const peak = single ? (readMemory(pid!)?.hwm ?? polled) : polled;
    return { ms: result.ms, bytes: result.literalBytes, growth: peak === null || before === null ? null : peak - before };
  } finally {
    await client.logout(deadline);
  }
}

const bigBody: Phase = {
  name: 'big-body',
  freshServer: true,
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const facts = await mailboxFacts(ctx, deadline);
    const uid = facts.uids[facts.bigSeq - 1];
    const size = facts.sizes[facts.bigSeq - 1];
    const fast = await fetchBig(ctx, uid, 'BODY[]', 0, deadline);
    await ctx.restartServer?.(); // the slow reader on a fresh heap too
    const slow = await fetchBig(ctx, uid, 'BODY.PEEK[]', SLOW_READER_PAUSE_MS, deadline);
    const growth = (g: number | null) => (g === null ? 'unknown (no server pid)' : mib(g));
    const worst = Math.max(fast.growth ?? 0, slow.growth ?? 0);
    const notes = [
      `UID ${uid}, ${mib(size)}: ${((fast.bytes / MiB) / (fast.ms / 1000)).toFixed(0)} MiB/s; server RSS growth ${growth(fast.growth)}`,
      `client not reading for the first ${SLOW_READER_PAUSE_MS / 1000} s (BODY.PEEK[]): ${ms(slow.ms)}, server RSS growth ${growth(slow.growth)}`,
    ];
    if (fast.bytes !== size || slow.bytes !== size) notes.push(`CHECK FAILED: literal of ${fast.bytes} / ${slow.bytes} octets, RFC822.SIZE ${size}`);
    return [
      {
        label: `BODY[] of the ${mib(size)} message`,
        figure: `${ms(fast.ms)}, +${growth(fast.growth)}`,
        target: `bounded (< ${mib(BIG_BODY_GROWTH_LIMIT)} RSS)`,
        met: fast.growth === null ? null : worst < BIG_BODY_GROWTH_LIMIT,
        notes,
        json: { uid, size, ms: fast.ms, rssGrowth: fast.growth, slowReaderMs: slow.ms, slowReaderRssGrowth: slow.growth },
      },
    ];
  },
};

export const FETCH_PHASES: Phase[] = [firstSelect, laterSelect, fetchSizes, randomBodies, bigBody];
