import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listMatcher } from '../../src/imap/list-pattern.ts';

const names = ['INBOX', 'INBOX/Work', 'Sent', 'Archive', 'Archive/2024', 'Archive/2024/Q1', 'Entwürfe', 'a.b*c'];
const list = (reference: string, pattern: string) => names.filter(listMatcher(reference, pattern));

test('"*" crosses the delimiter, "%" does not (RFC 3501 6.3.8)', () => {
  assert.deepEqual(list('', '*'), names);
  assert.deepEqual(list('', '%'), ['INBOX', 'Sent', 'Archive', 'Entwürfe', 'a.b*c']);
  assert.deepEqual(list('', 'Archive/%'), ['Archive/2024']);
  assert.deepEqual(list('', 'Archive/*'), ['Archive/2024', 'Archive/2024/Q1']);
  assert.deepEqual(list('Archive/', '%'), ['Archive/2024']);
  assert.deepEqual(list('Archive/', '/Sent'), [], 'a pattern from the root ignores the reference');
});

test('INBOX in any case; other names exactly; regular-expression characters are plain', () => {
  assert.deepEqual(list('', 'inbox'), ['INBOX']);
  assert.deepEqual(list('', 'Inbox/%'), ['INBOX/Work']);
  assert.deepEqual(list('', 'sent'), []);
  assert.deepEqual(list('', 'a.b*'), ['a.b*c']);
  assert.deepEqual(list('', 'a?b*'), []);
  assert.deepEqual(list('', 'Entw%'), ['Entwürfe']);
});
