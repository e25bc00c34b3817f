// Local delivery (src/store/local-delivery.ts): every account's copy lands
// in its own INBOX, however many messages come (the INBOX path is worked
// out once per account and kept), and an invalid account name is refused
// every time, never remembered as if it were valid.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverToAccounts } from '../../src/store/local-delivery.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { mailboxPath } from '../../src/store/paths.ts';

const content = (text: string) => async function* () {
  yield Buffer.from(text);
};

test('each account gets its copies in its own INBOX, message after message', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'local-delivery-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const delivery = { dataDir, appender: new MboxAppender() };
  for (let i = 1; i <= 3; i++) {
    await deliverToAccounts(delivery, ['alice', 'bob', 'alice'], 'sender@example.org', new Date(), content(`Subject: ${i}\n\nbody ${i}\n`));
  }
  await deliverToAccounts(delivery, ['carol'], 'sender@example.org', new Date(), content('Subject: c\n\nfor carol\n'));
  for (const [account, subjects] of [['alice', ['1', '2', '3']], ['bob', ['1', '2', '3']], ['carol', ['c']]] as const) {
    const mbox = await readFile(mailboxPath(dataDir, account, 'INBOX'), 'utf8');
    assert.deepEqual([...mbox.matchAll(/^Subject: (.*)$/gm)].map((m) => m[1]), subjects, account);
  }
});

test('an invalid account name is refused each time it comes', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'local-delivery-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const delivery = { dataDir, appender: new MboxAppender() };
  for (let i = 0; i < 2; i++) {
    await assert.rejects(deliverToAccounts(delivery, ['../escape'], 'sender@example.org', new Date(), content('x\n')), /invalid account name/);
  }
});
