// The webmail's submission client against the real server: a message sent
// as a logged-in user arrives; TLS is verified; the server's refusals (wrong
// password, someone else's From address, an unknown local recipient) come
// back as reasons a person can read.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { submitMessage } from '../../src/webmail/smtp-client.ts';
import type { Submission } from '../../src/webmail/smtp-client.ts';
import { eventually } from '../helpers/test-server.ts';
import { mailServer, submissionAddress } from './helpers.ts';

function submission(overrides: Partial<Submission> = {}): Submission {
  const message = Buffer.from('From: jjordan@localhost\r\nTo: ana@localhost\r\nSubject: via submission\r\n\r\nHello Ana.\r\n.starts with a dot\r\n');
  return {
    username: 'jjordan',
    password: 'secret',
    from: 'jjordan@localhost',
    recipients: ['ana@localhost'],
    message: async function* () {
      yield message;
    },
    size: message.length,
    heloName: 'webmail.localhost',
    ...overrides,
  };
}

test('a message submitted over implicit TLS and over STARTTLS arrives, dots and all', async (t) => {
  const server = await mailServer(t);
  for (const tls of ['implicit', 'starttls'] as const) {
    const result = await submitMessage(await submissionAddress(server, tls), submission());
    assert.deepEqual(result, { ok: true, refused: [] });
  }
  await eventually(async () => (await server.messages('ana')).length === 2, 'both messages in ana\'s INBOX');
  const [first] = await server.messages('ana');
  assert.match(first.content.toString(), /\nSubject: via submission\n\nHello Ana\.\n\.starts with a dot\n$/);
});

test('refusals come back as reasons: password, sender, recipient, certificate', async (t) => {
  const server = await mailServer(t);
  const address = await submissionAddress(server);
  const badPassword = await submitMessage(address, submission({ password: 'wrong' }));
  assert.equal(badPassword.ok, false);
  assert.match(!badPassword.ok ? badPassword.reason : '', /^auth: 535/);

  const notMine = await submitMessage(address, submission({ from: 'ana@localhost' }));
  assert.match(!notMine.ok ? notMine.reason : '', /553/);

  const partly = await submitMessage(address, submission({ recipients: ['ana@localhost', 'nobody@localhost'] }));
  assert.equal(partly.ok, true);
  assert.deepEqual(partly.ok && partly.refused.map((r) => r.address), ['nobody@localhost']);

  const unverified = await submitMessage({ ...address, ca: undefined }, submission());
  assert.match(!unverified.ok ? unverified.reason : '', /^connect: .*certificate/i);
});

test('the browser\'s address goes to submission as XCLIENT ADDR: a failed login counts against it, not against the webmail', async (t) => {
  const server = await mailServer(t);
  for (const tls of ['implicit', 'starttls'] as const) {
    const clientAddress = tls === 'implicit' ? '192.0.2.7' : '2001:db8::7';
    const failed = await submitMessage(await submissionAddress(server, tls), submission({ password: 'wrong', clientAddress }));
    assert.match(!failed.ok ? failed.reason : '', /^auth: 535/);
    assert.ok(server.logLines.some((l) => l.includes(`auth-failed ip=${clientAddress}`)), server.logLines.filter((l) => l.includes('auth')).join('\n'));
    const sent = await submitMessage(await submissionAddress(server, tls), submission({ clientAddress }));
    assert.equal(sent.ok, true, !sent.ok ? sent.reason : '');
  }
  assert.ok(!server.logLines.some((l) => l.includes('auth-failed ip=127.0.0.1')), 'never under the webmail\'s own address');
});
