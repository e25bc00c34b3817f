import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ArgReader, ParseError } from '../../src/imap/parser.ts';
import { MemoryLiteral } from '../../src/wire/command-reader.ts';
import { decodeMailboxName, encodeMailboxName } from '../../src/imap/mutf7.ts';
import { MONTH_NAMES, parseImapDate, parseImapDateTime } from '../../src/mime/date.ts';

function reader(lines: string[], literals: string[] = []): ArgReader {
  return new ArgReader({
    lines,
    literals: literals.map((text) => {
      const literal = new MemoryLiteral();
      literal.write(Buffer.from(text));
      return literal;
    }),
  });
}

test('tags, atoms and astrings in their three forms', () => {
  const r = reader(['a01 LOGIN jjordan "se\\"cr\\\\et"']);
  assert.equal(r.tag(), 'a01');
  assert.equal(r.sp().keyword(), 'LOGIN');
  assert.equal(r.sp().astring(), 'jjordan');
  assert.equal(r.sp().astring(), 'se"cr\\et');
  r.end();
  const lit = reader(['A2 LOGIN {7}', ' {5}', ''], ['jjordan', 'p w"d']);
  lit.tag();
  lit.sp().keyword();
  assert.equal(lit.sp().astring(), 'jjordan');
  assert.equal(lit.sp().astring(), 'p w"d');
  lit.end();
});

test('malformed arguments throw ParseError, never anything else', () => {
  const bad = ['"unterminated', '"bad \\x escape"', '', '{5}'];
  for (const line of bad) {
    assert.throws(() => reader([line]).astring(), ParseError, line);
  }
  assert.throws(() => reader(['a1+']).tag(), ParseError);
  assert.throws(() => reader(['99999999999']).number(), ParseError);
  assert.throws(() => reader(['0']).nzNumber(), ParseError);
  assert.throws(() => reader(['x y']).end(), ParseError);
});

test('sequence sets: numbers, ranges either way, * and lists', () => {
  assert.deepEqual(reader(['1:3,5,9:7,12:*,*']).sequenceSet(), [
    { from: 1, to: 3 },
    { from: 5, to: 5 },
    { from: 7, to: 9 },
    { from: 12, to: Infinity },
    { from: Infinity, to: Infinity },
  ]);
  for (const bad of ['0', '1:', ',1', '1,,2', 'a']) {
    assert.throws(() => {
      const r = reader([bad]);
      r.sequenceSet();
      r.end();
    }, ParseError, bad);
  }
});

test('flag lists, nested lists with a depth limit', () => {
  assert.deepEqual(reader(['(\\Seen $Forwarded \\Answered)']).flagList(), ['\\Seen', '$Forwarded', '\\Answered']);
  assert.deepEqual(reader(['()']).flagList(), []);
  const nest = (depth: number) => '('.repeat(depth) + ')'.repeat(depth);
  const item = (r: ArgReader, depth: number): unknown => (r.peek() === '(' ? r.list((x) => item(x, depth + 1), depth + 1) : r.atom());
  assert.doesNotThrow(() => item(reader([nest(16)]), 0));
  assert.throws(() => item(reader([nest(17)]), 0), /too deeply nested/);
});

test('dates and date-times (RFC 3501 9)', () => {
  assert.equal(reader(['1-Feb-1994']).date().toISOString(), '1994-02-01T00:00:00.000Z');
  assert.equal(reader(['"29-feb-2024"']).date().toISOString(), '2024-02-29T00:00:00.000Z');
  assert.throws(() => reader(['30-Feb-2024']).date(), ParseError);
  assert.equal(reader(['"17-Jul-1996 02:44:25 -0700"']).dateTime().toISOString(), '1996-07-17T09:44:25.000Z');
  assert.equal(reader(['" 7-Jul-1996 02:44:25 +0130"']).dateTime().toISOString(), '1996-07-07T01:14:25.000Z');
  assert.throws(() => reader(['"17-Jul-1996 25:44:25 -0700"']).dateTime(), ParseError);
});

test('every month name, in any case, reads as the month mime/date.ts reads (one table of names)', () => {
  MONTH_NAMES.forEach((name, month) => {
    for (const spelled of [name, name.toUpperCase(), name.toLowerCase()]) {
      const date = reader([`3-${spelled}-2021`]).date();
      assert.equal(date.getUTCMonth(), month, spelled);
      assert.equal(date.getTime() / 86_400_000, parseImapDate(`3-${spelled}-2021`));
      const dateTime = reader([`"03-${spelled}-2021 10:00:00 +0000"`]).dateTime();
      assert.equal(dateTime.getTime(), parseImapDateTime(`03-${spelled}-2021 10:00:00 +0000`)!.time);
    }
  });
  assert.throws(() => reader(['3-Jux-2021']).date(), ParseError);
  assert.throws(() => reader(['"03-Jux-2021 10:00:00 +0000"']).dateTime(), ParseError);
});

test('list-mailbox allows the wildcards; nstring knows NIL', () => {
  const r = reader(['"" %/* NIL']);
  assert.equal(r.listMailbox(), '');
  assert.equal(r.sp().listMailbox(), '%/*');
  assert.equal(r.sp().nstring(), null);
});

test('modified UTF-7 round trips, and refuses what is not canonical (RFC 3501 5.1.3)', () => {
  const cases: [string, string][] = [
    ['INBOX', 'INBOX'],
    ['Entwürfe', 'Entw&APw-rfe'],
    ['Tom & Jerry', 'Tom &- Jerry'],
    ['日本語', '&ZeVnLIqe-'],
    ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
    ['emoji 😀', 'emoji &2D3eAA-'],
  ];
  for (const [unicode, wire] of cases) {
    assert.equal(encodeMailboxName(unicode), wire);
    assert.equal(decodeMailboxName(wire), unicode);
  }
  for (const bad of ['&', '&Jjo', '&AGE-', '&2D0-', 'caf\u00e9', '&Jjo!-']) assert.equal(decodeMailboxName(bad), null, bad);
});
