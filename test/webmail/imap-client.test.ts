// The webmail's IMAP client against the real server, started in this
// process: TLS (implicit and STARTTLS) with the certificate verified, LOGIN
// after ID, folders, a page of the list, a message's structure and parts
// byte for byte, search, flags, move, expunge, append, folder changes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ImapClient } from '../../src/webmail/imap-client/client.ts';
import { ImapCommandError, ImapConnectionError } from '../../src/webmail/imap-client/connection.ts';
import { astringArg } from '../../src/webmail/imap-client/command-args.ts';
import { Base64Decoder } from '../../src/mime/transfer-decode.ts';
import { decodeHeaderText } from '../../src/mime/encoded-words.ts';
import { paramText } from '../../src/mime/params.ts';
import { eventually } from '../helpers/test-server.ts';
import { collect, deliver, imapAddress, mailServer, messageWithAttachment } from './helpers.ts';

async function loggedIn(server: Parameters<typeof imapAddress>[0], tls: 'implicit' | 'starttls' = 'implicit'): Promise<ImapClient> {
  const client = await ImapClient.connect(await imapAddress(server, tls), process.env.TRACE ? (d, l) => console.log(d, l.slice(0, 600)) : undefined);
  await client.login('jjordan', 'secret');
  return client;
}

test('over implicit TLS and over STARTTLS, verifying the certificate: folders with their special use', async (t) => {
  const server = await mailServer(t);
  for (const tls of ['implicit', 'starttls'] as const) {
    const client = await loggedIn(server, tls);
    const folders = await client.listFolders();
    const byName = new Map(folders.map((f) => [f.name, f]));
    for (const name of ['INBOX', 'Sent', 'Drafts', 'Trash', 'Junk', 'Archive']) assert.ok(byName.has(name), `${name} listed (${tls})`);
    assert.equal(byName.get('Sent')!.specialUse, '\\Sent');
    assert.equal(byName.get('Trash')!.specialUse, '\\Trash');
    assert.equal(byName.get('INBOX')!.specialUse, null);
    assert.ok(client.connection.capabilities.has('MOVE'));
    await client.logout();
  }
});

test('a certificate that does not verify stops the connection before any password is sent', async (t) => {
  const server = await mailServer(t);
  const address = await imapAddress(server);
  // No CA given: the system's list does not know the self-signed certificate.
  await assert.rejects(ImapClient.connect({ ...address, ca: undefined }), ImapConnectionError);
  // The right CA, the wrong name.
  await assert.rejects(ImapClient.connect({ ...address, servername: 'mail.example.org' }), /mail\.example\.org|altnames/i);
  await assert.rejects(ImapClient.connect({ ...address, tls: 'starttls', port: server.server.imap.ports.imap, ca: undefined }), ImapConnectionError);
});

test('a wrong password is NO [AUTHENTICATIONFAILED]; ID tells the server whose address to throttle', async (t) => {
  const server = await mailServer(t, { trace: false });
  const client = await ImapClient.connect(await imapAddress(server));
  await client.id({ name: 'jjordan-mail webmail', 'x-originating-ip': '192.0.2.7' });
  await assert.rejects(client.login('jjordan', 'wrong'), (err: unknown) => err instanceof ImapCommandError && err.code === 'AUTHENTICATIONFAILED');
  await eventually(() => server.logLines.some((l) => /client-id .*forAddress=192\.0\.2\.7/.test(l)), 'the ID logged');
  // A password with characters a quoted string cannot hold goes as a literal.
  await assert.rejects(client.login('jjordan', 'pa"ss\\wörd'), ImapCommandError);
  await client.login('jjordan', 'secret');
  await client.logout();
});

test('summaries, structure, a part byte for byte in pieces, search, flags, move, expunge', async (t) => {
  const server = await mailServer(t);
  const attachment = randomBytes(700 * 1024);
  await deliver(server, messageWithAttachment('=?UTF-8?Q?Caf=C3=A9?= report', attachment, "filename*=UTF-8''%C3%A9t%C3%A9.bin"));
  await deliver(server, 'From: Ana <ana@localhost>\r\nSubject: second\r\n\r\nplain body with a needle in it\r\n');
  const client = await loggedIn(server);

  const selected = await client.select('INBOX');
  assert.equal(selected.exists, 2);
  const page = await client.summariesBySequence('INBOX', 1, 2);
  assert.deepEqual(page.map((m) => m.seq), [2, 1], 'newest first');
  const [second, first] = page;
  assert.equal(decodeHeaderText(first.envelope.subject!), 'Café report');
  assert.equal(first.envelope.from[0].mailbox, 'sender');
  assert.equal(second.envelope.from[0].name, 'Ana');
  assert.ok(first.size > attachment.length);

  const details = (await client.message('INBOX', first.uid))!;
  assert.equal(details.structure.type, 'multipart');
  const [text, file] = details.structure.children;
  assert.equal(text.section, '1');
  assert.equal(file.section, '2');
  assert.equal(file.encoding, 'base64');
  assert.equal(paramText(file.disposition!.params, 'filename'), 'été.bin');
  assert.match(details.header.toString(), /^Subject: =\?UTF-8\?Q\?Caf=C3=A9\?= report\r?$/m);

  // 256 KiB at a time: the attachment (about 950 KiB of base64) takes four fetches.
  const decoder = new Base64Decoder();
  const pieces: Buffer[] = [];
  for await (const chunk of client.section('INBOX', first.uid, '2')) pieces.push(decoder.write(chunk));
  pieces.push(decoder.end());
  assert.ok(Buffer.concat(pieces).equals(attachment), 'the attachment, byte for byte');
  assert.equal(Buffer.concat(await collect(client.section('INBOX', first.uid, '2', 1000, 10))).length, 10, 'maxBytes stops early');
  assert.deepEqual(await collect(client.section('INBOX', 999, '1')), [], 'a UID that is not there gives nothing');

  assert.deepEqual(await client.search('INBOX', ['BODY ', astringArg('needle')]), [second.uid]);
  assert.deepEqual(await client.search('INBOX', ['SUBJECT ', astringArg('café')]), [first.uid], 'non-ASCII search text as a literal');

  await client.setFlags('INBOX', [first.uid], true, ['\\Seen', '\\Flagged']);
  assert.deepEqual((await client.summariesByUid('INBOX', [first.uid]))[0].flags.sort(), ['\\Flagged', '\\Seen']);
  await client.setFlags('INBOX', [first.uid], false, ['\\Seen']);
  assert.deepEqual((await client.summariesByUid('INBOX', [first.uid]))[0].flags, ['\\Flagged']);

  await client.move('INBOX', [second.uid], 'Trash');
  assert.deepEqual((await client.status('Trash')), { messages: 1, unseen: 1 });
  assert.equal((await client.select('INBOX')).exists, 1);
  await client.expungeAll('Trash');
  assert.equal((await client.status('Trash')).messages, 0);
  await client.expunge('INBOX', [first.uid]);
  assert.equal((await client.select('INBOX')).exists, 0);
  await client.logout();
});

test('APPEND from a stream returns the UID; folders are created, renamed and deleted with non-ASCII names', async (t) => {
  const server = await mailServer(t);
  const client = await loggedIn(server);
  const message = Buffer.from('From: jjordan@localhost\r\nSubject: draft\r\n\r\nunfinished\r\n');
  const uid = await client.append('Drafts', ['\\Seen', '\\Draft'], message.length, async function* () {
    yield message.subarray(0, 10);
    yield message.subarray(10);
  });
  assert.equal(typeof uid, 'number');
  const [draft] = await client.summariesByUid('Drafts', [uid!]);
  assert.deepEqual(draft.flags.sort(), ['\\Draft', '\\Seen']);
  const body = Buffer.concat(await collect(client.section('Drafts', uid!, '')));
  assert.ok(body.equals(message), 'stored byte for byte');

  await client.createFolder('Entwürfe & Co');
  await client.createFolder('Projekte/2026');
  let names = (await client.listFolders()).map((f) => f.name);
  assert.ok(names.includes('Entwürfe & Co') && names.includes('Projekte/2026'));
  await client.select('Entwürfe & Co');
  await client.renameFolder('Entwürfe & Co', 'Ablage');
  await assert.rejects(client.deleteFolder('Projekte'), ImapCommandError, 'a folder with children is refused');
  await client.deleteFolder('Projekte/2026');
  names = (await client.listFolders()).map((f) => f.name);
  assert.ok(names.includes('Ablage') && !names.includes('Entwürfe & Co') && !names.includes('Projekte/2026'));
  await assert.rejects(client.select('Nowhere'), (err: unknown) => err instanceof ImapCommandError && err.status === 'NO');
  await client.logout();
});

test('a connection the server closed is reported as broken, not as an answer', async (t) => {
  const server = await mailServer(t);
  const client = await loggedIn(server);
  await client.logout();
  assert.equal(client.connection.isUsable, false);
  await assert.rejects(client.noop(), ImapConnectionError);
});
