// Dates: RFC 5322 3.3 and its obsolete forms (4.3), and RFC 3501's
// date-time and date for INTERNALDATE, APPEND and SEARCH.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DAY_NAMES, dayInZone, formatImapDateTime, formatMessageDate, MONTH_NAMES, messageDay, parseImapDate, parseImapDateTime, parseMessageDate,
} from '../../src/mime/date.ts';
import { asctime } from '../../src/store/from-line.ts';

const utc = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0) => Date.UTC(y, mo - 1, d, h, mi, s);

test('one list of day and month names, used by the mbox From line too', () => {
  assert.equal(DAY_NAMES.length, 7);
  assert.equal(MONTH_NAMES[11], 'Dec');
  assert.equal(asctime(new Date(utc(2026, 11, 2, 3, 5, 1))), 'Mon Nov  2 03:05:01 2026');
});

test('RFC 5322 dates, with and without the optional parts', () => {
  const cases: [string, number, number][] = [
    ['Tue, 17 Nov 2026 09:15:00 +0100', utc(2026, 11, 17, 8, 15), 60],
    ['17 Nov 2026 09:15 -0700', utc(2026, 11, 17, 16, 15), -420], // no day name, no seconds
    ['Tue, 1 Dec 2026 00:00:00 +0000 (UTC)', utc(2026, 12, 1), 0],
    ['Mon, 2 Jan 1995 10:00:00 GMT', utc(1995, 1, 2, 10), 0],
    ['Tue, 24 Nov 26 09:00 EST', utc(2026, 11, 24, 14), -300], // two-digit year, named zone
    ['Sat, 1 Jan 99 12:00:00 PDT', utc(1999, 1, 1, 19), -420],
    ['1 Jan 101 00:00:00 +0000', utc(2001, 1, 1), 0], // three-digit year: + 1900
    ['Wed, 18 Nov 2026 12:00:00 Z', utc(2026, 11, 18, 12), 0],
    ['Wed, 18 Nov 2026 12:00:00 A', utc(2026, 11, 18, 12), 0], // military zone: treated as -0000
    ['Wed, 18 Nov 2026 12:00:00', utc(2026, 11, 18, 12), 0], // no zone
    ['Thu Nov 19 18:00:00 2026', utc(2026, 11, 19, 18), 0], // asctime order
    ['Wed, 18 November 2026 12:00:00 +02:00', utc(2026, 11, 18, 10), 120],
    ['  Fri,  20  Nov  2026  08:00:00  +0000  ', utc(2026, 11, 20, 8), 0],
  ];
  for (const [text, time, offset] of cases) assert.deepEqual(parseMessageDate(text), { time, offsetMinutes: offset }, text);
});

test('what is not a date gives null', () => {
  for (const text of ['', 'yesterday', '31 Feb 2026 10:00:00 +0000', '17 Nov 10:00', '17 Foo 2026', '17 Nov 2026 25:00:00']) {
    assert.equal(parseMessageDate(text), null, text);
  }
});

test('the day a date falls on is the day the sender wrote (RFC 3501 6.4.4 SENTON)', () => {
  const late = parseMessageDate('Mon, 30 Nov 2026 23:30:00 -0800')!; // already 1 Dec in UTC
  assert.equal(messageDay(late), utc(2026, 11, 30) / 86_400_000);
  assert.equal(dayInZone(late.time), utc(2026, 12, 1) / 86_400_000);
  assert.equal(parseImapDate('30-Nov-2026'), messageDay(late));
});

test('IMAP date-time both ways (RFC 3501 9 date-time)', () => {
  const date = new Date(utc(1996, 7, 17, 9, 44, 25));
  assert.equal(formatImapDateTime(date, -420), '17-Jul-1996 02:44:25 -0700');
  assert.equal(formatImapDateTime(new Date(utc(2026, 11, 2, 3, 5, 1))), ' 2-Nov-2026 03:05:01 +0000');
  assert.deepEqual(parseImapDateTime('"17-Jul-1996 02:44:25 -0700"'), { time: date.getTime(), offsetMinutes: -420 });
  assert.deepEqual(parseImapDateTime(' 2-Nov-2026 03:05:01 +0000'), { time: utc(2026, 11, 2, 3, 5, 1), offsetMinutes: 0 });
  for (const bad of ['17-Jul-1996', '17-Jux-1996 02:44:25 -0700', '32-Jul-1996 02:44:25 -0700', '17-Jul-1996 24:00:00 +0000']) {
    assert.equal(parseImapDateTime(bad), null, bad);
  }
});

test('SEARCH dates (RFC 3501 9 date)', () => {
  assert.equal(parseImapDate('1-Feb-1994'), utc(1994, 2, 1) / 86_400_000);
  assert.equal(parseImapDate('"01-feb-1994"'), utc(1994, 2, 1) / 86_400_000);
  for (const bad of ['1 Feb 1994', '30-Feb-1994', '1-Feb-94', '']) assert.equal(parseImapDate(bad), null, bad);
});

test('formatMessageDate writes RFC 5322 in UTC', () => {
  const text = formatMessageDate(new Date(utc(2026, 11, 22, 3, 5, 51)));
  assert.equal(text, 'Sun, 22 Nov 2026 03:05:51 +0000');
  assert.equal(parseMessageDate(text)!.time, utc(2026, 11, 22, 3, 5, 51));
});
