// The compose form's size limit (webmail.maxUploadBytes), through the real
// webmail against the real mail server: a message over the limit gets 413,
// is not handed to submission, and is not stored in Sent or Drafts, both
// when the limit shows only once the message is written and when the
// request itself declares too many bytes (refused before it is read).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ImapClient } from '../../src/webmail/imap-client/client.ts';
import { eventually } from '../helpers/test-server.ts';
import { formFields, withValues } from './browser.ts';
import type { Browser } from './browser.ts';
import { imapAddress, mailServer, startTestWebmail } from './helpers.ts';

const LIMIT = 20_000;

async function composeWith(browser: Browser, values: Record<string, string>, content: Buffer) {
  const form = await browser.get('/compose');
  assert.equal(form.status, 200, form.text);
  return browser.postMultipart('/compose', withValues(formFields(form.text, '/compose'), values), [
    ['attachments', { filename: 'big.bin', contentType: 'application/octet-stream', content }],
  ]);
}

test('a message over maxUploadBytes gets 413: nothing is sent, nothing saved to Sent or Drafts', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server, { maxUploadBytes: LIMIT });
  const browser = await webmail.loggedIn();
  const imap = await ImapClient.connect(await imapAddress(server));
  await imap.login('jjordan', 'secret');
  t.after(() => imap.logout());

  // Over the limit once encoded, well within what the form reader takes.
  const tooBig = await composeWith(browser, { to: 'ana@localhost', subject: 'too big', text: 'x', action: 'send' }, randomBytes(LIMIT));
  assert.equal(tooBig.status, 413, tooBig.text);
  assert.match(tooBig.text, /The message is larger than allowed/);
  const draft = await composeWith(browser, { to: 'ana@localhost', subject: 'too big draft', text: 'x', action: 'draft' }, randomBytes(LIMIT));
  assert.equal(draft.status, 413, draft.text);

  // A request that says it is far larger is refused before its body is read.
  const huge = await composeWith(browser, { to: 'ana@localhost', subject: 'huge', text: 'x', action: 'send' }, randomBytes(LIMIT + 4 * 1024 * 1024 + 1));
  assert.equal(huge.status, 413, huge.text);

  // A small message afterwards goes through: once it has arrived, it is the only one.
  const small = await composeWith(browser, { to: 'ana@localhost', subject: 'small', text: 'x', action: 'send' }, randomBytes(100));
  assert.equal(small.status, 303, small.text);
  await eventually(async () => (await server.messages('ana')).length >= 1, 'the small message in ana\'s INBOX');
  const arrived = await server.messages('ana');
  assert.equal(arrived.length, 1, 'only the small message was sent');
  assert.match(arrived[0].content.toString('latin1'), /^Subject: small$/m);
  assert.equal((await imap.status('Sent')).messages, 1, 'only the small message is in Sent');
  assert.equal((await imap.status('Drafts')).messages, 0, 'no draft over the limit');
});
