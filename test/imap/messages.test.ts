// IMAP message commands over real sockets: FETCH byte for byte, \Seen and
// PEEK, STORE and its refusals, UIDs that stay the same across reconnects,
// deliveries, expunges and restarts, an index rebuilt after it was
// deleted, and the index reconciled with changes other programs made.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { startServer } from '../../src/main.ts';
import { createLogger } from '../../src/log.ts';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { imapServer, loggedIn, deliver, uidsAndSubjects, uidValidity } from './helpers.ts';
import { connectImap } from '../helpers/imap-client.ts';

const crlf = (lf: Buffer) => Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');

test('FETCH: BODY[] is the stored message byte for byte (CRLF, From lines unquoted); sizes, partials and sections agree', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'exact', 'jjordan@localhost', 'From the desk\r\n.leading dot\r\n>From quoted\r\n');
  const client = await loggedIn(server);
  const [stored] = await server.messages('jjordan');
  const expected = crlf(stored.content);
  const whole = await client.command('FETCH 1 (RFC822.SIZE BODY.PEEK[])');
  assert.equal(Number(/RFC822.SIZE (\d+)/.exec(whole.untagged[0])![1]), expected.length);
  assert.deepEqual(whole.literals[0], expected);
  const partial = await client.command('FETCH 1 BODY.PEEK[]<10.20>');
  assert.deepEqual(partial.literals[0], expected.subarray(10, 30));
  assert.match(partial.untagged[0], /BODY\[\]<10> \{20\}/);
  const beyond = await client.command('FETCH 1 BODY.PEEK[]<100000.5>');
  assert.match(beyond.untagged[0], /BODY\[\]<100000> \{0\}/);
  const parts = await client.command('FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[1])');
  const split = expected.indexOf('\r\n\r\n') + 4;
  assert.deepEqual(parts.literals[0], expected.subarray(0, split));
  assert.deepEqual(parts.literals[1], expected.subarray(split));
  assert.deepEqual(parts.literals[2], expected.subarray(split), 'part 1 of a single-part message is its body');
  assert.equal((await client.command('FETCH 1 FLAGS')).untagged[0], '1 FETCH (FLAGS (\\Recent))', 'PEEK left \\Seen alone');
});

test('BODY[] of a few messages: small ones answered at once, more than 128 KiB of them streamed; the same bytes either way', async (t) => {
  const server = await imapServer(t);
  const line = `${'x'.repeat(70)}\r\n`;
  for (const [subject, lines] of [['small one', 2], ['big one', 1000], ['big two', 1000], ['small two', 3]] as const) {
    await deliver(server, subject, 'jjordan@localhost', line.repeat(lines));
  }
  const client = await loggedIn(server);
  const stored = (await server.messages('jjordan')).map((m) => crlf(m.content));
  for (const set of ['1,4', '1:4', '2', '2:3']) {
    const reply = await client.command(`FETCH ${set} (UID BODY.PEEK[])`);
    assert.equal(reply.status, 'OK', reply.text);
    const seqs = reply.untagged.map((u) => Number(/^(\d+) FETCH/.exec(u)![1]));
    assert.deepEqual(reply.literals, seqs.map((seq) => stored[seq - 1]), set);
  }
});

test('a body FETCH sets \\Seen (and says so); in a mailbox opened with EXAMINE nothing changes', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  await deliver(server, 'two');
  const examiner = await loggedIn(server, 'jjordan', 'secret', null);
  assert.match((await examiner.command('EXAMINE INBOX')).text, /^\[READ-ONLY\]/);
  assert.doesNotMatch((await examiner.command('FETCH 1 BODY[TEXT]')).untagged[0], /\\Seen/);
  const refused = await examiner.command('STORE 1 +FLAGS (\\Flagged)');
  assert.deepEqual([refused.status, /\[READ-ONLY\]/.test(refused.text)], ['NO', true]);
  const client = await loggedIn(server);
  assert.match((await client.command('FETCH 2 RFC822')).untagged[0], /FLAGS \(\\Seen \\Recent\)\)$/);
  assert.match((await client.command('FETCH 1:2 FLAGS')).untagged.join('|'), /^1 FETCH \(FLAGS \(\\Recent\)\)\|2 FETCH \(FLAGS \(\\Seen \\Recent\)\)$/);
});

test('FETCH of index items alone (the fast path) says exactly what the general path says: flags, keywords, \\Recent, dates, sizes, MODSEQ, sequence numbers', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['one', 'two', 'three', 'four']) await deliver(server, subject);
  const other = await loggedIn(server);
  assert.equal((await other.command('STORE 2 +FLAGS (\\Seen $Important)')).status, 'OK');
  assert.equal((await other.command('UID EXPUNGE 9')).status, 'OK'); // nothing: UIDs stay 1..4
  await other.command('LOGOUT');
  await deliver(server, 'five'); // \Recent for the next session only
  const client = await loggedIn(server);
  assert.equal((await client.command('STORE 3 +FLAGS (\\Flagged)')).status, 'OK');
  const items = 'UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ';
  const fast = await client.command(`FETCH 1:* (${items})`);
  // A header section sends the same FETCH through the general path (fetch-data.ts).
  const general = await client.command(`FETCH 1:* (${items} BODY.PEEK[HEADER.FIELDS (X-None)])`);
  assert.equal(fast.status, 'OK');
  assert.equal(fast.untagged.length, 5);
  const withoutSection = general.untagged.map((line) => line.replace(/ BODY\[HEADER\.FIELDS \(X-NONE\)\] \{2\}\r\n\)$/, ')'));
  assert.deepEqual(fast.untagged, withoutSection);
  assert.match(fast.untagged[1], /^2 FETCH \(UID 2 FLAGS \(\\Seen \$Important\) INTERNALDATE "[^"]+" RFC822\.SIZE \d+ MODSEQ \(\d+\)\)$/);
  assert.match(fast.untagged[4], /^5 FETCH \(UID 5 FLAGS \(\\Recent\) /);
  const beforeStore = /MODSEQ \((\d+)\)/.exec(fast.untagged[4])![1]; // the delivery of UID 5
  const changed = await client.command(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${beforeStore})`);
  assert.deepEqual(changed.untagged.map((line) => /^(\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ/.exec(line)?.slice(1)), [['3', '3', '\\Flagged']]);
});

test('FETCH of index items over 64 KiB of responses, whole folder and scattered UIDs: the same as the general path says', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'first'); // (makes the mailbox)
  const mbox = server.mboxPath('jjordan');
  await withMailboxLock(mbox, async () => {
    let text = await readFile(mbox, 'utf8');
    for (let i = 0; i < 1500; i++) text += `From someone@example.net Mon Nov 23 10:00:00 2026\nSubject: m${i}\n\n${'x'.repeat(i % 50)}\n\n`;
    await writeFile(mbox, text);
  });
  const client = await loggedIn(server);
  for (const store of ['STORE 1:700 +FLAGS (\\Seen)', 'STORE 300:900 +FLAGS (\\Flagged $Label1)', 'STORE 1400 +FLAGS (\\Deleted)']) {
    assert.equal((await client.command(store)).status, 'OK');
  }
  const section = ' BODY.PEEK[HEADER.FIELDS (X-None)]';
  const strip = (lines: string[]) => lines.map((line) => line.replace(/ BODY\[HEADER\.FIELDS \(X-NONE\)\] \{2\}\r\n\)$/, ')'));
  for (const command of ['FETCH 1:* (UID FLAGS RFC822.SIZE)', 'UID FETCH 5,900:1000,1499,3000 (FLAGS MODSEQ)', 'FETCH 1501,1,2:3 (RFC822.SIZE UID)']) {
    const fast = await client.command(command);
    const general = await client.command(command.replace(/\)$/, `${section})`));
    assert.equal(fast.status, 'OK', fast.text);
    assert.deepEqual(fast.untagged, strip(general.untagged), command);
  }
  const all = await client.command('FETCH 1:* (UID FLAGS RFC822.SIZE)');
  assert.equal(all.untagged.length, 1501);
  assert.ok(all.untagged.join('\r\n').length > 64 * 1024, 'more than one buffer of responses');
  // (\Recent: this session is the first to see them; MODSEQ: the FETCH of MODSEQ above turned CONDSTORE on.)
  assert.match(all.untagged[1399], /^1400 FETCH \(UID 1400 FLAGS \(\\Deleted \\Recent\) RFC822\.SIZE \d+ MODSEQ \(\d+\)\)$/);
});

test('STORE: FLAGS, +FLAGS, -FLAGS, .SILENT, keywords; \\Recent and bad flags are refused; sequence numbers past the end are BAD', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  const client = await loggedIn(server);
  assert.deepEqual((await client.command('STORE 1 FLAGS (\\Answered $Work)')).untagged, ['1 FETCH (FLAGS (\\Answered $Work \\Recent))']);
  assert.deepEqual((await client.command('STORE 1 -FLAGS ($Work)')).untagged, ['1 FETCH (FLAGS (\\Answered \\Recent))']);
  assert.deepEqual((await client.command('UID STORE 1 +FLAGS.SILENT \\Draft')).untagged, []);
  assert.deepEqual((await client.command('UID FETCH 1 FLAGS')).untagged, ['1 FETCH (UID 1 FLAGS (\\Answered \\Draft \\Recent))']);
  assert.equal((await client.command('STORE 1 +FLAGS (\\Recent)')).status, 'NO');
  assert.equal((await client.command('STORE 1 +FLAGS (\\Bogus)')).status, 'NO');
  assert.equal((await client.command('STORE 2 +FLAGS (\\Seen)')).status, 'BAD');
  assert.equal((await client.command('UID STORE 99 +FLAGS (\\Seen)')).status, 'OK', 'a UID that is not there is skipped');
  // Flags live in the index and its journal; the mbox is never rewritten for them.
  const mbox = await readFile(server.mboxPath('jjordan'));
  await client.command('STORE 1 +FLAGS (\\Flagged)');
  assert.deepEqual(await readFile(server.mboxPath('jjordan')), mbox);
});

test('UIDs stay the same across reconnects, deliveries, expunges and a restart of the server', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b', 'c']) await deliver(server, subject);
  const first = await loggedIn(server);
  const before = await uidsAndSubjects(first);
  const validity = await uidValidity(first);
  await first.command('STORE 2 +FLAGS (\\Deleted \\Flagged)');
  await first.command('EXPUNGE');
  await deliver(server, 'd');
  const again = await loggedIn(server);
  assert.deepEqual(await uidsAndSubjects(again), [before[0], before[2], [before[2][0] + 1, 'd']]);
  assert.equal(await uidValidity(again), validity);
  // A restart: a new server on the same data directory.
  await server.stop();
  const restarted = await startServer(server.config, createLogger({ quiet: true }));
  t.after(() => restarted.close());
  const client = server.track(await connectImap(restarted.imap.ports.imap));
  await client.greeting();
  await client.command('LOGIN jjordan secret');
  await client.command('SELECT INBOX');
  assert.deepEqual(await uidsAndSubjects(client), [before[0], before[2], [before[2][0] + 1, 'd']]);
  assert.equal(await uidValidity(client), validity);
});

test('an index that was deleted is rebuilt from the mbox: every message is there, under a new UIDVALIDITY', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b']) await deliver(server, subject);
  const first = await loggedIn(server);
  const validity = await uidValidity(first);
  await first.command('LOGOUT');
  await server.stop();
  await rm(join(dirname(server.mboxPath('jjordan')), '.INBOX.index'));
  const restarted = await startServer(server.config, createLogger({ quiet: true }));
  t.after(() => restarted.close());
  const client = server.track(await connectImap(restarted.imap.ports.imap));
  await client.greeting();
  await client.command('LOGIN jjordan secret');
  await client.command('SELECT INBOX');
  assert.deepEqual((await uidsAndSubjects(client)).map(([, subject]) => subject), ['a', 'b']);
  assert.notEqual(await uidValidity(client), validity, 'the client must forget its cache');
});

test('changes by other programs: an outside append gets the next UID, an outside delete keeps the other UIDs', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b', 'c']) await deliver(server, subject);
  const client = await loggedIn(server);
  const before = await uidsAndSubjects(client);
  const mbox = server.mboxPath('jjordan');
  // As procmail would: take the dot-lock, append a message.
  await withMailboxLock(mbox, async () => {
    const text = await readFile(mbox, 'utf8');
    await writeFile(mbox, `${text}From someone@example.net Mon Nov 23 10:00:00 2026\nSubject: outside\n\nhi\n\n`);
  });
  assert.ok((await client.command('NOOP')).untagged.includes('4 EXISTS'));
  // As mutt would: rewrite the file without message "b".
  await withMailboxLock(mbox, async () => {
    const messages = (await readFile(mbox, 'utf8')).split(/\n(?=From )/);
    await writeFile(mbox, messages.filter((m) => !m.includes('Subject: b\n')).join('\n'));
  });
  const noop = await client.command('NOOP');
  assert.ok(noop.untagged.includes('2 EXPUNGE'), noop.untagged.join('|'));
  const after = await uidsAndSubjects(client);
  assert.deepEqual(after.slice(0, 2), [before[0], before[2]]);
  assert.equal(after[2][1], 'outside');
  assert.ok(after[2][0] > before[2][0]);
});

test('a large message streams out whole (5 MiB BODY[])', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxMessageBytes: 20 * 1024 * 1024 } } });
  const line = `${'m'.repeat(98)}\r\n`;
  await deliver(server, 'large', 'jjordan@localhost', line.repeat(50_000));
  const client = await loggedIn(server);
  const reply = await client.command('FETCH 1 BODY.PEEK[TEXT]', 20_000);
  assert.equal(reply.literals[0].length, line.length * 50_000);
  assert.ok(reply.literals[0].equals(Buffer.from(line.repeat(50_000))));
});
