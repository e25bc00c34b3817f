// FETCH with CHANGEDSINCE (RFC 7162 3.1.4.1): only the messages changed
// since the mod-sequence come back, and leaving the others out is no
// expunge: the command completes with OK, not NO [EXPUNGEISSUED]
// (RFC 5530 3: that code is for messages that are gone).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn, deliver } from './helpers.ts';

test('CHANGEDSINCE leaves the unchanged messages out and completes with OK', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b', 'c', 'd']) await deliver(server, subject);
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  const select = await client.command('SELECT INBOX (CONDSTORE)');
  const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(select.untagged.join('\n'))![1]);
  assert.equal((await client.command('STORE 2,4 +FLAGS.SILENT (\\Answered)')).status, 'OK');
  for (const command of [`FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`, `UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`]) {
    const reply = await client.command(command);
    assert.equal(reply.status, 'OK', `${command}: ${reply.text}`);
    assert.deepEqual(reply.untagged.map((line) => Number(/^(\d+) FETCH/.exec(line)![1])), [2, 4]);
  }
  // Nothing changed since now: no responses, still OK.
  const none = await client.command(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest + 1})`);
  assert.deepEqual([none.status, none.untagged], ['OK', []]);
});
