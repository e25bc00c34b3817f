// SEARCH through the message cache's search text (imap/search-run.ts,
// imap/search-text.ts): the same answers when the text is worked out (the
// first search), when it is read back, on a server started afresh on the
// same files, and with the cache file gone; for the keys the text answers
// (FROM, TO, CC, BCC, SUBJECT, SENT*), the ones it does not (HEADER with
// another field, BODY, TEXT), and mixes of both with index keys, where an
// undecided message must be neither dropped nor matched too early.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { cachePathFor } from '../../src/store/message-cache-file.ts';
import { imapServer, loggedIn } from './helpers.ts';
import type { ImapClient } from '../helpers/imap-client.ts';

const MESSAGES: [string, string, string][] = [
  // [flags, internal date, message]
  ['(\\Seen)', '01-Nov-2026 10:00:00 +0000', 'From: Ana Lima <ana@example.org>\r\nTo: bob@example.net\r\nCc: carol@example.net\r\nSubject: Lunch plans\r\nDate: Sun, 1 Nov 2026 09:00:00 +0000\r\n\r\nShall we meet at noon?\r\n'],
  ['(\\Flagged $Work)', '02-Nov-2026 23:30:00 +0000', 'From: =?ISO-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.fr>\r\nTo: ana@example.org\r\nBcc: secret@example.org\r\nSubject: =?UTF-8?B?Q2Fmw6kgY3LDqG1l?=\r\nDate: Mon, 2 Nov 2026 23:30:00 -0300\r\nX-Project: Apollo\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nLe caf=E9 est pr=EAt.\r\n'],
  ['(\\Answered \\Deleted)', '05-Nov-2026 12:00:00 +0000', `From: bob@example.net\r\nTo: ana@example.org\r\nSubject: Report\r\nDate: Thu, 5 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('The quarterly numbers are in. Ünïcode too.\n').toString('base64')}\r\n${'x'.repeat(2000)}\r\n`],
  // Two From fields (each matches apart), a Date that is no date, a group, 8-bit bytes in a name.
  ['()', '06-Nov-2026 08:00:00 +0000', 'From: first@example.com\r\nFrom: Second Person <second@example.com>\r\nTo: Team: dan@example.com, eve@example.com;\r\nSubject: two froms\r\nDate: not a date at all\r\n\r\nplain words\r\n'],
  ['(\\Seen)', '07-Nov-2026 08:00:00 +0000', 'From: J\xfcrgen M\xfcller <jm@example.de>\r\nSubject: \xdcberweisung\r\n\r\nno date, latin-1 bytes in the header\r\n'],
];

// [criteria, expected sequence numbers]
const CASES: [string, string][] = [
  ['FROM ana', '1'],
  ['FROM "René"', '2'],
  ['FROM second', '4'],
  ['FROM "first@example.com"', '4'],
  ['FROM "first second"', ''], // two fields: a match never spans them
  ['FROM jürgen', '5'],
  ['TO ana@example.org', '2 3'],
  ['TO team', '4'],
  ['TO eve', '4'],
  ['CC carol', '1'],
  ['BCC secret', '2'],
  ['SUBJECT "café crème"', '2'],
  ['SUBJECT überweisung', '5'],
  ['SUBJECT ""', '1 2 3 4 5'],
  ['CC ""', '1'],
  ['HEADER FROM ana', '1'],
  ['HEADER X-Project apollo', '2'],
  ['HEADER X-Project ""', '2'],
  ['HEADER Sender ""', ''],
  ['SENTBEFORE 2-Nov-2026', '1'],
  ['SENTON 2-Nov-2026', '2'],
  ['SENTSINCE 3-Nov-2026', '3'],
  ['NOT SENTSINCE 1-Jan-1990', '4 5'], // without a Date that is a date, a message matches no SENT* key: NOT makes it match
  ['BODY "café est"', '2'],
  ['BODY quarterly', '3'],
  ['TEXT "Lunch plans"', '1'],
  ['TEXT jürgen', '5'],
  ['SEEN FROM ana', '1'],
  ['SEEN FROM bob', ''],
  ['UNSEEN TO ana', '2 3'],
  ['OR SEEN FROM bob', '1 3 5'],
  ['OR FROM bob SEEN', '1 3 5'],
  ['NOT FROM ana', '2 3 4 5'],
  ['(OR FROM ana FROM bob) NOT DELETED', '1'],
  ['OR (FROM rene BODY "est") (SUBJECT report DELETED)', '2 3'],
  ['FLAGGED OR BODY noon HEADER X-Project apollo', '2'],
  ['2:4 FROM example', '2 3 4'],
  ['UID 4:* SUBJECT "two"', '4'],
];

async function search(client: ImapClient, criteria: string): Promise<string> {
  const reply = await client.command(`SEARCH CHARSET UTF-8 ${criteria}`);
  assert.equal(reply.status, 'OK', `${criteria}: ${reply.text}`);
  return reply.untagged.find((line) => line.startsWith('SEARCH'))!.replace(/^SEARCH ?/, '');
}

async function allCases(client: ImapClient, when: string): Promise<void> {
  for (const [criteria, want] of CASES) assert.equal(await search(client, criteria), want, `${when}: ${criteria}`);
}

test('the same answers with the search text worked out, read back, after a restart, and without the cache file', async (t) => {
  const first = await imapServer(t);
  const client = await loggedIn(first);
  for (const [flags, date, message] of MESSAGES) {
    assert.equal((await client.commandWithLiterals([`APPEND INBOX ${flags} "${date}" `, Buffer.from(message, 'latin1')])).status, 'OK');
  }
  await client.command('NOOP');
  assert.equal(await search(client, 'FROM ana'), '1', 'the first search works the text out');
  await allCases(client, 'cached');
  await allCases(client, 'again');
  const inbox = first.mboxPath('jjordan');
  await client.command('LOGOUT');
  await first.stop();

  // A server started afresh on the same files (the cache file read), then without the cache file.
  for (const withCache of [true, false]) {
    const second = await imapServer(t);
    const accountDir = dirname(second.mboxPath('jjordan'));
    await rm(accountDir, { recursive: true, force: true });
    await cp(dirname(inbox), accountDir, { recursive: true });
    if (!withCache) await rm(cachePathFor(second.mboxPath('jjordan')));
    const again = await loggedIn(second);
    await allCases(again, withCache ? 'restarted' : 'no cache file');
    await again.command('LOGOUT');
    await second.stop();
  }
});

test('each case alone on a fresh mailbox (the text worked out for it) gives the same answer', async (t) => {
  const server = await imapServer(t);
  // One folder per case: its first search is the one that works the text out.
  const admin = await loggedIn(server, 'jjordan', 'secret', null);
  for (let i = 0; i < CASES.length; i++) {
    assert.equal((await admin.command(`CREATE case${i}`)).status, 'OK');
    for (const [flags, date, message] of MESSAGES) {
      assert.equal((await admin.commandWithLiterals([`APPEND case${i} ${flags} "${date}" `, Buffer.from(message, 'latin1')])).status, 'OK');
    }
  }
  const client = await loggedIn(server, 'jjordan', 'secret', null);
  for (const [i, [criteria, want]] of CASES.entries()) {
    assert.equal((await client.command(`EXAMINE case${i}`)).status, 'OK');
    assert.equal(await search(client, criteria), want, `fresh: ${criteria}`);
  }
});
