// SEARCH with every RFC 3501 key (6.4.4), over real sockets, on messages
// written to exercise each: encoded-word subjects, quoted-printable and
// base64 bodies in other charsets, dates on both sides of a day, flags and
// keywords, sizes. Then CHARSET, ESEARCH (RFC 4731) and SEARCHRES (RFC 5182).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn } from './helpers.ts';
import type { ImapClient } from '../helpers/imap-client.ts';

const MESSAGES: [string, string, string][] = [
  // [flags, internal date, message]
  ['(\\Seen)', '01-Nov-2026 10:00:00 +0000', 'From: Ana Lima <ana@example.org>\r\nTo: bob@example.net\r\nCc: carol@example.net\r\nSubject: Lunch plans\r\nDate: Sun, 1 Nov 2026 09:00:00 +0000\r\n\r\nShall we meet at noon?\r\n'],
  ['(\\Flagged $Work)', '02-Nov-2026 23:30:00 +0000', 'From: =?ISO-8859-1?Q?Ren=E9_Dupr=E9?= <rene@example.fr>\r\nTo: ana@example.org\r\nBcc: secret@example.org\r\nSubject: =?UTF-8?B?Q2Fmw6kgY3LDqG1l?=\r\nDate: Mon, 2 Nov 2026 23:30:00 -0300\r\nX-Project: Apollo\r\nContent-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nLe caf=E9 est pr=EAt.\r\n'],
  ['(\\Answered \\Deleted)', '05-Nov-2026 12:00:00 +0000', `From: bob@example.net\r\nTo: ana@example.org\r\nSubject: Report\r\nDate: Thu, 5 Nov 2026 12:00:00 +0000\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from('The quarterly numbers are in. Ünïcode too.\n').toString('base64')}\r\n${'x'.repeat(2000)}\r\n`],
];

async function mailbox(t: Parameters<typeof imapServer>[0]): Promise<ImapClient> {
  const server = await imapServer(t);
  const client = await loggedIn(server);
  for (const [flags, date, message] of MESSAGES) {
    assert.equal((await client.commandWithLiterals([`APPEND INBOX ${flags} "${date}" `, Buffer.from(message)])).status, 'OK');
  }
  await client.command('NOOP');
  return client;
}

const found = async (client: ImapClient, criteria: string) => {
  const reply = await client.command(`SEARCH ${criteria}`);
  assert.equal(reply.status, 'OK', `${criteria}: ${reply.text}`);
  return reply.untagged.find((line) => line.startsWith('SEARCH'))!.replace(/^SEARCH ?/, '');
};

test('every RFC 3501 search key', async (t) => {
  const client = await mailbox(t);
  const cases: [string, string][] = [
    ['ALL', '1 2 3'],
    ['FROM ana', '1'],
    ['FROM "René"', '2'], // decoded RFC 2047 display name
    ['TO ana@example.org', '2 3'],
    ['CC carol', '1'],
    ['BCC secret', '2'],
    ['SUBJECT "café crème"', '2'], // decoded UTF-8 encoded-word, any case
    ['SUBJECT lunch', '1'],
    ['HEADER X-Project apollo', '2'],
    ['HEADER X-Project ""', '2'],
    ['BODY "café est"', '2'], // quoted-printable in ISO-8859-1, decoded
    ['BODY quarterly', '3'], // base64 in UTF-8, decoded
    ['BODY ünïcode', '3'],
    ['TEXT noon', '1'],
    ['TEXT "Lunch plans"', '1'], // TEXT includes the header
    ['BEFORE 2-Nov-2026', '1'],
    ['ON 2-Nov-2026', '2'],
    ['SINCE 2-Nov-2026', '2 3'],
    ['SENTBEFORE 2-Nov-2026', '1'],
    ['SENTON 2-Nov-2026', '2'], // its own zone's day, not UTC's (RFC 3501 6.4.4)
    ['SENTSINCE 3-Nov-2026', '3'],
    ['LARGER 1000', '3'],
    ['SMALLER 1000', '1 2'],
    ['SEEN', '1'],
    ['UNSEEN', '2 3'],
    ['FLAGGED', '2'],
    ['UNFLAGGED', '1 3'],
    ['ANSWERED', '3'],
    ['UNANSWERED', '1 2'],
    ['DELETED', '3'],
    ['UNDELETED', '1 2'],
    ['DRAFT', ''],
    ['UNDRAFT', '1 2 3'],
    ['KEYWORD $Work', '2'],
    ['UNKEYWORD $work', '1 3'],
    ['RECENT', '1 2 3'],
    ['NEW', '2 3'],
    ['OLD', ''],
    ['NOT SEEN', '2 3'],
    ['OR SEEN FLAGGED', '1 2'],
    ['(OR FROM ana FROM bob) NOT DELETED', '1'],
    ['2:3', '2 3'],
    ['*', '3'],
    ['UID 1,3', '1 3'],
    ['UID 2:*', '2 3'],
  ];
  for (const [criteria, want] of cases) assert.equal(await found(client, criteria), want, criteria);
  assert.equal((await client.command('UID SEARCH SUBJECT report')).untagged[0], 'SEARCH 3');
});

test('CHARSET: UTF-8 and US-ASCII are known; another charset is NO [BADCHARSET]', async (t) => {
  const client = await mailbox(t);
  assert.equal(await found(client, 'CHARSET UTF-8 SUBJECT "crème"'), '2');
  assert.equal(await found(client, 'CHARSET US-ASCII FROM bob'), '3');
  const refused = await client.command('SEARCH CHARSET KOI8-R SUBJECT x');
  assert.deepEqual([refused.status, refused.text], ['NO', '[BADCHARSET (UTF-8 US-ASCII)] Unknown charset KOI8-R']);
  assert.equal((await client.command('SEARCH FROBNICATE')).status, 'BAD');
});

test('ESEARCH: RETURN (MIN MAX COUNT ALL); SEARCHRES: SAVE, then $ in FETCH, STORE and SEARCH', async (t) => {
  const client = await mailbox(t);
  assert.match((await client.command('SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN')).untagged[0], /^ESEARCH \(TAG "t\d+"\) MIN 2 MAX 3 COUNT 2 ALL 2:3$/);
  assert.match((await client.command('UID SEARCH RETURN () ALL')).untagged[0], /^ESEARCH \(TAG "t\d+"\) UID ALL 1:3$/);
  assert.match((await client.command('SEARCH RETURN (COUNT) DRAFT')).untagged[0], /^ESEARCH \(TAG "t\d+"\) COUNT 0$/);
  const saved = await client.command('SEARCH RETURN (SAVE) TO ana');
  assert.deepEqual(saved.untagged, [], 'SAVE alone answers nothing (RFC 5182 2.2)');
  assert.deepEqual((await client.command('FETCH $ (UID)')).untagged, ['2 FETCH (UID 2)', '3 FETCH (UID 3)']);
  assert.equal((await client.command('STORE $ +FLAGS.SILENT (\\Draft)')).status, 'OK');
  assert.equal(await found(client, 'DRAFT'), '2 3');
  assert.equal(await found(client, '$ SUBJECT report'), '3');
});
