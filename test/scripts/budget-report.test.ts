// bench-budget --interleave takes its repetitions in rounds and joins them
// (scripts/lib/budget-report.ts mergeColumns): every figure taken must be in
// the report, in the order taken, and a figure taken once must stay the one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeColumns } from '../../scripts/lib/budget-report.ts';
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
