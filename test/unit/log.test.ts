// The logger (src/log.ts): what a client sends never reaches the terminal
// raw, in --trace lines or in event values, and what is printed instead can
// still be read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, escapeForTerminal } from '../../src/log.ts';

function collect(trace = true) {
  const lines: string[] = [];
  return { lines, log: createLogger({ trace, write: (line) => lines.push(line) }, 'smtp') };
}

/** Anything a terminal could act on, as it would arrive from a client. */
const HOSTILE = 'EHLO \x1b[2J\x1b]0;owned\x07host\r\nMAIL\x00\x08\x7f\x9b31m\u202eevil\u2028x';

test('--trace: a client line with control characters is printed with readable escapes, on one line', () => {
  const { lines, log } = collect();
  log.child('smtp', 'S1').trace('C', HOSTILE);
  assert.deepEqual(lines, ['smtp[S1] C: EHLO \\x1b[2J\\x1b]0;owned\\x07host\\r\\nMAIL\\x00\\x08\\x7f\\x9b31m\\u202eevil\\u2028x']);
});

test('--trace: ordinary text, tabs aside, is left as it is (accents and backslashes too)', () => {
  const { lines, log } = collect();
  log.trace('S', '250-Grüße aus C:\\mail');
  log.trace('C', 'a\tb');
  assert.deepEqual(lines, ['smtp S: 250-Grüße aus C:\\mail', 'smtp C: a\\tb']);
});

test('event values: controls escaped inside quotes; a sender\'s own backslash is doubled, so escapes stay unambiguous', () => {
  const { lines, log } = collect(false);
  log.event('refused', { helo: 'x\x1b[31my', literal: 'x\\x1b', plain: 'client.example', spaced: 'a "b" c', empty: '', count: 3 });
  const [line] = lines;
  const fields = line.slice(line.indexOf('refused ') + 'refused '.length);
  assert.equal(fields, 'helo="x\\x1b[31my" literal="x\\\\x1b" plain=client.example spaced="a \\"b\\" c" empty="" count=3');
  assert.doesNotMatch(line, /[\x00-\x1f\x7f-\x9f]/);
});

test('escapeForTerminal leaves plain text alone and escapes every C0 control, DEL and C1 control', () => {
  assert.equal(escapeForTerminal('plain text, ünïcode, \\ and "quotes"'), 'plain text, ünïcode, \\ and "quotes"');
  for (let code = 0; code <= 0x9f; code++) {
    const char = String.fromCharCode(code);
    const escaped = escapeForTerminal(char);
    const control = code < 0x20 || code >= 0x7f;
    assert.equal(escaped !== char, control, `U+${code.toString(16)}`);
    if (control) assert.match(escaped, /^\\(x[0-9a-f]{2}|[trn])$/);
  }
});

test('event lines carry the time they are logged: the time is made once per millisecond, never kept longer', async () => {
  const { lines, log } = collect(false);
  log.event('first');
  log.event('second'); // same millisecond, most likely: the same time, which is right
  await new Promise((resolve) => setTimeout(resolve, 20));
  log.event('third');
  const times = lines.map((line) => Date.parse(line.split(' ')[0]));
  assert.ok(times.every((time) => Number.isFinite(time)), 'an ISO time starts every line');
  assert.ok(times[1] >= times[0]);
  assert.ok(times[2] - times[0] >= 15, 'a later event shows a later time');
});

test('event values: "=", a tab and an empty string are quoted; a plain value, a number and a boolean are not', () => {
  const { lines, log } = collect(false);
  log.event('x', { a: 'k=v', b: 'tab\there', c: '', d: 'plain', e: 7, f: false, skipped: undefined });
  assert.match(lines[0], / x a="k=v" b="tab\\there" c="" d=plain e=7 f=false$/);
});
