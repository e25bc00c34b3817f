// IMAP folder commands over real sockets: names that try to leave the
// account (every traversal and cross-account attempt), name collisions,
// INBOX's rename rule, LIST/LSUB/STATUS/NAMESPACE, APPEND.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { imapServer, loggedIn, deliver, uidsAndSubjects } from './helpers.ts';

/** Every file under `dir`, relative, sorted. */
async function tree(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (at: string, prefix: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      found.push(prefix + entry.name);
      if (entry.isDirectory()) await walk(join(at, entry.name), `${prefix}${entry.name}/`);
    }
  };
  await walk(dir, '');
  return found.sort();
}

test('no mailbox name reaches outside the account: every traversal attempt is refused', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  const before = await tree(server.dataDir);
  const attempts = [
    '..',
    '../ana/INBOX',
    '../../passwd',
    'a/../../ana/INBOX',
    '/etc/passwd',
    '.INBOX.index',
    '.hidden',
    'Work/.index',
    'Sent.lock',
    'Sent.LOCK',
    'Archive.sbd',
    'tab\there',
    'x'.repeat(300),
    'a//b',
    './INBOX',
    'INBOX/../../ana',
  ];
  for (const name of attempts) {
    for (const command of [`CREATE {${Buffer.byteLength(name)}+}\r\n${name}`, `SELECT {${Buffer.byteLength(name)}+}\r\n${name}`, `RENAME Sent {${Buffer.byteLength(name)}+}\r\n${name}`]) {
      const reply = await client.command(command);
      assert.notEqual(reply.status, 'OK', `${command.split('\r\n')[0]} ${JSON.stringify(name)} was accepted`);
    }
  }
  // A NUL byte in a literal, and modified UTF-7 that does not decode.
  assert.notEqual((await client.command('CREATE {3+}\r\na\x00b')).status, 'OK');
  assert.equal((await client.command('CREATE "Entw&APw"')).status, 'BAD');
  assert.deepEqual(await tree(server.dataDir), before, 'nothing was created or changed anywhere');
  assert.equal((await client.command('SELECT Sent')).status, 'OK', 'the folders are still there');
});

test("one account never sees another's folders", async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'for jjordan only');
  const ana = await loggedIn(server, 'ana', 'ana-pw', null);
  for (const name of ['../jjordan/INBOX', '~jjordan/INBOX', '/jjordan/INBOX', 'jjordan/INBOX']) {
    const reply = await ana.command(`SELECT "${name}"`);
    assert.equal(reply.status, 'NO', name);
  }
  assert.equal((await ana.command('SELECT INBOX')).untagged.find((l) => / EXISTS$/.test(l)), '0 EXISTS');
  const list = await ana.command('LIST "" *');
  assert.ok(!list.untagged.some((line) => line.includes('jjordan')));
});

test('names that differ only in case collide (the account must stay copyable to a case-blind disk)', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  assert.equal((await client.command('CREATE Work')).status, 'OK');
  const again = await client.command('CREATE work');
  assert.deepEqual([again.status, /\[ALREADYEXISTS\]/.test(again.text)], ['NO', true]);
  assert.equal((await client.command('RENAME Sent WORK')).status, 'NO');
  assert.equal((await client.command('CREATE inbox')).status, 'NO', 'INBOX in any case');
  assert.equal((await client.command('SELECT inbox')).status, 'OK');
});

test('RENAME INBOX moves its messages and leaves an empty INBOX that keeps receiving (RFC 3501 6.3.5)', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  await deliver(server, 'two');
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  assert.equal((await client.command('RENAME INBOX Old')).status, 'OK');
  assert.match((await client.command('STATUS Old (MESSAGES)')).untagged[0], /MESSAGES 2/);
  assert.match((await client.command('STATUS INBOX (MESSAGES)')).untagged[0], /MESSAGES 0/);
  await deliver(server, 'three');
  assert.equal((await client.command('SELECT INBOX')).status, 'OK');
  assert.deepEqual((await uidsAndSubjects(client)).map(([, s]) => s), ['three']);
  assert.equal((await client.command('SELECT Old')).status, 'OK');
  assert.deepEqual((await uidsAndSubjects(client)).map(([, s]) => s), ['one', 'two']);
});

test('LIST with patterns, LSUB after SUBSCRIBE and UNSUBSCRIBE, NAMESPACE, STATUS', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'unread');
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  assert.equal((await client.command('CREATE Lists/node')).status, 'OK');
  assert.equal((await client.command('CREATE Lists/ietf')).status, 'OK');
  assert.deepEqual((await client.command('LIST "" Lists/%')).untagged, ['LIST (\\HasNoChildren) "/" Lists/ietf', 'LIST (\\HasNoChildren) "/" Lists/node']);
  assert.deepEqual((await client.command('LIST Lists/ %')).untagged, ['LIST (\\HasNoChildren) "/" Lists/ietf', 'LIST (\\HasNoChildren) "/" Lists/node']);
  assert.deepEqual((await client.command('LIST "" ""')).untagged, ['LIST (\\Noselect) "/" ""']);
  assert.equal((await client.command('SUBSCRIBE Lists/node')).status, 'OK');
  assert.ok((await client.command('LSUB "" Lists/*')).untagged.includes('LSUB () "/" Lists/node'));
  assert.equal((await client.command('UNSUBSCRIBE Lists/node')).status, 'OK');
  assert.deepEqual((await client.command('LSUB "" Lists/*')).untagged, []);
  assert.deepEqual((await client.command('NAMESPACE')).untagged, ['NAMESPACE (("" "/")) NIL NIL']);
  const status = await client.command('STATUS INBOX (MESSAGES RECENT UNSEEN UIDNEXT UIDVALIDITY)');
  assert.match(status.untagged[0], /^STATUS INBOX \(MESSAGES 1 RECENT 1 UNSEEN 1 UIDNEXT 2 UIDVALIDITY \d+\)$/);
  assert.equal((await client.command('STATUS INBOX (BOGUS)')).status, 'BAD');
});

test('APPEND with flags and a date answers APPENDUID; the selected mailbox hears of it; a missing folder is TRYCREATE', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server);
  const message = Buffer.from('From: me@localhost\r\nSubject: appended\r\n\r\nline one\r\nFrom here on\r\n');
  const reply = await client.commandWithLiterals(['APPEND INBOX (\\Seen $Draftish) "17-Jul-1996 02:44:25 -0700" ', message]);
  assert.equal(reply.status, 'OK');
  assert.match(reply.text, /^\[APPENDUID \d+ 1\] /);
  assert.ok(reply.untagged.includes('1 EXISTS'), 'the session was told at once');
  const fetched = await client.command('FETCH 1 (FLAGS INTERNALDATE BODY.PEEK[])');
  assert.match(fetched.untagged[0], /FLAGS \(\\Seen \$Draftish \\Recent\) INTERNALDATE "17-Jul-1996 09:44:25 \+0000"/, "new to this session, so \\Recent");
  assert.deepEqual(fetched.literals[0], message, 'byte for byte, a From line inside the body included');
  assert.match(await readFile(server.mboxPath('jjordan'), 'utf8'), /\n>From here on\n/, 'stored mboxrd-quoted');
  const missing = await client.commandWithLiterals(['APPEND Nowhere ', message]);
  assert.equal(missing.status, 'NO');
  assert.match(missing.text, /^\[TRYCREATE\] /);
  assert.equal((await client.commandWithLiterals(['APPEND INBOX (\\Recent) ', message])).status, 'BAD');
});
