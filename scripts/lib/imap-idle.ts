// bench-imap.ts's IDLE phase: --idle-sessions sessions (1,000 by default)
// each logged in, with INBOX selected and in IDLE (RFC 2177), and what they
// cost the server: its memory (the whole process tree: Dovecot runs one
// process per session) before the first session, with one idling (the
// mailbox is then loaded, which is not a per-session cost), and with all of
// them; the per-session figure is the growth from one to all, divided.
//
// Then one more session flags a message, and the benchmark counts how many
// idling sessions were told (an untagged FETCH, RFC 3501 7.4.2) and how
// soon: the point of IDLE.
//
// Sessions are opened one after another, not at once: this project's login
// throttle (auth/throttle.ts) counts a login in flight as a failure until its
// password is checked, so five first logins at once from one address wait
// about 0, 1, 2, 4 and 8 s (once a password is cached, they do not wait).

import { performance } from 'node:perf_hooks';
import type { ImapClient } from './imap-client.ts';
import { openSession, phaseDeadline } from './imap-session.ts';
import type { Phase } from './imap-session.ts';
import { treeMemory } from './proc-tree.ts';
import type { TreeMemory } from './proc-tree.ts';
import { mib, ms } from './imap-phases.ts';

/** Time for the server to settle (timers, lazy frees) before memory is read. */
const SETTLE_MS = 2000;
// Dovecot tells idlers at once through inotify, but falls back to a check
// every 30 s (mailbox_idle_check_interval) for sessions past the user's
// inotify limit (fs.inotify.max_user_instances, 128 by default).
const NOTIFY_WAIT_MS = 35_000;
const CLOSE_BATCH = 50;
const KiB = 1024;
const MB = 1_000_000;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function memoryLine(m: TreeMemory): string {
  const pss = m.pss === null ? '' : `, PSS ${mib(m.pss)}`;
  return `RSS ${mib(m.rss)}${pss} in ${m.processes} process${m.processes === 1 ? '' : 'es'}`;
}

/**
 * The figure that compares: for one process its RSS; for a tree of them
 * (Dovecot) the sum of PSS, where each shared page (libraries, the
 * executable) counts once in all, not once per process.
 */
const fair = (m: TreeMemory) => (m.processes > 1 && m.pss !== null ? m.pss : m.rss);

interface Idler {
  client: ImapClient;
  tag: string;
  /** performance.now() of the first untagged response after the flag change; 0: none yet. */
  toldAt: number;
}

export const IDLE_PHASE: Phase = {
  name: 'idle',
  freshServer: true,
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const notes: string[] = [];
    const pid = ctx.serverPid;
    const idlers: Idler[] = [];
    let watching = false;
    const memory = (): TreeMemory | null => (pid === null ? null : treeMemory(pid));
    try {
      await sleep(SETTLE_MS);
      const before = memory();
      const openStarted = performance.now();
      let one: TreeMemory | null = null;
      let failure: string | null = null;
      while (idlers.length < ctx.idleSessions && Date.now() < deadline) {
        try {
          const { client } = await openSession(ctx.target, deadline);
          const idler: Idler = { client, tag: '', toldAt: 0 };
          client.onUntagged = () => {
            if (watching && idler.toldAt === 0) idler.toldAt = performance.now();
          };
          idler.tag = await client.idle(deadline);
          idlers.push(idler);
        } catch (err) {
          failure = `session ${idlers.length + 1} failed: ${(err as Error).message}`;
          break;
        }
        if (idlers.length === 1) {
          await sleep(SETTLE_MS);
          one = memory();
        }
      }
      const openMs = performance.now() - openStarted;
      await sleep(SETTLE_MS);
      const all = memory();
      const n = idlers.length;
      notes.push(`${n} sessions logged in, INBOX selected, in IDLE, opened one after another in ${ms(openMs)}`);
      if (failure) notes.push(`STOPPED: ${failure}`);
      if (before && one && all) {
        notes.push(`server before: ${memoryLine(before)}`);
        notes.push(`one session idling: ${memoryLine(one)}`);
        notes.push(`${n} sessions idling: ${memoryLine(all)}`);
      }

      // One more session flags message 1; every idler should hear of it.
      watching = true;
      const changer = await openSession(ctx.target, deadline);
      const sent = performance.now();
      await changer.client.ok('STORE 1 +FLAGS (\\Answered)', deadline);
      await changer.client.logout(deadline);
      const waitUntil = Math.min(deadline, Date.now() + NOTIFY_WAIT_MS);
      while (idlers.some((i) => i.toldAt === 0) && Date.now() < waitUntil) await sleep(20);
      const told = idlers.filter((i) => i.toldAt > 0).map((i) => i.toldAt - sent);
      notes.push(
        `a flag change by another session reached ${told.length} of ${n} idlers` +
          (told.length > 0 ? `, the last after ${ms(Math.max(...told))}` : '') +
          ` (waited up to ${NOTIFY_WAIT_MS / 1000} s)`,
      );

      if (all) notes.push(`growth figures: ${all.processes > 1 && all.pss !== null ? 'sums of PSS over the processes' : 'RSS'}`);
      const growth = all && before ? fair(all) - fair(before) : null;
      const perSession = all && one && n > 1 ? (fair(all) - fair(one)) / (n - 1) : null;
      return [
        {
          label: `${n} sessions in IDLE: growth (per session)`,
          figure: growth === null ? 'unknown (no server pid)' : `${(growth / MB).toFixed(1)} MB (${perSession === null ? '?' : (perSession / KiB).toFixed(1)} KiB)`,
          target: '<= 40 MB (<= 40 KiB)',
          met: growth === null || perSession === null ? null : growth <= 40 * MB && perSession <= 40 * KiB && n === ctx.idleSessions,
          notes,
          json: {
            sessions: n,
            openMs,
            before,
            one,
            all,
            growthBytes: growth,
            perSessionBytes: perSession,
            told: told.length,
            lastToldMs: told.length ? Math.max(...told) : null,
          },
        },
      ];
    } finally {
      // DONE and LOGOUT, some at a time; whatever does not answer in time is cut.
      const closeBy = Date.now() + 30_000;
      for (let i = 0; i < idlers.length; i += CLOSE_BATCH) {
        await Promise.all(
          idlers.slice(i, i + CLOSE_BATCH).map(async ({ client, tag }) => {
            try {
              client.sendLine('DONE');
              await client.finish(tag, performance.now(), Math.min(closeBy, Date.now() + 5000));
            } catch {
              // cut below
            }
            await client.logout(Math.min(closeBy, Date.now() + 5000));
          }),
        );
      }
    }
  },
};
