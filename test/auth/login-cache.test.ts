// Tests for LoginCache: what is remembered, for how long, and how many,
// with an injected clock (no sleeping, no timing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginCache } from '../../src/auth/login-cache.ts';

test('a remembered login matches only the same name, stored hash and password', () => {
  const cache = new LoginCache({ now: () => 0 });
  assert.equal(cache.has('jjordan', '$hash1', 'secret'), false);
  cache.remember('jjordan', '$hash1', 'secret');
  assert.equal(cache.has('jjordan', '$hash1', 'secret'), true);
  assert.equal(cache.has('jjordan', '$hash1', 'Secret'), false, 'another password');
  assert.equal(cache.has('jjordan', '$hash2', 'secret'), false, 'the password was changed');
  assert.equal(cache.has('alice', '$hash1', 'secret'), false, 'another account');
  // The separator keeps name and hash apart: "a" + "b\0c" is not "a\0b" + "c".
  cache.remember('a', 'b', 'c');
  assert.equal(cache.has('a', 'b', 'c'), true);
  assert.equal(cache.has('a\0b', '', 'c'), false);
});

test('an entry expires after its time to live', () => {
  let clock = 1000;
  const cache = new LoginCache({ now: () => clock, ttlMs: 100 });
  cache.remember('jjordan', '$h', 'pw');
  clock += 99;
  assert.equal(cache.has('jjordan', '$h', 'pw'), true);
  clock += 1;
  assert.equal(cache.has('jjordan', '$h', 'pw'), false);
});

test('past the limit the oldest entry is dropped; remembering again makes an entry young', () => {
  const cache = new LoginCache({ now: () => 0, maxEntries: 3 });
  for (const name of ['a', 'b', 'c']) cache.remember(name, '$h', 'pw');
  cache.remember('a', '$h', 'pw'); // a is now the youngest; b the oldest
  cache.remember('d', '$h', 'pw');
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((name) => cache.has(name, '$h', 'pw')),
    [true, false, true, true],
  );
});
