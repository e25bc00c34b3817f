// CONDSTORE (RFC 7162) and IMAP4rev2 (RFC 9051) over real sockets, with the
// extensions IMAP4rev2 builds on: LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), STATUS SIZE (RFC 8438), UTF-8 names for IMAP4rev2 (RFC 9051 5.1).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn, deliver } from './helpers.ts';

const modseqOf = (line: string) => Number(/MODSEQ \((\d+)\)/.exec(line)![1]);

test('CONDSTORE: HIGHESTMODSEQ, MODSEQ per message, CHANGEDSINCE, UNCHANGEDSINCE, SEARCH MODSEQ, STATUS', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b', 'c']) await deliver(server, subject);
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  const select = await client.command('SELECT INBOX (CONDSTORE)');
  const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(select.untagged.join('\n'))![1]);
  assert.ok(highest > 0);
  const before = await client.command('FETCH 1:* (MODSEQ)');
  assert.equal(before.untagged.length, 3);
  assert.ok(before.untagged.every((line) => modseqOf(line) <= highest));

  const store = await client.command('STORE 2 +FLAGS (\\Flagged)');
  const changed = modseqOf(store.untagged[0]);
  assert.ok(changed > highest, 'a change gets a new mod-sequence');
  assert.match(store.untagged[0], /^2 FETCH \(UID 2 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$/);

  // Only what changed since: what a phone asks for when it reconnects.
  assert.deepEqual((await client.command(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`)).untagged, [`2 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (${changed}))`]);
  assert.deepEqual((await client.command(`UID SEARCH MODSEQ ${highest + 1}`)).untagged[0], `SEARCH 2 (MODSEQ ${changed})`);

  // A conditional STORE that lost the race changes nothing and says MODIFIED.
  const conditional = await client.command(`STORE 1:2 (UNCHANGEDSINCE ${highest}) +FLAGS (\\Seen)`);
  assert.equal(conditional.status, 'OK');
  assert.match(conditional.text, /^\[MODIFIED 2\] /);
  assert.doesNotMatch((await client.command('FETCH 2 FLAGS')).untagged[0], /\\Seen/);
  assert.match((await client.command('FETCH 1 FLAGS')).untagged[0], /\\Seen/);

  // Another session's change reaches this one with its MODSEQ.
  const other = await loggedIn(server);
  await other.command('STORE 3 +FLAGS ($Later)');
  const noop = await client.command('NOOP');
  assert.match(noop.untagged.join('\n'), /^3 FETCH \(UID 3 FLAGS \(\$Later \\Recent\) MODSEQ \(\d+\)\)$/m);
  assert.match((await other.command('STATUS INBOX (HIGHESTMODSEQ MESSAGES)')).untagged[0], /HIGHESTMODSEQ \d+ MESSAGES 3/);
});

test('HIGHESTMODSEQ on every SELECT and EXAMINE, CONDSTORE on or not (RFC 7162 3.1.2.1); saying it does not switch CONDSTORE on', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  for (const verb of ['SELECT', 'EXAMINE']) {
    const opened = await client.command(`${verb} INBOX`);
    assert.equal(opened.status, 'OK');
    const highest = opened.untagged.filter((line) => /^OK \[HIGHESTMODSEQ \d+\] /.test(line));
    assert.equal(highest.length, 1, `${verb}: ${JSON.stringify(opened.untagged)}`);
    assert.ok(!opened.untagged.some((line) => /NOMODSEQ/.test(line)), 'this server keeps mod-sequences for every mailbox');
    const status = await client.command('STATUS INBOX (HIGHESTMODSEQ)');
    assert.equal(/HIGHESTMODSEQ (\d+)/.exec(highest[0])![1], /HIGHESTMODSEQ (\d+)/.exec(status.untagged[0])![1]);
  }
  assert.match((await client.command('FETCH 1 FLAGS')).untagged[0], /^1 FETCH \(FLAGS \([^)]*\)\)$/, 'no MODSEQ: CONDSTORE is still off');
});

test('ENABLE CONDSTORE and ENABLE IMAP4rev2: the answers change as RFC 9051 says', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  assert.match((await client.command('CAPABILITY')).untagged[0], /\bIMAP4rev1 IMAP4rev2\b/);
  assert.deepEqual((await client.command('ENABLE IMAP4rev2 CONDSTORE X-UNKNOWN')).untagged, ['ENABLED CONDSTORE IMAP4rev2']);
  const select = await client.command('SELECT INBOX');
  assert.ok(!select.untagged.some((line) => /RECENT|UNSEEN/.test(line)), 'no \\Recent and no UNSEEN in IMAP4rev2');
  assert.ok(select.untagged.includes('LIST () "/" INBOX'));
  assert.match(select.untagged.join('\n'), /HIGHESTMODSEQ/);
  assert.match((await client.command('FETCH 1 FLAGS')).untagged[0], /^1 FETCH \(FLAGS \(\) MODSEQ \(\d+\)\)$/);
  assert.match((await client.command('SEARCH ALL')).untagged[0], /^ESEARCH \(TAG "t\d+"\) ALL 1$/, 'SEARCH answers as ESEARCH');
  // UTF-8 names instead of modified UTF-7.
  assert.equal((await client.command('CREATE "Entwürfe"')).status, 'OK');
  const list = await client.command('LIST "" "Entw*"');
  // UTF-8 bytes in a literal (the test client shows a literal's bytes one character per byte).
  assert.equal(list.untagged[0], `LIST (\\HasNoChildren) "/" {9}${Buffer.from('Entwürfe').toString('latin1')}`);
  const other = await loggedIn(server, 'jjordan', 'secret', null);
  assert.match((await other.command('LIST "" "Entw*"')).untagged[0], /"\/" Entw&APw-rfe$/, 'an IMAP4rev1 client still sees modified UTF-7');
});

test('UTF8=ACCEPT is not offered (no APPEND UTF8 form here): ENABLE leaves it out, and names stay modified UTF-7 (RFC 5161 3.1)', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  assert.doesNotMatch((await client.command('CAPABILITY')).untagged[0], /UTF8=/);
  assert.equal((await client.command('CREATE Entw&APw-rfe')).status, 'OK');
  const enable = await client.command('ENABLE UTF8=ACCEPT');
  assert.deepEqual([enable.status, enable.untagged], ['OK', ['ENABLED']]);
  assert.match((await client.command('LIST "" "Entw*"')).untagged[0], /"\/" Entw&APw-rfe$/);
  assert.equal((await client.command('SELECT Entw&APw-rfe')).status, 'OK', 'modified UTF-7 is still how names are read');
});

test('LIST-EXTENDED and LIST-STATUS: selection and return options, several patterns, STATUS SIZE', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  await client.command('CREATE Lists/node');
  await client.command('SUBSCRIBE Lists/node');
  await client.command('SUBSCRIBE Gone');
  const subscribed = await client.command('LIST (SUBSCRIBED) "" "*"');
  assert.ok(subscribed.untagged.includes('LIST (\\HasNoChildren \\Subscribed) "/" Lists/node'));
  assert.ok(subscribed.untagged.includes('LIST (\\NonExistent \\Subscribed) "/" Gone'));
  assert.ok(!subscribed.untagged.some((line) => line.endsWith(' Lists')), 'Lists itself is not subscribed');
  const recursive = await client.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"');
  assert.ok(recursive.untagged.includes('LIST (\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))'), recursive.untagged.join('\n'));
  // RFC 5258 3: RECURSIVEMATCH alone, or with REMOTE only, is BAD.
  for (const options of ['RECURSIVEMATCH', 'REMOTE RECURSIVEMATCH']) {
    const alone = await client.command(`LIST (${options}) "" "*"`);
    assert.equal(alone.status, 'BAD', options);
    assert.deepEqual(alone.untagged, []);
  }
  assert.equal((await client.command('LIST (REMOTE) "" "*"')).status, 'OK', 'REMOTE alone is fine');
  const special = await client.command('LIST (SPECIAL-USE) "" "*"');
  assert.deepEqual(special.untagged.map((line) => line.split(' ').at(-1)).sort(), ['Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);
  const both = await client.command('LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN SIZE))');
  assert.deepEqual(both.untagged.map((line) => line.replace(/SIZE \d+/, 'SIZE n')), [
    'LIST (\\HasNoChildren) "/" INBOX',
    'STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE n)',
    'LIST (\\HasNoChildren \\Sent) "/" Sent',
    'STATUS Sent (MESSAGES 0 UNSEEN 0 SIZE n)',
  ]);
  const size = Number(/SIZE (\d+)/.exec(both.untagged[1])![1]);
  const select = await client.command('SELECT INBOX');
  assert.ok(select.status === 'OK');
  assert.equal(size, Number(/RFC822.SIZE (\d+)/.exec((await client.command('FETCH 1 RFC822.SIZE')).untagged[0])![1]), 'SIZE is the octets a client would fetch');
});
