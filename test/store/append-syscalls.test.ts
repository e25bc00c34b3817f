// What one small delivery costs the event loop: its batch is written to the
// page cache in one synchronous write(2), and only the two syncs (the
// journal's planned record, the mbox's fsync) go through libuv's thread
// pool, each a round trip through a busy event loop. Counted with
// async_hooks: every thread-pool file call of node:fs is an FSREQCALLBACK.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { scratchDir } from './helpers.ts';

const message = (text: string) => ({ envelopeFrom: 'a@example.org', date: new Date(0), content: async function* () { yield Buffer.from(text); } });

test('a small batch: one synchronous write, two syncs through the thread pool', async () => {
  const mbox = path.join(await scratchDir('append-syscalls'), 'INBOX');
  const appender = new MboxAppender();
  await appender.append(mbox, message('Subject: first\n\nmakes the file, its directory and its journal\n'));

  let poolCalls = 0;
  const hook = createHook({ init: (_id, type) => void (type === 'FSREQCALLBACK' && poolCalls++) });
  hook.enable();
  try {
    await appender.append(mbox, message('Subject: second\n\nan ordinary delivery\n'));
  } finally {
    hook.disable();
  }
  assert.equal(poolCalls, 2);
  const text = await readFile(mbox, 'utf8');
  assert.match(text, /^From a@example\.org .*\nSubject: first\n\nmakes the file, its directory and its journal\n\nFrom a@example\.org .*\nSubject: second\n\nan ordinary delivery\n\n$/);
});
