import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import { checkLogin, accountNameOf } from '../../src/auth/login.ts';
import { Accounts, addAccount } from '../../src/auth/accounts.ts';
import { createLogger } from '../../src/log.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

test('each failure doubles the delay, up to the maximum', () => {
  const throttle = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 1000, lockoutAfter: 100 });
  const delays = [1, 2, 3, 4, 5, 6].map(() => throttle.failure('10.0.0.1', 'jjordan'));
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
});

test('lockout per IP and per account, lifted after the window', () => {
  let now = 0;
  const throttle = new LoginThrottle({ lockoutAfter: 3, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 3; i++) throttle.failure('192.0.2.1', `guess${i}`);
  assert.deepEqual(throttle.check('192.0.2.1', 'anyone'), { refuse: true }, 'the IP is locked out');
  assert.deepEqual(throttle.check('192.0.2.2', 'anyone'), { refuse: false }, 'another IP is not');
  for (let i = 0; i < 3; i++) throttle.failure(`198.51.100.${i}`, 'jjordan');
  assert.deepEqual(throttle.check('203.0.113.9', 'JJordan'), { refuse: true }, 'the account is locked out from anywhere');
  now += 60_001;
  assert.deepEqual(throttle.check('192.0.2.1', 'jjordan'), { refuse: false });
});

test('success clears the counters; memory stays bounded', () => {
  const throttle = new LoginThrottle({ lockoutAfter: 2, maxEntries: 10 });
  throttle.failure('192.0.2.1', 'jjordan');
  throttle.success('192.0.2.1', 'jjordan');
  throttle.failure('192.0.2.1', 'jjordan');
  assert.deepEqual(throttle.check('192.0.2.1', 'jjordan'), { refuse: false });
  for (let i = 0; i < 1000; i++) throttle.failure(`10.0.${i >> 8}.${i & 255}`, `u${i}`);
  assert.ok((throttle as unknown as { entries: Map<string, unknown> }).entries.size <= 10);
});

test('checkLogin: right, wrong (delayed), then throttled; logs never hold the password', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'login-'));
  try {
    await addAccount(dataDir, 'jjordan', 'correct horse');
    const accounts = await Accounts.load({ dataDir, domains: ['example.org'] });
    const lines: string[] = [];
    const log = createLogger({ write: (l) => lines.push(l) });
    const slept: number[] = [];
    const service = {
      accounts,
      throttle: new LoginThrottle({ baseDelayMs: 50, lockoutAfter: 2 }),
      sleep: async (ms: number) => void slept.push(ms),
    };
    assert.deepEqual(await checkLogin(service, log, '127.0.0.1', 'jjordan@EXAMPLE.org', 'correct horse'), {
      ok: true,
      account: 'jjordan',
    });
    assert.deepEqual(await checkLogin(service, log, '127.0.0.1', 'jjordan', 'wrong'), { ok: false, reason: 'bad-credentials' });
    assert.deepEqual(await checkLogin(service, log, '127.0.0.1', 'nobody', 'wrong'), { ok: false, reason: 'bad-credentials' });
    assert.deepEqual(slept, [50, 100]);
    // Two failures from this IP: even the right password is now refused for a while.
    assert.deepEqual(await checkLogin(service, log, '127.0.0.1', 'jjordan', 'correct horse'), { ok: false, reason: 'throttled' });
    assert.ok(lines.some((l) => /auth-ok account=jjordan/.test(l)));
    assert.ok(lines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)));
    assert.ok(!lines.some((l) => l.includes('correct horse') || l.includes('wrong')));
    assert.equal(accountNameOf(accounts, 'jjordan@elsewhere.net'), null);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
