// The message cache's waiting records (store/message-cache-pending.ts):
// taken in the order they were put, each as the file format writes it, and
// bounded: a value that would go past the bound is not kept.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_PENDING_BYTES, PendingRecords } from '../../src/store/message-cache-pending.ts';
import { readRecord, recordLength } from '../../src/store/message-cache-file.ts';
import type { RecordKey } from '../../src/store/message-cache-file.ts';

const key = (uid: number): RecordKey => ({ uidValidity: 7, uid, fingerprintHigh: 1, fingerprintLow: 2, size: 300, kind: 0 });

test('records come out in the order they were put, readable as the file format, and the queue is then empty', () => {
  const pending = new PendingRecords();
  const values = Array.from({ length: 2000 }, (_, i) => `value ${i} ${'v'.repeat(i % 100)}`); // (grows the buffer several times)
  values.forEach((value, i) => assert.ok(pending.add(key(i + 1), value)));
  const bytes = pending.take();
  assert.equal(pending.length, 0);
  let at = 0;
  values.forEach((value, i) => {
    assert.equal(readRecord(bytes, at, key(i + 1)), value);
    at += recordLength(value);
  });
  assert.equal(at, bytes.length);
  assert.equal(pending.take().length, 0);
});

test('past the bound a value is not kept, and what was kept stays whole', () => {
  const pending = new PendingRecords();
  const value = 'x'.repeat(60 * 1024);
  let kept = 0;
  while (pending.add(key(kept + 1), value)) kept++;
  assert.equal(kept, Math.floor(MAX_PENDING_BYTES / recordLength(value)));
  assert.ok(pending.length <= MAX_PENDING_BYTES);
  const bytes = pending.take();
  assert.equal(readRecord(bytes, (kept - 1) * recordLength(value), key(kept)), value);
});
