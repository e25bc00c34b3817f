// Header sections: fields and unfolding (RFC 5322 2.2, 2.2.3) and the one
// place that finds the empty line ending a header (RFC 5322 2.1), for LF
// and CRLF text, whole or in chunks split anywhere.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldValue, findHeaderEnd, HeaderEndFinder, headerValue, pickFields, removeFields, splitHeaderFields } from '../../src/mime/header.ts';
import { formatMessageDate } from '../../src/mime/header.ts';
import { splitAt } from './helpers.ts';

test('fields keep their raw lines; continuation lines belong to the field above', () => {
  const fields = splitHeaderFields(Buffer.from('Subject: a\n b\nX-Empty:\nno colon here\nTo: x@y\n'));
  assert.deepEqual(fields.map((f) => f.name), ['Subject', 'X-Empty', '', 'To']);
  assert.equal(fields[0].raw.toString(), 'Subject: a\n b\n');
  assert.equal(removeFields(Buffer.from('A: 1\nB: 2\n c\nC: 3\n'), new Set(['b'])).toString(), 'A: 1\nC: 3\n');
  assert.equal(pickFields(Buffer.from('A: 1\nB: 2\n c\nC: 3\nb: 4\n'), new Set(['b', 'x'])).toString(), 'B: 2\n c\nb: 4\n');
});

test('values are unfolded and trimmed, byte for byte', () => {
  const value = (raw: string) => fieldValue(splitHeaderFields(Buffer.from(raw, 'latin1'))[0]);
  assert.equal(value('Subject:   hello  \n'), 'hello');
  assert.equal(value('Subject: one\n\ttwo\n  three\n'), 'one\ttwo  three'); // RFC 5322 2.2.3: only the line ends go
  assert.equal(value('Subject: crlf\r\n folded\r\n'), 'crlf folded');
  assert.equal(value('Subject:\n starts below\n'), 'starts below');
  assert.equal(value('Subject: Gr\xc3\xbc\xc3\x9fe\n'), 'Gr\xc3\xbc\xc3\x9fe'); // UTF-8 bytes kept as bytes
  assert.equal(value('Subject:\n'), '');
  const fields = splitHeaderFields(Buffer.from('From: a@b\nSUBJECT: first\nSubject: second\n'));
  assert.equal(headerValue(fields, 'subject'), 'first');
  assert.equal(headerValue(fields, 'Cc'), null);
});

test('formatMessageDate still comes from header.ts', () => {
  assert.equal(formatMessageDate(new Date(Date.UTC(2026, 10, 22, 3, 5, 51))), 'Sun, 22 Nov 2026 03:05:51 +0000');
});

const CASES: [string, { headerLength: number; bodyStart: number } | null][] = [
  ['A: 1\nB: 2\n\nbody\n', { headerLength: 10, bodyStart: 11 }],
  ['A: 1\r\nB: 2\r\n\r\nbody\r\n', { headerLength: 12, bodyStart: 14 }],
  ['A: 1\n\r\nbody', { headerLength: 5, bodyStart: 7 }],
  ['\nbody starts at once\n', { headerLength: 0, bodyStart: 1 }],
  ['\r\nbody', { headerLength: 0, bodyStart: 2 }],
  ['A: 1\nB: 2\n', null],
  ['A: 1\n \nB: 2\n', null], // a line of white space is a continuation, not the end
  ['A: 1\n\rX\n', null], // a CR that is not followed by LF is text
  ['', null],
];

test('findHeaderEnd finds the empty line in LF and CRLF text', () => {
  for (const [text, expected] of CASES) assert.deepEqual(findHeaderEnd(Buffer.from(text)), expected, JSON.stringify(text));
  assert.deepEqual(findHeaderEnd(Buffer.from('xxA: 1\n\nb'), 2), { headerLength: 7, bodyStart: 8 });
});

test('HeaderEndFinder finds it at every two-way and three-way split', () => {
  for (const [text, expected] of CASES) {
    const bytes = Buffer.from(text);
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        const finder = new HeaderEndFinder();
        let offset = 0;
        let found: number | null = null;
        for (const chunk of splitAt(bytes, a, b)) {
          const at = finder.push(chunk);
          if (at >= 0) {
            found = offset + at;
            break;
          }
          offset += chunk.length;
        }
        const got = found === null ? null : { headerLength: finder.headerLength, bodyStart: found };
        assert.deepEqual(got, expected, `${JSON.stringify(text)} split at ${a}, ${b}`);
      }
    }
  }
});
