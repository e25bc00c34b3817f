import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSasl, decodeBase64Strict } from '../../src/auth/sasl.ts';

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

test('strict base64 accepts canonical text and rejects the rest', () => {
  assert.equal(decodeBase64Strict('aGVsbG8=')?.toString(), 'hello');
  assert.equal(decodeBase64Strict('')?.length, 0); // empty is valid: zero bytes
  for (const bad of ['aGVsbG8', 'aGVs bG8=', 'aGVsbG8==', 'a', '****', 'aGVsbG9=']) {
    assert.equal(decodeBase64Strict(bad), null, bad);
  }
});

test('PLAIN with an initial response', () => {
  const step = startSasl('plain')!.start(b64('\0jjordan\0secret'));
  assert.deepEqual(step, { kind: 'credentials', username: 'jjordan', password: 'secret' });
});

test('PLAIN without initial response: empty challenge, then the response', () => {
  const sasl = startSasl('PLAIN')!;
  assert.deepEqual(sasl.start(), { kind: 'challenge', challenge: '' });
  assert.deepEqual(sasl.next(b64('jjordan\0jjordan\0pw')), { kind: 'credentials', username: 'jjordan', password: 'pw' });
});

test('PLAIN refuses another authzid, missing parts, bad base64, and honours *', () => {
  assert.deepEqual(startSasl('PLAIN')!.start(b64('admin\0jjordan\0pw')), { kind: 'failed', reason: 'malformed' });
  assert.deepEqual(startSasl('PLAIN')!.start(b64('jjordan\0pw')), { kind: 'failed', reason: 'malformed' });
  assert.deepEqual(startSasl('PLAIN')!.start(b64('\0\0pw')), { kind: 'failed', reason: 'malformed' });
  assert.deepEqual(startSasl('PLAIN')!.start('not base64!'), { kind: 'failed', reason: 'malformed' });
  const sasl = startSasl('PLAIN')!;
  sasl.start();
  assert.deepEqual(sasl.next('*'), { kind: 'failed', reason: 'cancelled' });
});

test('LOGIN asks Username: then Password:', () => {
  const sasl = startSasl('LOGIN')!;
  assert.deepEqual(sasl.start(), { kind: 'challenge', challenge: b64('Username:') });
  assert.deepEqual(sasl.next(b64('jjordan')), { kind: 'challenge', challenge: b64('Password:') });
  assert.deepEqual(sasl.next(b64('pässword')), { kind: 'credentials', username: 'jjordan', password: 'pässword' });
});

test('LOGIN with the username as initial response, and cancel', () => {
  const sasl = startSasl('LOGIN')!;
  assert.deepEqual(sasl.start(b64('jjordan')), { kind: 'challenge', challenge: b64('Password:') });
  assert.deepEqual(sasl.next('*'), { kind: 'failed', reason: 'cancelled' });
});

test('unknown mechanisms are not offered', () => {
  assert.equal(startSasl('CRAM-MD5'), null);
  assert.equal(startSasl('GSSAPI'), null);
});
