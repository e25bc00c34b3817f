// FETCH of ENVELOPE, BODY and BODYSTRUCTURE through the message cache
// (imap/fetch-batch.ts, store/message-cache.ts): the first answer (values
// worked out), the second (read from the cache), the answer of a server
// started afresh on the same files, and the answer after another program
// rewrote the mbox are all exactly what the general path (fetch-data.ts,
// no cache) answers, message for message, over every corpus message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, rm, utimes, writeFile, access } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { cachePathFor } from '../../src/store/message-cache-file.ts';
import { imapServer, loggedIn } from './helpers.ts';
import type { ImapClient } from '../helpers/imap-client.ts';

const CORPUS = join(import.meta.dirname, '..', 'mime', 'corpus');

// Beside the corpus: a header line mboxrd quotes, 8-bit text in a subject
// and a name, and a message over 128 KiB (read as a stream, not a block).
const EXTRA = [
  'From: Ana <ana@example.org>\r\nTo: bob@example.net\r\nSubject: quoted\r\nFrom the desk of: nobody\r\nMessage-ID: <q@x>\r\n\r\n>From here\r\nbody\r\n',
  'From: Ren\xe9 <rene@example.fr>\r\nSubject: caf\xe9 \xe0 la cr\xe8me\r\nDate: Mon, 2 Nov 2026 23:30:00 -0300\r\n\r\nbody\r\n',
  `From: big@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n${'a long line of text in a big message\r\n'.repeat(5000)}`,
];

// The items to compare, and the same items with a header section added:
// a section sends the FETCH down the general path, whose answer is the
// reference (the section's part of each response is then cut out).
const ITEM_SETS = ['ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'FLAGS INTERNALDATE RFC822.SIZE ENVELOPE', 'UID ENVELOPE BODY BODYSTRUCTURE FLAGS MODSEQ'];
const SECTION = 'BODY.PEEK[HEADER.FIELDS (X-None)]';

async function fill(client: ImapClient): Promise<number> {
  const names = (await readdir(CORPUS)).filter((f) => f.endsWith('.eml')).sort();
  const messages = [...(await Promise.all(names.map((name) => readFile(join(CORPUS, name))))), ...EXTRA.map((m) => Buffer.from(m, 'latin1'))];
  for (const raw of messages) assert.equal((await client.commandWithLiterals(['APPEND INBOX ', raw])).status, 'OK');
  await client.command('NOOP');
  return messages.length;
}

async function fetched(client: ImapClient, items: string): Promise<string[]> {
  const reply = await client.command(`FETCH 1:* (${items})`);
  assert.equal(reply.status, 'OK', `${items}: ${reply.text}`);
  return reply.untagged;
}

/** The general path's answer, the section cut out. */
async function reference(client: ImapClient, items: string): Promise<string[]> {
  return (await fetched(client, `${items} ${SECTION}`)).map((line) => line.replace(' BODY[HEADER.FIELDS (X-NONE)] {2}\r\n', ''));
}

async function sameAnswers(client: ImapClient, count: number, what: string): Promise<void> {
  for (const items of ITEM_SETS) {
    const want = await reference(client, items);
    assert.equal(want.length, count);
    assert.deepEqual(await fetched(client, items), want, `${what}: ${items}`);
  }
}

test('cached ENVELOPE, BODY and BODYSTRUCTURE are what the general path answers: first, again, after a restart, after another program rewrote the mbox', async (t) => {
  const first = await imapServer(t);
  const client = await loggedIn(first);
  const count = await fill(client);
  const firstTime = await fetched(client, 'ENVELOPE');
  await sameAnswers(client, count, 'first server');
  assert.deepEqual(await fetched(client, 'ENVELOPE'), firstTime);
  // The macros (RFC 3501 6.4.5) take the same path.
  assert.deepEqual((await client.command('FETCH 1:* ALL')).untagged, await reference(client, 'FLAGS INTERNALDATE RFC822.SIZE ENVELOPE'));
  assert.deepEqual((await client.command('FETCH 1:* FULL')).untagged, await reference(client, 'FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY'));
  const inbox = first.mboxPath('jjordan');
  await access(cachePathFor(inbox));
  await client.command('LOGOUT');

  // The same files under a server started afresh: the values come from the cache file.
  await first.stop();
  const second = await imapServer(t);
  const accountDir = dirname(second.mboxPath('jjordan'));
  await rm(accountDir, { recursive: true, force: true });
  await cp(dirname(inbox), accountDir, { recursive: true });
  const again = await loggedIn(second);
  assert.deepEqual(await fetched(again, 'ENVELOPE'), firstTime);
  await sameAnswers(again, count, 'restarted server');

  // Another program (mutt) edits the subject of message 1 in place, keeping its size.
  const mbox = second.mboxPath('jjordan');
  await withMailboxLock(mbox, async () => {
    const text = await readFile(mbox, 'latin1');
    const subject = /\nSubject: ([^\r\n]+)/.exec(text)!;
    await writeFile(mbox, text.replace(subject[0], `\nSubject: ${subject[1].toUpperCase()}`), 'latin1');
  });
  const later = new Date(Date.now() + 5000);
  await utimes(mbox, later, later);
  await again.command('NOOP');
  const edited = await fetched(again, 'ENVELOPE');
  assert.notDeepEqual(edited[0], firstTime[0], 'the new subject');
  await sameAnswers(again, count, 'after the rewrite');
});

test('CHANGEDSINCE and index items keep their fast path beside the cached ones', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server);
  await fill(client);
  const select = await client.command('SELECT INBOX (CONDSTORE)');
  const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(select.untagged.join('\n'))![1]);
  assert.equal((await client.command('STORE 2 +FLAGS.SILENT (\\Flagged)')).status, 'OK');
  const changed = await client.command(`FETCH 1:* (UID ENVELOPE) (CHANGEDSINCE ${highest})`);
  assert.equal(changed.status, 'OK');
  assert.equal(changed.untagged.length, 1);
  assert.match(changed.untagged[0], /^2 FETCH \(UID 2 ENVELOPE \(.*\) MODSEQ \(\d+\)\)$/);
});
