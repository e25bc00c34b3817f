// bench-budget --interleave takes its repetitions in rounds and joins them
// (scripts/lib/budget-report.ts mergeColumns): every figure taken must be in
// the report, in the order taken, and a figure taken once must stay the one.
// A floor bounds an SMTP target only if it keeps this server's guarantees
// (floorBounds): a receiver that answers 250 before fsync does not count.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floorBounds, mergeColumns } from '../../scripts/lib/budget-report.ts';
import type { Column } from '../../scripts/lib/budget-report.ts';

const rate = (perSec: number) => ({ perSec, cpuUs: 100, others: 0, seconds: 1 });

test('interleaved rounds join each column\'s figures in the order taken; a figure taken once is kept; the rounds are not changed', () => {
  const growth = { points: [{ delivered: 20000, rssMiB: 83, heapUsedMiB: 9, heapTotalMiB: 14 }] } as never;
  const first: Column[] = [
    { label: 'after', figures: { pop3Serial: [rate(5000)], growth } },
    { label: 'Dovecot 2.3 / Postfix 3.7', figures: { pop3Serial: [rate(5500)], restDovecot: 13.3 } },
  ];
  const second: Column[] = [
    { label: 'after', figures: { pop3Serial: [rate(5100)] } },
    { label: 'Dovecot 2.3 / Postfix 3.7', figures: { pop3Serial: [rate(5400)], restDovecot: 14.1 } },
    { label: 'floor: POP3', figures: { pop3Serial: [rate(7000)] } },
  ];
  const merged = mergeColumns(mergeColumns([], first), second);
  assert.deepEqual(merged.map((c) => c.label), ['after', 'Dovecot 2.3 / Postfix 3.7', 'floor: POP3']);
  assert.deepEqual(merged[0].figures.pop3Serial!.map((r) => r.perSec), [5000, 5100]);
  assert.equal(merged[0].figures.growth, growth);
  assert.deepEqual(merged[1].figures.pop3Serial!.map((r) => r.perSec), [5500, 5400]);
  assert.equal(merged[1].figures.restDovecot, 13.3);
  assert.deepEqual(merged[2].figures.pop3Serial!.map((r) => r.perSec), [7000]);
  assert.deepEqual(first[0].figures.pop3Serial!.map((r) => r.perSec), [5000], 'the first round as it was');
});

test('an SMTP target is out of reach only if the floor with the same guarantees (fsync, dot-lock, record) misses it; a faster floor without them does not count', () => {
  const floors = (noFsync: number, fsync: number, kept: number, keptTen: number): Column[] => [
    { label: 'floor: no fsync', figures: { smtpOne: [rate(noFsync)], smtpTen: [rate(noFsync * 0.8)] } },
    { label: 'floor: + fsync', figures: { smtpOne: [rate(fsync)], smtpTen: [rate(fsync * 0.8)] } },
    { label: 'floor: + lock, record', figures: { smtpOne: [rate(kept)], smtpTen: [rate(keptTen)] } },
  ];
  // Every floor below 5,000/s: no server reaches it with this client.
  assert.match(floorBounds(floors(3400, 2100, 1850, 1200), null).smtpOne!, /^out of reach here: the best floor does 3400\/s/);
  // Only the floor that answers before fsync reaches it: out of reach with the guarantees, named.
  const bounds = floorBounds(floors(6900, 4560, 3930, 3020), null);
  assert.match(bounds.smtpOne!, /^out of reach with this server's guarantees: "floor: \+ lock, record" does 3930\/s/);
  assert.match(bounds.smtpTen!, /^out of reach with this server's guarantees: "floor: \+ lock, record" reaches 0\.77x/);
  // The floor with the guarantees reaches both targets: nothing bounds them.
  const reached = floorBounds(floors(9000, 7000, 5200, 4400), null);
  assert.match(reached.smtpOne!, /not floor-bound/);
  assert.match(reached.smtpTen!, /not floor-bound/);
});
