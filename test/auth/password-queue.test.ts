// Tests for the queue in front of scrypt: never more computations at once
// than allowed, hashing, verifying and the dummy verification all wait in the
// same queue, and a full queue is refused at once (and recovers). The scrypt
// function is injected to count computations and to hold them open; nothing
// here measures time.

import { scrypt } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PasswordQueue, PasswordQueueFullError } from '../../src/auth/password-queue.ts';
import { PasswordHasher, defaultPasswordHasher, hashPassword, verifyPassword } from '../../src/auth/password.ts';
import type { ScryptFunction } from '../../src/auth/password.ts';

/** node's real scrypt, wrapped to record how many run at once. */
function countingScrypt(): { scrypt: ScryptFunction; calls: () => number; mostAtOnce: () => number } {
  let running = 0;
  let most = 0;
  let calls = 0;
  const counted: ScryptFunction = (password, salt, keyLength, options) => {
    calls++;
    most = Math.max(most, ++running);
    return new Promise<Buffer>((resolve, reject) => {
      scrypt(password, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
    }).finally(() => running--);
  };
  return { scrypt: counted, calls: () => calls, mostAtOnce: () => most };
}

/** An scrypt that answers only when the test says so. */
function heldScrypt(): { scrypt: ScryptFunction; started: () => number; releaseAll: () => void } {
  const held: ((key: Buffer) => void)[] = [];
  let started = 0;
  const hold: ScryptFunction = (_password: string, _salt: Buffer, keyLength: number, _options: ScryptOptions) => {
    started++;
    return new Promise<Buffer>((resolve) => held.push(() => resolve(Buffer.alloc(keyLength))));
  };
  return {
    scrypt: hold,
    started: () => started,
    releaseAll: () => {
      for (const release of held.splice(0)) release(Buffer.alloc(0));
    },
  };
}

test('a burst of hashes, checks and dummy checks never runs more scrypts at once than allowed', async () => {
  for (const concurrency of [1, 2]) {
    const counter = countingScrypt();
    const hasher = new PasswordHasher({ concurrency, scrypt: counter.scrypt });
    const stored = await hashPassword('right');
    const burst = [
      ...Array.from({ length: 4 }, (_, i) => hasher.verify(i === 0 ? 'right' : `wrong${i}`, stored)),
      hasher.verifyAgainstDummy('for an unknown user'),
      hasher.verifyAgainstDummy('another'),
      hasher.hash('a new password').then((hash) => hash.startsWith('$scrypt$')),
    ];
    assert.deepEqual(await Promise.all(burst), [true, false, false, false, false, false, true]);
    // 4 checks, the dummy hash once, 2 dummy checks, 1 new hash.
    assert.equal(counter.calls(), 8);
    assert.equal(counter.mostAtOnce(), concurrency, `concurrency ${concurrency}`);
    assert.deepEqual(hasher.load, { running: 0, waiting: 0 });
  }
});

test('the module functions share one queue, one computation at a time by default', async () => {
  const stored = await hashPassword('pw');
  const burst = [verifyPassword('pw', stored), verifyPassword('no', stored), hashPassword('new')];
  assert.deepEqual(defaultPasswordHasher.load, { running: 1, waiting: 2 });
  await Promise.all(burst);
  assert.deepEqual(defaultPasswordHasher.load, { running: 0, waiting: 0 });
});

test('a full queue is refused at once, without computing, and frees up again', async () => {
  const scrypt = heldScrypt();
  const hasher = new PasswordHasher({ concurrency: 1, maxWaiting: 2, scrypt: scrypt.scrypt });
  const stored = await hashPassword('pw');
  const accepted = [hasher.verify('a', stored), hasher.verify('b', stored), hasher.verify('c', stored)];
  assert.deepEqual(hasher.load, { running: 1, waiting: 2 });
  await assert.rejects(hasher.verify('d', stored), PasswordQueueFullError);
  await assert.rejects(hasher.verifyAgainstDummy('e'), PasswordQueueFullError);
  await assert.rejects(hasher.hash('f'), PasswordQueueFullError);
  assert.equal(scrypt.started(), 1, 'only the first one runs');

  // Release them one by one: each finished computation lets the next start.
  for (let done = 1; done <= 3; done++) {
    scrypt.releaseAll();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(scrypt.started(), Math.min(done + 1, 3));
  }
  assert.deepEqual(await Promise.all(accepted), [false, false, false]);
  assert.deepEqual(hasher.load, { running: 0, waiting: 0 });
  // The dummy hash that failed to start was not remembered as a failure.
  const dummy = hasher.verifyAgainstDummy('e');
  while (scrypt.started() < 5) {
    await new Promise((resolve) => setImmediate(resolve));
    scrypt.releaseAll();
  }
  assert.equal(await dummy, false);
});

test('the queue runs jobs in arrival order and survives a job that throws', async () => {
  const queue = new PasswordQueue({ concurrency: 1, maxWaiting: 10 });
  const order: number[] = [];
  const jobs = [1, 2, 3].map((n) =>
    queue.run(async () => {
      order.push(n);
      if (n === 2) throw new Error('boom');
      return n;
    }),
  );
  const results = await Promise.allSettled(jobs);
  assert.deepEqual(order, [1, 2, 3]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled'],
  );
  assert.deepEqual(queue.load, { running: 0, waiting: 0 });
  assert.throws(() => new PasswordQueue({ concurrency: 0 }), RangeError);
});
