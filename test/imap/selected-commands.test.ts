// The selected-state commands not covered elsewhere, over real sockets:
// CHECK (RFC 3501 6.4.1), CLOSE (6.4.2), UNSELECT (RFC 3691), UID COPY with
// COPYUID (RFC 4315 3), and FETCH RFC822.HEADER / RFC822.TEXT (RFC 3501
// 6.4.5), byte for byte and with their effect on \Seen.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn, deliver, uidsAndSubjects, uidValidity } from './helpers.ts';

const crlf = (lf: Buffer) => Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');

test('CHECK completes in the selected state and tells of a delivery like NOOP; it needs a selected mailbox', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  const client = await loggedIn(server);
  const check = await client.command('CHECK');
  assert.deepEqual([check.status, check.text, check.untagged], ['OK', 'CHECK completed', []]);
  await deliver(server, 'two');
  assert.ok((await client.command('CHECK')).untagged.includes('2 EXISTS'));
  assert.equal((await client.command('CHECK extra')).status, 'BAD', 'CHECK takes no arguments');
  const unselected = await loggedIn(server, 'jjordan', 'secret', null);
  assert.equal((await unselected.command('CHECK')).status, 'BAD');
});

test('CLOSE expunges \\Deleted messages silently and leaves the mailbox; another session hears the EXPUNGE', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['one', 'two', 'three']) await deliver(server, subject);
  const watcher = await loggedIn(server);
  const client = await loggedIn(server);
  assert.equal((await client.command('STORE 1,3 +FLAGS.SILENT (\\Deleted)')).status, 'OK');
  const close = await client.command('CLOSE');
  assert.equal(close.status, 'OK');
  assert.deepEqual(close.untagged, [], 'RFC 3501 6.4.2: no untagged EXPUNGE responses');
  assert.equal((await client.command('FETCH 1 FLAGS')).status, 'BAD', 'back in the authenticated state');
  assert.match((await client.command('STATUS INBOX (MESSAGES)')).untagged[0], /MESSAGES 1\)/);
  assert.equal((await watcher.command('NOOP')).untagged.filter((line) => /^\d+ EXPUNGE$/.test(line)).length, 2);
  assert.deepEqual((await uidsAndSubjects(watcher)).map(([, subject]) => subject), ['two']);
  assert.equal((await server.messages('jjordan')).length, 1, 'gone from the mbox file too');
});

test('CLOSE after EXAMINE and UNSELECT after SELECT expunge nothing', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['one', 'two']) await deliver(server, subject);
  const client = await loggedIn(server);
  assert.equal((await client.command('STORE 1:2 +FLAGS.SILENT (\\Deleted)')).status, 'OK');
  const unselect = await client.command('UNSELECT');
  assert.deepEqual([unselect.status, unselect.untagged], ['OK', []]);
  assert.equal((await client.command('FETCH 1 FLAGS')).status, 'BAD', 'UNSELECT leaves the selected state');
  assert.match((await client.command('STATUS INBOX (MESSAGES)')).untagged[0], /MESSAGES 2\)/, 'RFC 3691: no expunge');
  assert.equal((await client.command('EXAMINE INBOX')).status, 'OK');
  const close = await client.command('CLOSE');
  assert.deepEqual([close.status, close.untagged], ['OK', []]);
  assert.match((await client.command('STATUS INBOX (MESSAGES)')).untagged[0], /MESSAGES 2\)/, 'RFC 3501 6.4.2: nothing removed from a read-only mailbox');
  assert.equal((await server.messages('jjordan')).length, 2);
  const again = await loggedIn(server);
  assert.match((await again.command('FETCH 1:2 FLAGS')).untagged.join('|'), /^1 FETCH \(FLAGS \(\\Deleted[^)]*\)\)\|2 FETCH \(FLAGS \(\\Deleted[^)]*\)\)$/, 'the flags stayed');
});

test('UID COPY copies by UID, answers COPYUID with the source and new UIDs, keeps flags; missing UIDs are skipped; a missing target is TRYCREATE', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['one', 'two', 'three', 'four']) await deliver(server, subject);
  const client = await loggedIn(server);
  assert.equal((await client.command('STORE 1 +FLAGS (\\Deleted)')).status, 'OK');
  assert.equal((await client.command('EXPUNGE')).status, 'OK'); // UIDs now 2, 3, 4
  assert.equal((await client.command('UID STORE 4 +FLAGS.SILENT (\\Flagged $Work)')).status, 'OK');
  assert.equal((await client.command('CREATE Work')).status, 'OK');
  const validity = await uidValidity(client, 'Work');
  const copy = await client.command('UID COPY 3:4,99 Work');
  assert.equal(copy.status, 'OK', copy.text);
  assert.match(copy.text, new RegExp(`^\\[COPYUID ${validity} 3:4 1:2\\] `));
  assert.deepEqual(copy.untagged, []);
  const source = await client.command('UID FETCH 3:4 BODY.PEEK[]');
  assert.equal((await client.command('SELECT Work')).status, 'OK');
  assert.deepEqual((await uidsAndSubjects(client)), [[1, 'three'], [2, 'four']]);
  const copied = await client.command('UID FETCH 1:2 (FLAGS BODY.PEEK[])');
  assert.deepEqual(copied.literals, source.literals, 'byte for byte');
  assert.match(copied.untagged[1], /FLAGS \(\\Flagged \$Work \\Recent\)/, 'flags travel; \\Recent is the new copy\'s');
  const missing = await client.command('UID COPY 1 Nowhere');
  assert.equal(missing.status, 'NO');
  assert.match(missing.text, /^\[TRYCREATE\] /);
  const none = await client.command('UID COPY 50:60 INBOX');
  assert.equal(none.status, 'OK', 'RFC 3501 6.4.8: a UID set matching nothing is not an error');
});

test('FETCH RFC822.HEADER and RFC822.TEXT are the header and the body byte for byte; RFC822.TEXT sets \\Seen, RFC822.HEADER does not', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'parts', 'jjordan@localhost', 'First line.\r\n\r\nAfter a blank line.\r\n');
  const client = await loggedIn(server);
  const [stored] = await server.messages('jjordan');
  const expected = crlf(stored.content);
  const split = expected.indexOf('\r\n\r\n') + 4;

  const header = await client.command('FETCH 1 RFC822.HEADER');
  assert.match(header.untagged[0], /^1 FETCH \(RFC822\.HEADER \{\d+\}/);
  assert.deepEqual(header.literals[0], expected.subarray(0, split), 'the header with its blank line');
  assert.doesNotMatch(header.untagged[0], /\\Seen/);
  assert.doesNotMatch((await client.command('FETCH 1 FLAGS')).untagged[0], /\\Seen/, 'RFC822.HEADER is like BODY.PEEK[HEADER]');

  const text = await client.command('FETCH 1 RFC822.TEXT');
  assert.match(text.untagged[0], /^1 FETCH \(RFC822\.TEXT \{\d+\}/);
  assert.deepEqual(text.literals[0], expected.subarray(split));
  assert.match(text.untagged[0], /FLAGS \(\\Seen \\Recent\)\)$/, 'the change is told with the data');
  assert.match((await client.command('FETCH 1 FLAGS')).untagged[0], /\\Seen/);
});
