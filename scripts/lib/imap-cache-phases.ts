// bench-imap.ts's phases for part 2 of the issue: what a client's message
// list and its searches cost on a big folder.
//   envelope-first  FETCH 1:* (ENVELOPE) on a restarted server: the first
//                   time, when every header must be read and parsed
//   envelope-later  the same again, median of 3 (a server that caches the
//                   parsed ENVELOPE, as Dovecot's dovecot.index.cache does,
//                   answers without parsing); the responses must be the same
//   search-first    SEARCH FROM "someone" on a restarted server (about 1% of
//                   the messages are from someone@example.net)
//   search-later    the same again, median of 5
//   search-body     SEARCH BODY of a word no message holds: every text part
//                   is decoded and looked at; the bytes the server read()
//                   beside the mailbox's size show whether it read each
//                   message at most once
//   changedsince    10 messages flagged, then FETCH 1:* (FLAGS)
//                   (CHANGEDSINCE m) with m the HIGHESTMODSEQ from before
//                   (RFC 7162 3.1.4), median of 5: only those 10 come back
// "first" means the first time the server is asked this of the mailbox,
// not the first time the process sees it (the index is built already).

import { createHash } from 'node:crypto';
import { ImapError } from './imap-client.ts';
import type { CommandResult } from './imap-client.ts';
import { median } from './measure.ts';
import { ioDelta, treeIo } from './proc-tree.ts';
import { openSession, phaseDeadline } from './imap-session.ts';
import type { BenchContext, Phase, Row } from './imap-session.ts';
import { mib, ms } from './imap-phases.ts';

const LATER_ENVELOPE_RUNS = 3;
const LATER_SEARCH_RUNS = 5;
const CHANGEDSINCE_RUNS = 5;
const CHANGES = 10;
/** In no message of the benchmark's mailbox (imap-mailbox.ts's words are all lower case English and Latin). */
const ABSENT_WORD = 'xylophone';
/** Above this share of the mailbox read for one SEARCH BODY, some message was read twice. */
const ONCE_SHARE = 1.05;

/** One timed command; the server's read() bytes meanwhile (its socket included) if its pid is known. */
async function timed(ctx: BenchContext, command: string, deadline: number, client: Awaited<ReturnType<typeof openSession>>['client'], keep = false): Promise<{ result: CommandResult; readBytes: number | null }> {
  const before = ctx.serverPid ? treeIo(ctx.serverPid) : null;
  const result = await client.ok(command, deadline, { keepUntagged: keep });
  const io = ctx.serverPid ? ioDelta(before, treeIo(ctx.serverPid)) : null;
  return { result, readBytes: io ? io.rchar : null };
}

/** A digest of the untagged responses, to see that two runs answered the same. */
function digest(result: CommandResult): string {
  const hash = createHash('sha1');
  for (const response of result.untagged) hash.update(response.text).update('\n');
  return hash.digest('hex').slice(0, 12);
}

function row(label: string, figureMs: number, targetMs: number, notes: string[], json: Record<string, unknown>): Row {
  return { label, figure: ms(figureMs), target: `<= ${ms(targetMs)}`, met: figureMs <= targetMs, notes, json };
}

// The first and the later runs of one command share a session each; the
// later phase compares its answer with the first one's (kept here).
const firstAnswers = new Map<string, { digest: string; count: number }>();

function repeated(name: string, command: string, label: string, targetMs: number, runs: number): Phase {
  return {
    name,
    async run(ctx) {
      const deadline = phaseDeadline(ctx);
      const { client, timing } = await openSession(ctx.target, deadline);
      try {
        const times: number[] = [];
        const answers = new Set<string>();
        let count = 0;
        for (let i = 0; i < runs && Date.now() < deadline; i++) {
          const { result } = await timed(ctx, command, deadline, client, i === 0); // the first run's answer is compared
          times.push(result.ms);
          if (i === 0) answers.add(digest(result));
          count = result.untaggedCount;
        }
        const m = median(times);
        const notes = [`${timing.exists} messages, ${count} untagged responses; runs: ${times.map(ms).join(', ')}`];
        const first = firstAnswers.get(command);
        if (first && !answers.has(first.digest)) notes.push(`CHECK FAILED: not the answer of the first run (${first.count} responses)`);
        else if (first) notes.push('the same answer as the first run');
        return [row(label.replace('%n', String(times.length)), m, targetMs, notes, { medianMs: m, runsMs: times, responses: count })];
      } finally {
        await client.logout(deadline);
      }
    },
  };
}

function firstTime(name: string, command: string, label: string, targetMs: number): Phase {
  return {
    name,
    freshServer: true,
    async run(ctx) {
      const deadline = phaseDeadline(ctx);
      const { client, timing } = await openSession(ctx.target, deadline);
      try {
        const { result, readBytes } = await timed(ctx, command, deadline, client, true);
        firstAnswers.set(command, { digest: digest(result), count: result.untaggedCount });
        const notes = [`${timing.exists} messages, ${result.untaggedCount} untagged responses`];
        if (readBytes !== null) notes.push(`the server read() ${mib(readBytes)} meanwhile (its socket included)`);
        if (command.startsWith('FETCH') && result.untaggedCount < timing.exists) notes.push(`CHECK FAILED: ${result.untaggedCount} responses for ${timing.exists} messages`);
        return [row(label, result.ms, targetMs, notes, { ms: result.ms, responses: result.untaggedCount, serverReadBytes: readBytes })];
      } finally {
        await client.logout(deadline);
      }
    },
  };
}

const ENVELOPE = 'FETCH 1:* (ENVELOPE)';
const SEARCH_FROM = 'SEARCH FROM "someone"';

const searchBody: Phase = {
  name: 'search-body',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const { client, timing } = await openSession(ctx.target, deadline);
    try {
      // The mailbox's size by RFC822.SIZE (CRLF line ends: a little above the bytes stored).
      const sizes = await client.ok('FETCH 1:* (RFC822.SIZE)', deadline, { keepUntagged: true });
      let total = 0;
      for (const r of sizes.untagged) total += Number(/RFC822\.SIZE (\d+)/i.exec(r.text)?.[1] ?? 0);
      const { result, readBytes } = await timed(ctx, `SEARCH BODY "${ABSENT_WORD}"`, deadline, client, true);
      const found = result.untagged.find((r) => /^\* SEARCH\b/i.test(r.text))?.text.replace(/^\* SEARCH ?/i, '').trim() ?? '';
      const notes = [`${timing.exists} messages, ${(total / 1e6).toFixed(1)} MB by RFC822.SIZE; found: ${found === '' ? 'none' : found.split(' ').length}`];
      let met: boolean | null = null;
      if (readBytes !== null) {
        met = readBytes <= total * ONCE_SHARE;
        notes.push(`the server read() ${mib(readBytes)} (${((100 * readBytes) / total).toFixed(0)}% of the mailbox): ${met ? 'each message at most once' : 'SOME MESSAGES MORE THAN ONCE'}`);
      }
      if (found !== '') notes.push(`CHECK FAILED: "${ABSENT_WORD}" is in no message`);
      return [
        {
          label: `SEARCH BODY "${ABSENT_WORD}" (every message)`,
          figure: `${ms(result.ms)}, ${readBytes === null ? '?' : mib(readBytes)} read`,
          target: 'read each message at most once',
          met,
          notes,
          json: { ms: result.ms, serverReadBytes: readBytes, mailboxBytes: total },
        },
      ];
    } finally {
      await client.logout(deadline);
    }
  },
};

const changedSince: Phase = {
  name: 'changedsince',
  async run(ctx) {
    const deadline = phaseDeadline(ctx);
    const { client } = await openSession(ctx.target, deadline, false);
    try {
      const selected = await client.ok('SELECT INBOX (CONDSTORE)', deadline, { keepUntagged: true });
      const exists = Number(selected.untagged.map((r) => /^\* (\d+) EXISTS/i.exec(r.text)?.[1]).find((n) => n !== undefined) ?? 0);
      const modseqText = selected.untagged.map((r) => /HIGHESTMODSEQ (\d+)/i.exec(r.text)?.[1]).find((n) => n !== undefined);
      if (modseqText === undefined || exists < CHANGES) throw new ImapError('SELECT (CONDSTORE) gave no HIGHESTMODSEQ, or too few messages');
      // Ten messages spread over the mailbox, changed by one STORE (one change each).
      const seqs = Array.from({ length: CHANGES }, (_, i) => 1 + Math.floor((exists * (2 * i + 1)) / (2 * CHANGES)));
      await client.ok(`STORE ${seqs.join(',')} +FLAGS.SILENT (\\Answered)`, deadline);
      const times: number[] = [];
      const counts: number[] = [];
      for (let i = 0; i < CHANGEDSINCE_RUNS && Date.now() < deadline; i++) {
        const result = await client.ok(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseqText})`, deadline);
        times.push(result.ms);
        counts.push(result.untaggedCount);
      }
      const m = median(times);
      const notes = [`${exists} messages, HIGHESTMODSEQ ${modseqText} before the STORE; runs: ${times.map(ms).join(', ')}`];
      if (counts.some((c) => c !== CHANGES)) notes.push(`CHECK FAILED: responses per run ${counts.join(', ')}, expected ${CHANGES}`);
      return [row(`FETCH CHANGEDSINCE m, ${CHANGES} changed (median of ${times.length})`, m, 20, notes, { medianMs: m, runsMs: times })];
    } finally {
      await client.logout(deadline);
    }
  },
};

export const CACHE_PHASES: Phase[] = [
  firstTime('envelope-first', ENVELOPE, `${ENVELOPE} the first time`, 1000),
  repeated('envelope-later', ENVELOPE, `${ENVELOPE} later (median of %n)`, 300, LATER_ENVELOPE_RUNS),
  firstTime('search-first', SEARCH_FROM, `${SEARCH_FROM} the first time`, 1000),
  repeated('search-later', SEARCH_FROM, `${SEARCH_FROM} later (median of %n)`, 100, LATER_SEARCH_RUNS),
  searchBody,
  changedSince,
];
