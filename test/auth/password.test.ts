// Tests for scrypt password hashing: the right password verifies, a wrong
// one does not, salts make every hash different, and broken stored strings
// give false instead of an exception.

import { scryptSync } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyAgainstDummy, verifyPassword } from '../../src/auth/password.ts';

test('the right password verifies, a wrong one does not', async () => {
  const stored = await hashPassword('correct horse');
  assert.equal(await verifyPassword('correct horse', stored), true);
  assert.equal(await verifyPassword('correct horsE', stored), false);
  assert.equal(await verifyPassword('', stored), false);
});

test('the hash is self-describing and fits in a name:hash line', async () => {
  // Spaces and '!' cannot occur in base64, so this cannot match by chance.
  const stored = await hashPassword('my pass!');
  assert.match(stored, /^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
  assert.ok(!stored.includes(':'));
  assert.ok(!stored.includes('my pass!'));
});

test('two hashes of the same password differ (random salt)', async () => {
  const a = await hashPassword('same');
  const b = await hashPassword('same');
  assert.notEqual(a, b);
  assert.equal(await verifyPassword('same', a), true);
  assert.equal(await verifyPassword('same', b), true);
});

test('Unicode passwords match across normalisation forms', async () => {
  const composed = 'caf\u00e9'; // é as one code point
  const decomposed = 'cafe\u0301'; // e + combining acute accent
  const stored = await hashPassword(composed);
  assert.equal(await verifyPassword(decomposed, stored), true);
});

test('malformed stored strings give false, not an exception', async () => {
  const good = await hashPassword('pw');
  const [, , params, salt, hash] = good.split('$');
  const bad = [
    '',
    'plaintext',
    '$scrypt$',
    `$bcrypt$${params}$${salt}$${hash}`,
    `$scrypt$ln=14,r=8$${salt}$${hash}`, // missing p
    `$scrypt$ln=99,r=8,p=1$${salt}$${hash}`, // absurd cost
    `$scrypt$ln=14,r=8,p=1,ln=14$${salt}$${hash}`, // repeated key
    `$scrypt$${params}$not*base64$${hash}`,
    `$scrypt$${params}$${salt}$`,
    `$scrypt$${params}$${salt}$${hash}$extra`,
    `$scrypt$${params}$${salt}$QUFB`, // hash too short
  ];
  for (const stored of bad) {
    assert.equal(await verifyPassword('pw', stored), false, stored);
  }
});

test('hashes made with other cost parameters still verify', async () => {
  // As if made by an older version with a lower cost: N = 2^10, r = 4.
  const salt = Buffer.from('0123456789abcdef');
  const key = scryptSync('pw', salt, 32, { N: 1024, r: 4, p: 1 });
  const stored = `$scrypt$ln=10,r=4,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
  assert.equal(await verifyPassword('pw', stored), true);
  assert.equal(await verifyPassword('pw', stored.replace('ln=10', 'ln=11')), false);
});

test('verifyAgainstDummy always says no', async () => {
  assert.equal(await verifyAgainstDummy('anything'), false);
  assert.equal(await verifyAgainstDummy(''), false);
});
