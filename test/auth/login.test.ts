// Tests for checkLogin: the throttle and the password check together, with
// real accounts in a temp dir, an injected sleep (recorded, and returning at
// once or held open until the test lets it go: never waited for) and an
// injected password verifier or scrypt that counts how many passwords reached
// the check. Fixed clocks; nothing here measures time.

import { scrypt } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Accounts } from '../../src/auth/accounts.ts';
import { addAccount } from '../../src/auth/account-writer.ts';
import { accountNameOf, checkLogin } from '../../src/auth/login.ts';
import type { LoginService } from '../../src/auth/login.ts';
import { PasswordHasher } from '../../src/auth/password.ts';
import type { PasswordVerifier, ScryptFunction } from '../../src/auth/password.ts';
import { FREE_IN_FLIGHT, LoginThrottle } from '../../src/auth/throttle.ts';
import type { ThrottleOptions } from '../../src/auth/throttle.ts';
import { createLogger } from '../../src/log.ts';

const RIGHT = 'correct horse';
const flush = () => new Promise((resolve) => setImmediate(resolve));

/** A verifier that counts the passwords reaching it; RIGHT is right for every account. */
function countingVerifier(): PasswordVerifier & { checks: number } {
  const verifier = {
    checks: 0,
    verify: async (plain: string) => (verifier.checks++, plain === RIGHT),
    verifyAgainstDummy: async () => (verifier.checks++, false as const),
  };
  return verifier;
}

async function setup(
  t: { after: (fn: () => Promise<void>) => void },
  passwords: PasswordVerifier,
  throttle: ThrottleOptions = {},
): Promise<{ service: LoginService; slept: number[]; lines: string[]; held: (() => void)[]; hold: (on: boolean) => void }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'login-test-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  await addAccount(dataDir, 'jjordan', RIGHT);
  await addAccount(dataDir, 'alice', RIGHT);
  // A fixed clock: the files are never re-read and remembered logins never expire here.
  const accounts = await Accounts.load({ dataDir, domains: ['example.org'], passwords, now: () => 0 });
  const slept: number[] = [];
  const held: (() => void)[] = [];
  let holding = false;
  const lines: string[] = [];
  const service: LoginService = {
    accounts,
    throttle: new LoginThrottle({ now: () => 0, ...throttle }),
    // Records each delay; returns at once, or (hold(true)) when the test lets it go.
    sleep: (ms) => new Promise<void>((resolve) => (slept.push(ms), holding ? held.push(resolve) : resolve())),
  };
  return { service, slept, lines, held, hold: (on) => (holding = on) };
}

const log = (lines: string[]) => createLogger({ write: (line) => lines.push(line) });

test('40 concurrent wrong passwords from 5 addresses: only the free few per address are checked at once, each is counted', async (t) => {
  const verifier = countingVerifier();
  const { service, slept, held, hold, lines } = await setup(t, verifier, { baseDelayMs: 10, maxDelayMs: 10_000 });
  hold(true);
  const addresses = ['192.0.2.1', '192.0.2.2', '192.0.2.3', '198.51.100.4', '2001:db8::5'];
  const logins = addresses.flatMap((ip) =>
    Array.from({ length: 8 }, (_, i) => checkLogin(service, log(lines), ip, 'jjordan', `guess-${ip}-${i}`)),
  );
  const free = addresses.length * FREE_IN_FLIGHT;
  for (let i = 0; i < 40 && verifier.checks < free; i++) await flush();
  await flush();
  assert.equal(verifier.checks, free, `only ${FREE_IN_FLIGHT} attempts per clean address reach the password check at once`);
  assert.equal(held.length, 40 - free, 'the others wait out their penalty');
  // Per address: 10, 20, 40 ... ms past the free ones, as if those guesses had come one after another.
  assert.deepEqual(slept.slice(0, 8 - FREE_IN_FLIGHT), [10, 20, 40, 80].slice(0, 8 - FREE_IN_FLIGHT));
  for (const release of held.splice(0)) release();
  const results = await Promise.all(logins);
  assert.ok(results.every((r) => !r.ok && r.reason === 'bad-credentials'));
  assert.equal(verifier.checks, 40);
  for (const ip of addresses) {
    assert.equal(service.throttle.currentDelay(ip), 10 * 2 ** 7, `${ip}: all 8 failures counted`);
  }
});

test('the right password is accepted after many failures: from the same address after the delay, from another at once', async (t) => {
  const verifier = countingVerifier();
  const { service, slept, held, hold, lines } = await setup(t, verifier);
  const login = (ip: string, name: string, password: string) => checkLogin(service, log(lines), ip, name, password);
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(await login('192.0.2.1', 'jjordan', `guess${i}`), { ok: false, reason: 'bad-credentials' });
  }
  assert.equal(slept.at(-1), 15_000, 'the delay is capped at 15 s');

  // The owner, from elsewhere: no lockout, no delay.
  slept.length = 0;
  assert.deepEqual(await login('198.51.100.7', 'jjordan@example.org', RIGHT), { ok: true, account: 'jjordan' });
  assert.deepEqual(slept, []);
  // A neighbour behind the guesser's address, another account: delayed, then accepted.
  hold(true);
  let answered = false;
  const neighbour = login('192.0.2.1', 'alice', RIGHT).then((result) => ((answered = true), result));
  for (let i = 0; i < 5; i++) await flush();
  assert.deepEqual(slept, [15_000]);
  assert.equal(answered, false, 'the delay comes before the answer');
  hold(false);
  held.splice(0)[0]();
  assert.deepEqual(await neighbour, { ok: true, account: 'alice' });
  // The success cleared that address's penalty (as in Dovecot).
  slept.length = 0;
  assert.deepEqual(await login('192.0.2.1', 'jjordan', RIGHT), { ok: true, account: 'jjordan' });
  assert.deepEqual(slept, []);
  assert.equal(verifier.checks, 22, 'the last login was remembered from the first: no check');
  assert.ok(lines.some((l) => /auth-delayed ip=192\.0\.2\.1 delayMs=15000/.test(l)));
});

test('a remembered login from a penalised address is delayed too, and still skips scrypt', async (t) => {
  let scrypts = 0;
  const countingScrypt: ScryptFunction = (password, salt, keyLength, options) => {
    scrypts++;
    return new Promise((resolve, reject) => scrypt(password, salt, keyLength, options, (e, key) => (e ? reject(e) : resolve(key))));
  };
  const { service, slept, held, hold, lines } = await setup(t, new PasswordHasher({ scrypt: countingScrypt }));
  const login = (password: string) => checkLogin(service, log(lines), '192.0.2.1', 'jjordan', password);
  assert.equal((await login(RIGHT)).ok, true);
  for (const guess of ['a', 'b', 'c']) assert.equal((await login(guess)).ok, false);
  assert.equal(scrypts, 4);
  hold(true);
  let answered = false;
  const remembered = login(RIGHT).then((result) => ((answered = true), result));
  for (let i = 0; i < 5; i++) await flush();
  assert.equal(answered, false, 'the remembered login waits like any other');
  assert.equal(slept.at(-1), 4000);
  held.splice(0).forEach((release) => release());
  assert.deepEqual(await remembered, { ok: true, account: 'jjordan' });
  assert.equal(scrypts, 4, 'the login cache was used');
});

test('a full password queue is a temporary refusal, not a failure', async (t) => {
  const pending: (() => void)[] = [];
  const heldScrypt: ScryptFunction = (_p, _s, keyLength) =>
    new Promise((resolve) => pending.push(() => resolve(Buffer.alloc(keyLength))));
  const passwords = new PasswordHasher({ concurrency: 1, maxWaiting: 1, scrypt: heldScrypt });
  const { service, lines } = await setup(t, passwords);
  const first = checkLogin(service, log(lines), '192.0.2.1', 'jjordan', 'x');
  const second = checkLogin(service, log(lines), '192.0.2.2', 'alice', 'y');
  await flush();
  assert.deepEqual(await checkLogin(service, log(lines), '192.0.2.3', 'jjordan', RIGHT), { ok: false, reason: 'throttled' });
  assert.ok(lines.some((l) => /auth-busy ip=192\.0\.2\.3/.test(l)));
  assert.equal(service.throttle.currentDelay('192.0.2.3'), 0, 'no failure was counted for it');
  while (pending.length > 0) {
    pending.shift()!();
    await flush();
  }
  assert.deepEqual(await Promise.all([first, second]), [
    { ok: false, reason: 'bad-credentials' },
    { ok: false, reason: 'bad-credentials' },
  ]);
});

test('logins by full address; logs show the account or the address, never the password', async (t) => {
  const verifier = countingVerifier();
  const { service, lines } = await setup(t, verifier);
  assert.deepEqual(await checkLogin(service, log(lines), '127.0.0.1', 'JJordan@EXAMPLE.org', RIGHT), { ok: true, account: 'jjordan' });
  assert.deepEqual(await checkLogin(service, log(lines), '127.0.0.1', 'jjordan@elsewhere.net', RIGHT), {
    ok: false,
    reason: 'bad-credentials',
  });
  assert.deepEqual(await checkLogin(service, log(lines), '127.0.0.1', 'nobody', 'wrong'), { ok: false, reason: 'bad-credentials' });
  assert.equal(verifier.checks, 3, 'unknown names and foreign domains cost a check too');
  assert.ok(lines.some((l) => /auth-ok account=jjordan/.test(l)));
  assert.ok(lines.some((l) => /auth-failed ip=127\.0\.0\.1/.test(l)));
  assert.ok(!lines.some((l) => l.includes(RIGHT) || l.includes('wrong')));
  assert.equal(accountNameOf(service.accounts, 'jjordan@elsewhere.net'), null);
});

test('a mail client opening several connections at once with the right password waits for nothing', async (t) => {
  const verifier = countingVerifier();
  const { service, slept, lines } = await setup(t, verifier);
  const results = await Promise.all(Array.from({ length: FREE_IN_FLIGHT }, () => checkLogin(service, log(lines), '192.0.2.9', 'jjordan', RIGHT)));
  assert.ok(results.every((r) => r.ok));
  assert.deepEqual(slept, [], 'no delay for a clean address');
});
