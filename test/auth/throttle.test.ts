// Tests for the per-address login penalty (throttle.ts) on its own, with an
// injected clock: the delay grows and is capped, counts from the latest
// attempt, is shared by an IPv6 /64, cleared by a success, never kept per
// account, and the state stays bounded. And throttleAddress(), which trusts
// a claimed client address only from trusted hosts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FREE_IN_FLIGHT, LoginThrottle, throttleAddress } from '../../src/auth/throttle.ts';

/** One attempt that fails; returns the delay it was given. */
function fail(throttle: LoginThrottle, address: string): number {
  const attempt = throttle.begin(address);
  attempt.failed();
  return attempt.delayMs;
}

test('each failure doubles the delay before the next check, up to the cap', () => {
  const throttle = new LoginThrottle({ baseDelayMs: 1000, maxDelayMs: 15_000, now: () => 0 });
  const delays = Array.from({ length: 8 }, () => fail(throttle, '192.0.2.1'));
  assert.deepEqual(delays, [0, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000]);
  assert.equal(throttle.currentDelay('192.0.2.1'), 15_000);
  assert.equal(throttle.currentDelay('192.0.2.2'), 0, 'another address is not penalised');
});

test('the delay counts from the latest attempt: a client that comes back later does not wait', () => {
  let now = 0;
  const throttle = new LoginThrottle({ baseDelayMs: 1000, maxDelayMs: 15_000, now: () => now });
  for (let i = 0; i < 10; i++) fail(throttle, '192.0.2.1');
  now += 5000;
  assert.equal(throttle.currentDelay('192.0.2.1'), 10_000, 'the rest of the 15 s');
  now += 10_000;
  assert.equal(throttle.currentDelay('192.0.2.1'), 0);
  // The failures are still remembered: one more, and the next waits the full cap again.
  assert.equal(fail(throttle, '192.0.2.1'), 0);
  assert.equal(throttle.currentDelay('192.0.2.1'), 15_000);
});

test('the delay is counted from a failure, not from when its attempt began waiting', () => {
  let now = 0;
  const throttle = new LoginThrottle({ baseDelayMs: 1000, maxDelayMs: 15_000, now: () => now });
  for (let i = 0; i < 6; i++) fail(throttle, '192.0.2.1');
  const attempt = throttle.begin('192.0.2.1');
  assert.equal(attempt.delayMs, 15_000);
  now += attempt.delayMs; // it waits, is checked, and fails
  attempt.failed();
  assert.equal(throttle.currentDelay('192.0.2.1'), 15_000, 'waiting out one delay does not pay for the next');
});

test('attempts in flight count: past the free few of a clean address, concurrent attempts see each other', () => {
  const throttle = new LoginThrottle({ baseDelayMs: 1000, maxDelayMs: 15_000, now: () => 0 });
  const attempts = Array.from({ length: FREE_IN_FLIGHT + 6 }, () => throttle.begin('192.0.2.1'));
  assert.deepEqual(
    attempts.map((a) => a.delayMs),
    [...Array(FREE_IN_FLIGHT).fill(0), 1000, 2000, 4000, 8000, 15_000, 15_000],
  );
  for (const attempt of attempts) attempt.failed();
  attempts[0].failed(); // a second outcome for the same attempt is ignored
  assert.equal(throttle.currentDelay('192.0.2.1'), 15_000);
});

test('a success clears its address group; an abandoned attempt counts for nothing', () => {
  const throttle = new LoginThrottle({ baseDelayMs: 1000, now: () => 0 });
  for (let i = 0; i < 3; i++) fail(throttle, '192.0.2.1');
  const busy = throttle.begin('192.0.2.1');
  busy.abandoned(); // e.g. the password queue was full: no password was checked
  assert.equal(throttle.currentDelay('192.0.2.1'), 4000, 'still three failures');
  throttle.begin('192.0.2.1').succeeded();
  assert.equal(throttle.currentDelay('192.0.2.1'), 0);
});

test('IPv6 clients are penalised per /64, IPv4-mapped addresses as IPv4', () => {
  const throttle = new LoginThrottle({ baseDelayMs: 1000, now: () => 0 });
  fail(throttle, '2001:db8:1:2::10');
  fail(throttle, '2001:db8:1:2:ffff::99');
  assert.equal(throttle.currentDelay('2001:db8:1:2::1'), 2000, 'the same /64');
  assert.equal(throttle.currentDelay('2001:db8:1:3::1'), 0, 'the next /64');
  fail(throttle, '::ffff:192.0.2.7');
  assert.equal(throttle.currentDelay('192.0.2.7'), 1000);
});

test('state is bounded, and forgotten after the window', () => {
  let now = 0;
  const throttle = new LoginThrottle({ maxEntries: 10, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 1000; i++) fail(throttle, `10.0.${i >> 8}.${i & 255}`);
  assert.ok((throttle as unknown as { groups: Map<string, unknown> }).groups.size <= 10);
  assert.equal(throttle.currentDelay('10.0.3.231'), 1000, 'the newest are kept');
  assert.equal(throttle.currentDelay('10.0.0.0'), 0, 'the oldest were dropped');
  for (let i = 0; i < 12; i++) fail(throttle, '192.0.2.1');
  now += 60_001;
  fail(throttle, '192.0.2.1');
  assert.equal(throttle.currentDelay('192.0.2.1'), 1000, 'after the window the count starts again');
});

test('throttleAddress: a claimed address counts only from a trusted client', () => {
  const trusted = ['127.0.0.1', '::1'];
  assert.equal(throttleAddress('127.0.0.1', '203.0.113.5', trusted), '203.0.113.5');
  assert.equal(throttleAddress('10.1.2.3', '203.0.113.5', ['10.0.0.0/8']), '203.0.113.5', 'networks too (login_trusted_networks)');
  assert.equal(throttleAddress('::ffff:127.0.0.1', ' 2001:db8::7 ', trusted), '2001:db8::7');
  assert.equal(throttleAddress('::1', '::ffff:203.0.113.5', trusted), '203.0.113.5');
  assert.equal(throttleAddress('198.51.100.9', '203.0.113.5', trusted), '198.51.100.9', 'an untrusted client');
  assert.equal(throttleAddress('127.0.0.1', 'not-an-address', trusted), '127.0.0.1', 'junk is ignored');
  assert.equal(throttleAddress('127.0.0.1', undefined, trusted), '127.0.0.1', 'nothing claimed');
  assert.equal(throttleAddress('127.0.0.1', '203.0.113.5', []), '127.0.0.1', 'nobody trusted');
});
