// The webmail's pages against the real mail server, as a browser uses
// them: the list (paging, search), reading, sending (it arrives, and a copy
// is in Sent), reply and reply to all with their threading headers,
// forward with the attachments, drafts, an attachment byte for byte both
// ways, move, delete to Trash, empty Trash, flags, folders.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ImapClient } from '../../src/webmail/imap-client/client.ts';
import { eventually } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { csrfToken, formFields, withValues } from './browser.ts';
import type { Browser } from './browser.ts';
import { deliver, imapAddress, mailServer, messageWithAttachment, startTestWebmail } from './helpers.ts';

async function imapAs(t: { after: (fn: () => Promise<void>) => void }, server: TestServer, user = 'jjordan', password = 'secret'): Promise<ImapClient> {
  const client = await ImapClient.connect(await imapAddress(server));
  await client.login(user, password);
  t.after(() => client.logout());
  return client;
}

/** Fill in and send the compose form at `composePath`, as a person would. */
async function compose(browser: Browser, composePath: string, values: Record<string, string>, files: Parameters<Browser['postMultipart']>[2] = []) {
  const page = await browser.get(composePath);
  assert.equal(page.status, 200, page.text);
  return browser.postMultipart('/compose', withValues(formFields(page.text, '/compose'), values), files);
}

const uidsOn = (html: string) => [...html.matchAll(/name="uid" value="(\d+)"/g)].map((m) => Number(m[1]));
/** The UIDs of the list's rows shown as unread. */
const unreadOn = (html: string) => html.split('<tr').filter((row) => row.startsWith(' class="unread"')).flatMap(uidsOn);
/** The unread count beside a folder in the list's sidebar, 0 when none is shown. */
function sidebarUnread(html: string, label: string): number {
  const nav = /<nav class="folders"[\s\S]*?<\/nav>/.exec(html)?.[0] ?? '';
  const item = nav.split('<li>').find((li) => li.includes(`${label}</span>`)) ?? '';
  return Number(/class="unread-count">(\d+)</.exec(item)?.[1] ?? 0);
}

test('the list: newest first, sender, subject, date, size; pages of pageSize; search', async (t) => {
  const server = await mailServer(t);
  for (let i = 1; i <= 5; i++) {
    await deliver(server, `From: Person ${i} <p${i}@example.net>\r\nSubject: message number ${i}\r\nDate: Mon, 2 Mar 2026 10:0${i}:00 +0100\r\n\r\n${i === 4 ? 'the rare word zebra' : 'ordinary text'}\r\n`);
  }
  const webmail = await startTestWebmail(t, server, { pageSize: 2 });
  const browser = await webmail.loggedIn();
  const first = await browser.get('/mail?folder=INBOX');
  assert.deepEqual(uidsOn(first.text), [5, 4]);
  assert.match(first.text, /Person 5<\/td>/);
  assert.match(first.text, /message number 5<\/a>/);
  assert.match(first.text, /2 Mar 2026 10:05/);
  assert.match(first.text, /class="size">\d+ B</);
  assert.match(first.text, /Page 1 of 3 \(5 messages\)/);
  assert.match(first.text, /<tr class="unread">/);
  assert.deepEqual(uidsOn((await browser.get('/mail?folder=INBOX&page=3')).text), [1]);
  assert.deepEqual(uidsOn((await browser.get('/mail?folder=INBOX&page=2')).text), [3, 2]);
  assert.deepEqual(uidsOn((await browser.get('/mail?folder=INBOX&q=zebra&in=text')).text), [4]);
  assert.deepEqual(uidsOn((await browser.get('/mail?folder=INBOX&q=Person%202')).text), [2], 'From is searched');
  assert.deepEqual(uidsOn((await browser.get('/mail?folder=INBOX&q=zebra')).text), [], 'not in From or Subject');
  const folders = (await browser.get('/folders')).text;
  assert.match(folders, /5 unread, 5 in all/);
  assert.equal(sidebarUnread(first.text, 'Inbox'), 5, 'the unread count beside the list');
  assert.equal((await browser.get('/message?folder=INBOX&uid=5')).status, 200);
  assert.equal(sidebarUnread((await browser.get('/mail?folder=INBOX')).text, 'Inbox'), 4, 'one read: one fewer');
  assert.match((await browser.get('/folders')).text, /4 unread, 5 in all/);
});

test('reading a message: header, text with links, marked read; unread again', async (t) => {
  const server = await mailServer(t);
  await deliver(server, 'From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.net>\r\nTo: jjordan@localhost\r\nSubject: =?UTF-8?B?w4lsw6luYQ==?=\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nVoil=E0: https://example.org/a?b=1&c=2.\r\n');
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const page = await browser.get('/message?folder=INBOX&uid=1');
  assert.equal(page.status, 200);
  assert.match(page.text, /<h1 id="subject">Éléna<\/h1>/);
  assert.match(page.text, /<dd>José &lt;jose@example\.net&gt;<\/dd>/);
  assert.match(page.text, /Voilà: <a href="https:\/\/example\.org\/a\?b=1&amp;c=2" rel="noopener noreferrer" target="_blank">https:\/\/example\.org\/a\?b=1&amp;c=2<\/a>\./);
  const imap = await imapAs(t, server);
  assert.deepEqual((await imap.summariesByUid('INBOX', [1]))[0].flags, ['\\Seen']);
  const unread = await browser.post('/mail/action', { _csrf: csrfToken(page.text), folder: 'INBOX', uid: '1', action: 'unread', back: '/mail?folder=INBOX' });
  assert.equal(unread.location, '/mail?folder=INBOX');
  assert.deepEqual((await imap.summariesByUid('INBOX', [1]))[0].flags, []);
  assert.equal((await browser.get('/message?folder=INBOX&uid=99')).status, 404);
});

test('sending: it arrives in the recipient\'s INBOX, a copy is in Sent, the attachment byte for byte', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  // Bytes that look like MIME to a careless parser: boundaries, CRLF dots, NULs.
  const content = Buffer.concat([Buffer.from('--XyZ\r\n.\r\n\0\r\n--=_webmail_\r\n'), randomBytes(300 * 1024)]);
  const sent = await compose(browser, '/compose', { to: 'Ana <ana@localhost>', subject: 'Grüße mit Anhang', text: 'Hallo Ana,\n\nsiehe Anhang.\n.\nEnde', action: 'send' }, [
    ['attachments', { filename: 'daten €.bin', contentType: 'application/octet-stream', content }],
  ]);
  assert.equal(sent.status, 303, sent.text);
  assert.equal(sent.location, '/mail?folder=INBOX');
  assert.match((await browser.get('/mail')).text, /Message sent; a copy is in Sent\./);

  await eventually(async () => (await server.messages('ana')).length === 1, 'the message in ana\'s INBOX');
  const [arrived] = await server.messages('ana');
  const text = arrived.content.toString('latin1');
  assert.match(text, /^From: jjordan@localhost$/m);
  assert.match(text, /^To: Ana <ana@localhost>$/m);
  assert.match(text, /^Subject: =\?UTF-8\?B\?/m);
  assert.match(text, /^Message-ID: <[0-9a-f]+@localhost>$/m);

  // Ana reads it in her own webmail session: the text and the attachment, exact.
  const ana = await webmail.loggedIn('ana', 'ana-pw', '127.0.0.2');
  const read = await ana.get('/message?folder=INBOX&uid=1');
  assert.match(read.text, /<h1 id="subject">Grüße mit Anhang<\/h1>/);
  assert.match(read.text, /Hallo Ana,\n\nsiehe Anhang\.\n\.\nEnde/);
  const link = /href="(\/message\/attachment\?[^"]+)"/.exec(read.text)![1].replaceAll('&amp;', '&');
  const download = await ana.get(link);
  assert.equal(download.status, 200);
  assert.equal(download.headers['content-type'], 'application/octet-stream');
  assert.equal(download.headers['content-disposition'], `attachment; filename="daten _.bin"; filename*=UTF-8''daten%20%E2%82%AC.bin`);
  assert.ok(download.body.equals(content), 'the attachment, byte for byte');

  const imap = await imapAs(t, server);
  const [copy] = await imap.summariesBySequence('Sent', 1, 1);
  assert.equal(copy.envelope.to[0].mailbox, 'ana');
  assert.deepEqual(copy.flags, ['\\Seen']);
});

test('reply and reply to all: recipients, Re:, In-Reply-To and References; the original is \\Answered', async (t) => {
  const server = await mailServer(t, { accounts: [{ name: 'jjordan', password: 'secret' }, { name: 'ana', password: 'ana-pw' }, { name: 'bob', password: 'bob-pw' }] });
  await deliver(server, [
    'From: Ana <ana@localhost>',
    'To: jjordan@localhost, Bob <bob@localhost>',
    'Cc: carol@example.net',
    'Subject: Plans',
    'Message-ID: <second@example.net>',
    'In-Reply-To: <first@example.net>',
    'References: <root@example.net> <first@example.net>',
    '',
    'Shall we meet?',
    '',
  ].join('\r\n'));
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const form = await browser.get('/compose?mode=reply-all&folder=INBOX&uid=1');
  const fields = new Map(formFields(form.text, '/compose'));
  assert.equal(fields.get('to'), 'Ana <ana@localhost>');
  assert.equal(fields.get('cc'), 'Bob <bob@localhost>, carol@example.net', 'everyone but me');
  assert.equal(fields.get('subject'), 'Re: Plans');
  assert.equal(fields.get('in_reply_to'), '<second@example.net>');
  assert.equal(fields.get('references'), '<root@example.net> <first@example.net> <second@example.net>');
  assert.match(fields.get('text')!, /wrote:\n> Shall we meet\?/);
  assert.equal(new Map(formFields((await browser.get('/compose?mode=reply&folder=INBOX&uid=1')).text, '/compose')).get('cc'), '', 'reply: the sender only');

  const sent = await browser.postMultipart('/compose', withValues(formFields(form.text, '/compose'), { cc: 'Bob <bob@localhost>', text: 'Yes.\n', action: 'send' }));
  assert.equal(sent.status, 303, sent.text);
  for (const user of ['ana', 'bob']) {
    await eventually(async () => (await server.messages(user)).length === 1, `the reply in ${user}'s INBOX`);
    const text = (await server.messages(user))[0].content.toString();
    assert.match(text, /^Subject: Re: Plans$/m);
    assert.match(text, /^In-Reply-To: <second@example\.net>$/m);
    assert.match(text, /^References: <root@example\.net>\n <first@example\.net>\n <second@example\.net>$/m);
  }
  const imap = await imapAs(t, server);
  assert.ok((await imap.summariesByUid('INBOX', [1]))[0].flags.includes('\\Answered'));
});

test('forward carries the attachments; drafts are saved, reopened and replaced', async (t) => {
  const server = await mailServer(t);
  const attachment = randomBytes(50_000);
  await deliver(server, messageWithAttachment('Report', attachment, 'filename="report.bin"'));
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();

  const forward = await browser.get('/compose?mode=forward&folder=INBOX&uid=1');
  assert.match(forward.text, /name="keep" value="2" checked> report\.bin/);
  const fields = withValues(formFields(forward.text, '/compose'), { to: 'ana@localhost', action: 'draft' });
  assert.equal(new Map(fields).get('subject'), 'Fwd: Report');
  const saved = await browser.postMultipart('/compose', fields);
  assert.equal(saved.location, '/mail?folder=Drafts');
  const imap = await imapAs(t, server);
  const [draft] = await imap.summariesBySequence('Drafts', 1, 1);
  assert.deepEqual(draft.flags.sort(), ['\\Draft', '\\Seen']);

  // The draft, opened again: the text and the attachment are still there; sending it empties Drafts.
  const reopened = await browser.get(`/compose?mode=draft&folder=Drafts&uid=${draft.uid}`);
  const again = new Map(formFields(reopened.text, '/compose'));
  assert.equal(again.get('to'), 'ana@localhost');
  assert.equal(again.get('subject'), 'Fwd: Report');
  assert.match(again.get('text')!, /-------- Forwarded Message --------/);
  assert.match(reopened.text, /name="keep" value="2" checked> report\.bin/);
  const sent = await browser.postMultipart('/compose', withValues(formFields(reopened.text, '/compose'), { action: 'send' }));
  assert.equal(sent.status, 303, /<p class="error"[^<]*<\/p>|<p>[^<]*<\/p>/.exec(sent.text)?.[0]);
  assert.equal((await imap.status('Drafts')).messages, 0, 'the draft is gone once sent');
  assert.equal((await imap.status('Sent')).messages, 1);

  await eventually(async () => (await server.messages('ana')).length === 1, 'the forward in ana\'s INBOX');
  const ana = await webmail.loggedIn('ana', 'ana-pw');
  const read = await ana.get('/message?folder=INBOX&uid=1');
  const link = /href="(\/message\/attachment\?[^"]+)"[^>]*>report\.bin</.exec(read.text)![1].replaceAll('&amp;', '&');
  assert.ok((await ana.get(link)).body.equals(attachment), 'the forwarded attachment, byte for byte');
});

test('move, delete to Trash, delete for good, empty the Trash, flags', async (t) => {
  const server = await mailServer(t);
  for (let i = 1; i <= 4; i++) await deliver(server, `Subject: m${i}\r\n\r\nbody\r\n`);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const imap = await imapAs(t, server);
  const act = async (folder: string, uids: number[], action: string, target = '') => {
    const page = await browser.get(`/mail?folder=${folder}`);
    const reply = await browser.post('/mail/action', { _csrf: csrfToken(page.text), folder, uid: uids.map(String), action, target, back: `/mail?folder=${folder}` });
    assert.equal(reply.status, 303);
    return (await browser.get(reply.location!)).text;
  };
  assert.match(await act('INBOX', [1, 2], 'flag'), /2 messages flagged\./);
  assert.deepEqual((await imap.summariesByUid('INBOX', [1, 2, 3])).map((m) => m.flags), [[], ['\\Flagged'], ['\\Flagged']]);
  assert.match(await act('INBOX', [2], 'unflag'), /1 message unflagged\./);
  // By UID: a summary fetch may also carry unasked-for flag updates of other messages.
  const flagsOf = async (uids: number[]) => {
    const summaries = await imap.summariesByUid('INBOX', uids);
    return uids.map((uid) => summaries.find((m) => m.uid === uid)?.flags.sort());
  };
  assert.deepEqual(await flagsOf([1, 2]), [['\\Flagged'], []], 'unflagged on the server, the other one still flagged');
  assert.match(await act('INBOX', [1, 3], 'read'), /2 messages marked read\./);
  assert.deepEqual(await flagsOf([1, 2, 3]), [['\\Flagged', '\\Seen'], [], ['\\Seen']], 'read on the server');
  assert.deepEqual(unreadOn((await browser.get('/mail?folder=INBOX')).text), [4, 2], 'and shown as read in the list');
  assert.match(await act('INBOX', [1], 'move', 'Archive'), /1 message moved to Archive\./);
  assert.deepEqual(await imap.status('Archive'), { messages: 1, unseen: 0 });
  assert.match(await act('INBOX', [2, 3], 'delete'), /2 messages moved to Trash\./);
  assert.deepEqual(await imap.status('Trash'), { messages: 2, unseen: 1 });
  assert.equal((await imap.status('INBOX')).messages, 1);
  assert.match(await act('Trash', [1], 'delete'), /1 message deleted\./, 'in the Trash: for good');
  assert.equal((await imap.status('Trash')).messages, 1);
  const folders = await browser.get('/folders');
  const emptied = await browser.post('/folders/empty', { _csrf: csrfToken(folders.text), name: 'Trash' });
  assert.equal(emptied.location, '/folders');
  assert.equal((await imap.status('Trash')).messages, 0);
  // Only the Trash: a forged form, even with a valid token, cannot empty another folder.
  const forged = await browser.post('/folders/empty', { _csrf: csrfToken(folders.text), name: 'INBOX' });
  assert.equal(forged.status, 400);
  assert.match(forged.text, /Only the Trash can be emptied/);
  assert.equal((await imap.status('INBOX')).messages, 1, 'nothing deleted');
  assert.match(await act('INBOX', [], 'delete'), /Select one or more messages first\./);
  // Where to go back to is a path of this site, never another site (no open redirect).
  for (const back of ['//evil.example/', '/\\evil.example/', 'https://evil.example/', '/mail\r\nSet-Cookie: x=1']) {
    const page = await browser.get('/mail?folder=INBOX');
    const reply = await browser.post('/mail/action', { _csrf: csrfToken(page.text), folder: 'INBOX', uid: '4', action: 'read', back });
    assert.equal(reply.location, '/mail?folder=INBOX', back);
  }
});

test('folders: create (with a child), rename, delete; the server\'s refusals are shown', async (t) => {
  const server = await mailServer(t);
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const post = async (path: string, fields: Record<string, string>) => {
    const page = await browser.get('/folders');
    return browser.post(path, { _csrf: csrfToken(page.text), ...fields });
  };
  assert.equal((await post('/folders/create', { name: 'Reisen/2026' })).status, 303);
  assert.match((await browser.get('/folders')).text, /Folder Reisen\/2026 created\./);
  assert.equal((await post('/folders/rename', { from: 'Reisen/2026', to: 'Reisen/Sommer' })).status, 303);
  const renamed = (await browser.get('/folders')).text;
  assert.match(renamed, /Folder Reisen\/2026 is now Reisen\/Sommer\./);
  assert.match(renamed, />Reisen\/Sommer<\/a>/, 'the new name is listed');
  assert.doesNotMatch(renamed, />Reisen\/2026<\/a>/, 'the old name is gone');
  const imap = await imapAs(t, server);
  assert.deepEqual((await imap.listFolders()).map((f) => f.name).filter((n) => n.startsWith('Reisen/')), ['Reisen/Sommer'], 'and on the server');
  const refused = await post('/folders/delete', { name: 'Reisen' });
  assert.equal(refused.status, 400, 'a folder with children');
  assert.match(refused.text, /The mail server refused/);
  assert.equal((await post('/folders/delete', { name: 'Reisen/Sommer' })).status, 303);
  assert.equal((await post('/folders/delete', { name: 'Reisen' })).status, 303);
  assert.ok(!(await imap.listFolders()).some((f) => f.name.startsWith('Reisen')));
  assert.equal((await post('/folders/delete', { name: 'INBOX' })).status, 400, 'INBOX stays');
});

test('once a message is sent, what fails in the mailbox after it is said in the notice, never as a failed send', async (t) => {
  const server = await mailServer(t, { accounts: [{ name: 'jjordan', password: 'secret' }, { name: 'ana', password: 'ana-pw' }] });
  await deliver(server, 'From: Ana <ana@localhost>\r\nSubject: Plans\r\nMessage-ID: <plans@example.net>\r\n\r\nShall we meet?\r\n');
  const imap = await imapAs(t, server);
  await imap.createFolder('Projects');
  await imap.move('INBOX', [1], 'Projects');
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const form = await browser.get('/compose?mode=reply&folder=Projects&uid=1');
  assert.equal(form.status, 200, form.text);
  // Meanwhile another client deletes the folder of the message being answered.
  await imap.deleteFolder('Projects');
  const sent = await browser.postMultipart('/compose', withValues(formFields(form.text, '/compose'), { text: 'Yes.\n', action: 'send' }));
  assert.equal(sent.status, 303, sent.text);
  assert.equal(sent.location, '/mail?folder=INBOX', 'not back to a folder that is gone');
  const page = await browser.get(sent.location!);
  assert.equal(page.status, 200, page.text);
  assert.match(page.text, /Message sent; a copy is in Sent; the original could not be marked answered: [^<]+\./);
  await eventually(async () => (await server.messages('ana')).length === 1, 'the reply in ana\'s INBOX');
  assert.equal((await imap.status('Sent')).messages, 1, 'one copy, sent once');
});

test('a draft whose older version cannot be removed is still saved, and still sent, with a word about it', async (t) => {
  const server = await mailServer(t, { accounts: [{ name: 'jjordan', password: 'secret' }, { name: 'ana', password: 'ana-pw' }] });
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();
  const imap = await imapAs(t, server);
  const first = await compose(browser, '/compose', { to: 'ana@localhost', subject: 'later', text: 'one', action: 'draft' });
  assert.equal(first.location, '/mail?folder=Drafts', first.text);
  // The draft moved to a folder of its own, opened twice, and that folder deleted meanwhile by another client.
  await imap.createFolder('Later');
  await imap.move('Drafts', [1], 'Later');
  const toSave = await browser.get('/compose?mode=draft&folder=Later&uid=1');
  const toSend = await browser.get('/compose?mode=draft&folder=Later&uid=1');
  await imap.deleteFolder('Later');

  const saved = await browser.postMultipart('/compose', withValues(formFields(toSave.text, '/compose'), { text: 'two', action: 'draft' }));
  assert.equal(saved.status, 303, saved.text);
  assert.match((await browser.get(saved.location!)).text, /Draft saved in Drafts; the older version could not be removed: [^<]+\./);
  assert.equal((await imap.status('Drafts')).messages, 1);

  const sent = await browser.postMultipart('/compose', withValues(formFields(toSend.text, '/compose'), { action: 'send' }));
  assert.equal(sent.status, 303, sent.text);
  assert.match((await browser.get(sent.location!)).text, /Message sent; a copy is in Sent; the draft could not be removed: [^<]+\./);
  await eventually(async () => (await server.messages('ana')).length === 1, 'the message in ana\'s INBOX');
});

test('a deleted Sent or Drafts is made again by the next send or draft; a Sent that cannot be made is said so and the message still goes; a draft that cannot be saved brings the form back', async (t) => {
  const server = await mailServer(t);
  const imap = await imapAs(t, server);
  await imap.deleteFolder('Sent');
  await imap.deleteFolder('Drafts');
  const webmail = await startTestWebmail(t, server);
  const browser = await webmail.loggedIn();

  const sent = await compose(browser, '/compose', { to: 'ana@localhost', subject: 'first', text: 'one', action: 'send' });
  assert.equal(sent.status, 303, sent.text);
  assert.match((await browser.get('/mail')).text, /Message sent; a copy is in Sent\./);
  assert.equal((await imap.status('Sent')).messages, 1);

  const draft = await compose(browser, '/compose', { to: 'ana@localhost', subject: 'later', text: 'two', action: 'draft' });
  assert.equal(draft.location, '/mail?folder=Drafts', draft.text);
  assert.equal((await imap.status('Drafts')).messages, 1);

  // Sent deleted, and a directory left where its mbox would go (another program's mess): it cannot be made again.
  await imap.deleteFolder('Sent');
  await mkdir(join(dirname(server.mboxPath('jjordan')), 'Sent'));
  const again = await compose(browser, '/compose', { to: 'ana@localhost', subject: 'second', text: 'three', action: 'send' });
  assert.equal(again.status, 303, again.text);
  assert.match((await browser.get('/mail')).text, /Message sent, but no copy could be kept in Sent: [^<]+\./);
  await eventually(async () => (await server.messages('ana')).length === 2, 'both messages in ana\'s INBOX');

  // The same for Drafts: nothing is saved, and the form comes back as typed, with why.
  await imap.deleteFolder('Drafts');
  await mkdir(join(dirname(server.mboxPath('jjordan')), 'Drafts'));
  const unsaved = await compose(browser, '/compose', { to: 'ana@localhost', subject: 'kept as typed', text: 'four', action: 'draft' });
  assert.equal(unsaved.status, 502, unsaved.text);
  assert.match(unsaved.text, /The draft was not saved: [^<]+\./);
  assert.equal(new Map(formFields(unsaved.text, '/compose')).get('subject'), 'kept as typed');
});
