// The table bench-budget.ts prints: one row per figure of the issue "a small
// board's budget", one column per server measured (before, after, Dovecot/
// Postfix, and with --floor the floors: Node alone and the server's modules
// loaded for the rest row, scripts/lib/floor-pop3.ts and floor-smtp.ts for
// the POP3 and SMTP rows),
// every repeat shown, and whether "after" meets the target. Then the same as
// one JSON line. MB here are MiB (what /proc's kB / 1024 give).

import type { GrowthResult, RestFloor, RestResult } from './budget-phases.ts';

export interface Rate {
  perSec: number;
  /** Server CPU (its whole process tree) per message, in microseconds. */
  cpuUs: number | null;
  /** CPU seconds of other processes during the run, and the run's length: the noise. */
  others: number | null;
  seconds: number | null;
}

export interface Figures {
  rest?: RestResult[];
  restFloor?: RestFloor[];
  restDovecot?: number;
  restPostfix?: number;
  growth?: GrowthResult;
  burstMiB?: number[];
  idleKiB?: number[];
  pop3Serial?: Rate[];
  pop3Pipelined?: Rate[];
  /** The same downloads again in a new session: the server's code warm. */
  pop3SerialAgain?: Rate[];
  pop3PipelinedAgain?: Rate[];
  smtpOne?: Rate[];
  smtpTen?: Rate[];
}

export interface Column {
  label: string;
  figures: Figures;
}

/**
 * The columns of several rounds as one (bench-budget --interleave): each
 * column's lists of figures joined, in the order taken; a single figure
 * (the growth run, the peers' memory at rest) kept from the round that took it.
 */
export function mergeColumns(earlier: Column[], round: Column[]): Column[] {
  const merged = earlier.map((column) => ({ label: column.label, figures: { ...column.figures } }));
  for (const column of round) {
    const into = merged.find((c) => c.label === column.label);
    if (!into) {
      merged.push({ label: column.label, figures: { ...column.figures } });
      continue;
    }
    const figures = into.figures as Record<string, unknown>;
    for (const [key, value] of Object.entries(column.figures)) {
      const held = figures[key];
      figures[key] = Array.isArray(held) && Array.isArray(value) ? [...held, ...value] : (held ?? value);
    }
  }
  return merged;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const list = (values: number[], digits = 0) => values.map((v) => v.toFixed(digits)).join(' / ');

function rates(values: Rate[] | undefined): string {
  if (!values?.length) return '-';
  const noise = values.map((r) => (r.others !== null && r.seconds ? `${Math.round((100 * r.others) / (r.seconds * 2))}%` : '?'));
  const cpu = values.map((r) => (r.cpuUs === null ? '?' : r.cpuUs.toFixed(0)));
  return `${list(values.map((r) => r.perSec))} msg/s (server CPU ${cpu.join(' / ')} us/msg; others busy ${noise.join(' / ')})`;
}

function growthPerMessage(growth: GrowthResult): number | null {
  const [first, , last] = growth.points;
  if (!first || !last || last.delivered === first.delivered) return null;
  return ((last.rssMiB - first.rssMiB) * 1024 * 1024) / (last.delivered - first.delivered);
}

function growthText(growth: GrowthResult | undefined): string {
  if (!growth) return '-';
  const per = growthPerMessage(growth);
  const curve = growth.points
    .map((p) => `${p.delivered}: RSS ${p.rssMiB.toFixed(1)}, heap ${p.heapUsedMiB?.toFixed(1) ?? '?'}/${p.heapTotalMiB?.toFixed(1) ?? '?'}`)
    .join('; ');
  return `${per === null ? '?' : `${(per / 1024).toFixed(3)} KiB/msg`} (MB after ${curve})`;
}

function restText(figures: Figures): string {
  if (figures.restFloor?.length) {
    const floor = figures.restFloor;
    return `node alone ${list(floor.map((f) => f.node), 1)} MB, the server's modules imported, nothing started ${list(floor.map((f) => f.imported), 1)} MB`;
  }
  if (figures.restDovecot !== undefined || figures.restPostfix !== undefined) {
    return `Dovecot ${figures.restDovecot?.toFixed(1) ?? '-'} MB, Postfix ${figures.restPostfix?.toFixed(1) ?? '-'} MB (all processes)`;
  }
  const rest = figures.rest;
  if (!rest?.length) return '-';
  const relay = (values: (number | null)[]) => values.map((v) => (v === null ? '?' : v.toFixed(1))).join(' / ');
  return (
    `server ${list(rest.map((r) => r.server), 1)} MB, relay ${relay(rest.map((r) => r.relay))} MB` +
    ` (first start: ${list(rest.map((r) => r.coldServer), 1)} / ${relay(rest.map((r) => r.coldRelay))})`
  );
}

const FLOOR = 'floor:';
/** The issue's targets (MiB, messages per second, a ratio), checked in verdicts() and against the floors. */
const TARGET = { serverRestMiB: 64, relayRestMiB: 56, smtpPerSec: 5000, tenMailboxes: 0.8 };
const meanRate = (values: Rate[] | undefined) => (values?.length ? mean(values.map((r) => r.perSec)) : null);

/**
 * What the floors say about a rate row: each floor's rate, and this server's
 * share of the last one's (bench-budget lists them from the least work to
 * the same guarantees as this server).
 */
function floorNote(after: Rate[] | undefined, floors: Column[], row: 'pop3Serial' | 'pop3Pipelined' | 'smtpOne' | 'smtpTen'): string {
  const parts: string[] = [];
  let last: { label: string; rate: number } | null = null;
  for (const floor of floors) {
    const rate = meanRate(floor.figures[row]);
    if (rate === null) continue;
    parts.push(`"${floor.label}" ${rate.toFixed(0)}/s`);
    last = { label: floor.label, rate };
  }
  const ours = meanRate(after);
  if (last && ours !== null) parts.push(`this server ${(ours / last.rate).toFixed(2)}x "${last.label}"`);
  if (row === 'smtpTen') {
    for (const floor of floors) {
      const one = meanRate(floor.figures.smtpOne);
      const ten = meanRate(floor.figures.smtpTen);
      if (one && ten !== null) parts.push(`"${floor.label}" ${(ten / one).toFixed(2)}x its one-mailbox rate`);
    }
  }
  return parts.join('; ');
}

/**
 * The target of each row, checked against the "after" column (and the
 * reference, where the target is relative); for the rows with floors also
 * what the floors say ("restFloors", "pop3SerialFloors", "smtpOneFloors", ...):
 * first whether they put the target out of reach, then their figures.
 */
function verdicts(after: Figures, reference: Figures | null, floors: Column[]): Record<string, string> {
  const met = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'met' : 'NOT met');
  const rest = after.rest;
  const growth = after.growth;
  const [first, , last] = growth?.points ?? [];
  const ratio = (a?: Rate[], b?: Rate[]) => (a?.length && b?.length ? mean(a.map((r) => r.perSec)) / mean(b.map((r) => r.perSec)) : null);
  const pipelined = ratio(after.pop3Pipelined, reference?.pop3Pipelined);
  const serial = ratio(after.pop3Serial, reference?.pop3Serial);
  const again = (mine?: Rate[], theirs?: Rate[]) => {
    const r = ratio(mine, theirs);
    return r === null ? 'no target; not measured against Dovecot' : `no target; ${r.toFixed(2)}x Dovecot's same again`;
  };
  const ten = ratio(after.smtpTen, after.smtpOne);
  const bounds = floorBounds(floors, reference);
  const withBound = (bound: string | undefined, note: string) => [bound, note].filter((text) => text).join('; ');
  return {
    rest: met(rest?.length ? Math.max(...rest.map((r) => r.server)) <= TARGET.serverRestMiB && Math.max(...rest.map((r) => r.relay ?? Infinity)) <= TARGET.relayRestMiB : null),
    growth: met(first && last ? last.rssMiB - first.rssMiB <= 16 : null),
    burst: met(after.burstMiB?.length ? Math.max(...after.burstMiB) <= 16 : null),
    idle: met(after.idleKiB?.length ? Math.max(...after.idleKiB) <= 32 : null),
    pop3Pipelined: pipelined === null ? 'not measured' : `${met(pipelined >= 1)} (${pipelined.toFixed(2)}x Dovecot)`,
    pop3Serial: serial === null ? 'not measured' : `${met(serial >= 1)} (${serial.toFixed(2)}x Dovecot)`,
    pop3PipelinedAgain: again(after.pop3PipelinedAgain, reference?.pop3PipelinedAgain),
    pop3SerialAgain: again(after.pop3SerialAgain, reference?.pop3SerialAgain),
    smtpOne: met(after.smtpOne?.length ? mean(after.smtpOne.map((r) => r.perSec)) >= TARGET.smtpPerSec : null),
    smtpTen: ten === null ? 'not measured' : `${met(ten >= TARGET.tenMailboxes)} (${ten.toFixed(2)}x the one-mailbox rate)`,
    restFloors: bounds.rest ?? '',
    pop3PipelinedFloors: floorNote(after.pop3Pipelined, floors, 'pop3Pipelined'),
    pop3SerialFloors: withBound(bounds.pop3Serial, floorNote(after.pop3Serial, floors, 'pop3Serial')),
    smtpOneFloors: withBound(bounds.smtpOne, floorNote(after.smtpOne, floors, 'smtpOne')),
    smtpTenFloors: withBound(bounds.smtpTen, floorNote(after.smtpTen, floors, 'smtpTen')),
  };
}

/**
 * Whether the floors measured in this run put a target out of reach: if
 * even the least server misses it here, no server meets it on this machine
 * with this client, and the row says so before the floors' figures.
 */
export function floorBounds(floors: Column[], reference: Figures | null): { rest?: string; pop3Serial?: string; smtpOne?: string; smtpTen?: string } {
  const bounds: { rest?: string; pop3Serial?: string; smtpOne?: string; smtpTen?: string } = {};
  const rest = floors.flatMap((f) => f.figures.restFloor ?? []);
  if (rest.length) {
    const imported = mean(rest.map((r) => r.imported));
    bounds.rest =
      imported > TARGET.serverRestMiB
        ? `out of reach for this code: its modules alone, imported with nothing started, take ${imported.toFixed(1)} MB`
        : `its modules alone take ${imported.toFixed(1)} MB: not what bounds it`;
  }
  const bestOf = (row: 'pop3Serial' | 'smtpOne') => Math.max(...floors.map((f) => meanRate(f.figures[row]) ?? 0));
  // The last floor with both SMTP rows keeps this server's guarantees (bench-budget lists them in that order):
  // a 250 only after fsync, the dot-lock, the journal record. A floor without them does not count as a bound.
  const same = [...floors].reverse().find((f) => f.figures.smtpOne && f.figures.smtpTen);
  if (same) {
    const best = bestOf('smtpOne');
    const kept = meanRate(same.figures.smtpOne) ?? 0;
    bounds.smtpOne =
      best < TARGET.smtpPerSec
        ? `out of reach here: the best floor does ${best.toFixed(0)}/s with this client`
        : kept < TARGET.smtpPerSec
          ? `out of reach with this server's guarantees: "${same.label}" does ${kept.toFixed(0)}/s`
          : 'a floor with the same guarantees reaches it: not floor-bound';
    const ratio = (meanRate(same.figures.smtpTen) ?? 0) / (meanRate(same.figures.smtpOne) ?? 1);
    bounds.smtpTen = ratio < TARGET.tenMailboxes ? `out of reach with this server's guarantees: "${same.label}" reaches ${ratio.toFixed(2)}x` : 'a floor with the same guarantees reaches it: not floor-bound';
  }
  // The last POP3 floor runs on this server's shared protocol layer (bench-budget lists it last).
  const dovecot = meanRate(reference?.pop3Serial);
  const layered = [...floors].reverse().find((f) => f.figures.pop3Serial);
  if (dovecot !== null && layered) {
    const best = bestOf('pop3Serial');
    const onLayer = meanRate(layered.figures.pop3Serial) ?? 0;
    bounds.pop3Serial = `${best < dovecot ? 'out of reach here' : onLayer < dovecot ? `out of reach on this protocol layer ("${layered.label}")` : 'not floor-bound'}: Dovecot ${dovecot.toFixed(0)}/s`;
  }
  return bounds;
}

export function printReport(columns: Column[], opts: { growth: number; sessions: number; repeat: number; interleave?: boolean }): void {
  const projects = columns.filter((c) => c.label === 'before' || c.label === 'after');
  const floors = columns.filter((c) => c.label.startsWith(FLOOR));
  const reference = columns.find((c) => !projects.includes(c) && !floors.includes(c)) ?? null;
  const after = projects.find((c) => c.label === 'after')!.figures;
  const check = verdicts(after, reference?.figures ?? null, floors);
  const rows: [string, (f: Figures) => string, string, string, string?][] = [
    ['RSS right after start, no traffic', restText, 'server <= 64 MB, relay <= 56 MB', check.rest, check.restFloors],
    [`RSS growth per delivered message (${opts.growth} x 1 KiB)`, (f) => growthText(f.growth), `RSS after ${opts.growth} within 16 MB of after ${opts.growth / 10}`, check.growth],
    ['first burst of 8 logins', (f) => (f.burstMiB ? `+${list(f.burstMiB, 1)} MB` : '-'), '<= +16 MB', check.burst],
    [`${opts.sessions} idle POP3 sessions`, (f) => (f.idleKiB ? `${list(f.idleKiB, 1)} KiB each` : '-'), '<= 32 KiB each', check.idle],
    ['POP3 RETR of 5,000, pipelined', (f) => rates(f.pop3Pipelined), '>= Dovecot in the same run', check.pop3Pipelined, check.pop3PipelinedFloors],
    ['  the same again, in a new session (code warm)', (f) => rates(f.pop3PipelinedAgain), 'what bounds the row above', check.pop3PipelinedAgain],
    ['POP3 RETR of 5,000, one at a time', (f) => rates(f.pop3Serial), '>= Dovecot', check.pop3Serial, check.pop3SerialFloors],
    ['  the same again, in a new session (code warm)', (f) => rates(f.pop3SerialAgain), 'what bounds the row above', check.pop3SerialAgain],
    ['SMTP 5,000 x 5 KB, 10 connections, one mbox', (f) => rates(f.smtpOne), '>= 5,000 msg/s', check.smtpOne, check.smtpOneFloors],
    ['SMTP into 10 different mailboxes', (f) => rates(f.smtpTen), '>= 0.8x the one-mailbox rate', check.smtpTen, check.smtpTenFloors],
  ];
  const order = opts.interleave ? ', in rounds (every column once a round)' : ', column after column';
  const lines = [`bench-budget: every figure ${opts.repeat} time(s)${order} (growth once); MB = MiB`];
  const width = Math.max(26, ...columns.map((c) => c.label.length + 2));
  for (const [measure, text, target, verdict, floorSays] of rows) {
    lines.push('', measure);
    for (const column of columns) {
      const shown = text(column.figures);
      if (shown === '-' && floors.includes(column)) continue; // a floor has a few rows only
      lines.push(`  ${column.label.padEnd(width)}${shown}`);
    }
    lines.push(`  ${'target'.padEnd(width)}${target}: ${verdict}`);
    if (floorSays) lines.push(`  ${'the floors'.padEnd(width)}${floorSays}`);
  }
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ bench: 'budget', date: new Date().toISOString(), node: process.version, columns, verdicts: check }));
}
