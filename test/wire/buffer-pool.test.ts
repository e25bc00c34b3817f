// The pool large literals stream through (src/buffer-pool.ts): a recycled
// buffer is handed out again, a buffer nobody recycled never is, and the
// same memory recycled twice is handed out once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool, isPooled, recycle } from '../../src/buffer-pool.ts';

test('a recycled buffer is taken again; one still out is never handed out twice', () => {
  const pool = new BufferPool(1024);
  const a = pool.take();
  const b = pool.take(); // `a` is still out: a new one
  assert.notEqual(a.buffer, b.buffer);
  assert.equal(pool.allocated, 2);
  recycle(a.subarray(10, 20)); // a view gives back the whole buffer
  assert.equal(pool.take().buffer, a.buffer);
  assert.equal(pool.allocated, 2);
  assert.equal(a.length, 1024);
});

test('recycling the same memory twice frees it once', () => {
  const pool = new BufferPool(64);
  const a = pool.take();
  recycle(a);
  recycle(a.subarray(1)); // a second view of the same chunk, by mistake
  assert.equal(pool.freeCount, 1);
  const first = pool.take();
  const second = pool.take();
  assert.notEqual(first.buffer, second.buffer, 'two takers never share memory');
});

test('the pool keeps at most `keep` free buffers; other memory is left alone', () => {
  const pool = new BufferPool(64, 2);
  const taken = [pool.take(), pool.take(), pool.take()];
  for (const buffer of taken) recycle(buffer);
  assert.equal(pool.freeCount, 2);
  const plain = Buffer.alloc(64);
  assert.equal(isPooled(plain), false);
  recycle(plain); // not a pool's: nothing happens
  assert.equal(pool.freeCount, 2);
  assert.equal(isPooled(taken[0].subarray(5)), true);
});

test('a buffer recycled to one pool never lands in another', () => {
  const one = new BufferPool(64);
  const two = new BufferPool(64);
  const a = one.take();
  two.putBack(a);
  assert.equal(two.freeCount, 0);
  recycle(a);
  assert.equal(one.freeCount, 1);
});

test('a pool with idleMs lets its free buffers go after a quiet spell, and not while buffers are taken', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  const pool = new BufferPool(64, 4, 1000);
  recycle(pool.take());
  assert.equal(pool.freeCount, 1);
  t.mock.timers.tick(600);
  recycle(pool.take()); // taken again within the spell: the spell starts over
  t.mock.timers.tick(600);
  assert.equal(pool.freeCount, 1, 'busy 600 ms ago: kept');
  t.mock.timers.tick(500);
  assert.equal(pool.freeCount, 0, 'quiet for 1,100 ms: let go');
  assert.equal(pool.allocated, 1);
  recycle(pool.take()); // a new buffer, and a new spell
  assert.equal(pool.allocated, 2);
  assert.equal(pool.freeCount, 1);
  t.mock.timers.tick(1000);
  assert.equal(pool.freeCount, 0);
});
