// Folder names (store/folder-names.ts): each rule that keeps a client's
// name inside the account directory and off the store's own files, and the
// Thunderbird layout ("Archive/2024" is "Archive.sbd/2024").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { canonicalName, collisionKey, componentOfEntry, folderPath, InvalidMailboxNameError, isInbox, MAX_DEPTH, subfolderDir } from '../../src/store/folder-names.ts';

const ACCOUNT = path.resolve('/srv/jjordan/mail/alice');

const refused = (name: string, why: RegExp) => assert.throws(() => folderPath(ACCOUNT, name), (err: unknown) => err instanceof InvalidMailboxNameError && why.test(err.message), JSON.stringify(name));

test('layout: top level in the account, children in "<parent>.sbd/"', () => {
  assert.equal(folderPath(ACCOUNT, 'Sent'), path.join(ACCOUNT, 'Sent'));
  assert.equal(folderPath(ACCOUNT, 'Archive/2024'), path.join(ACCOUNT, 'Archive.sbd', '2024'));
  assert.equal(folderPath(ACCOUNT, 'a/b/c'), path.join(ACCOUNT, 'a.sbd', 'b.sbd', 'c'));
  assert.equal(subfolderDir(ACCOUNT, 'Archive'), path.join(ACCOUNT, 'Archive.sbd'));
  assert.equal(folderPath(ACCOUNT, 'Café ☕/日本語'), path.join(ACCOUNT, 'Café ☕.sbd', '日本語'));
});

test('INBOX in any case at the top is the file "INBOX"; elsewhere it is an ordinary name', () => {
  for (const name of ['INBOX', 'inbox', 'InBoX']) {
    assert.equal(folderPath(ACCOUNT, name), path.join(ACCOUNT, 'INBOX'));
    assert.ok(isInbox(name));
  }
  assert.equal(folderPath(ACCOUNT, 'inbox/Lists'), path.join(ACCOUNT, 'INBOX.sbd', 'Lists'));
  assert.equal(canonicalName('inbox/inbox'), 'INBOX/inbox');
  assert.equal(folderPath(ACCOUNT, 'INBOXES'), path.join(ACCOUNT, 'INBOXES'));
  assert.ok(!isInbox('INBOX/x'));
});

test('NFC: one name however it was typed', () => {
  const decomposed = 'Cafe\u0301';
  assert.equal(canonicalName(decomposed), 'Caf\u00e9');
  assert.equal(folderPath(ACCOUNT, decomposed), folderPath(ACCOUNT, 'Caf\u00e9'));
});

test('traversal and absolute names', () => {
  for (const name of ['..', '../x', 'a/../../b', '.', 'a/./b', '/etc/passwd', 'a//b', 'a/', '/', '']) refused(name, /relative|empty level|starts with/);
});

test('NUL, control characters, DEL and backslash', () => {
  for (const name of ['nul\0byte', 'tab\there', 'line\nbreak', 'cr\rx', 'del\x7f', 'back\\slash', 'esc\x1bx']) refused(name, /control character or backslash/);
});

test('a leading dot is reserved for the store\'s files', () => {
  for (const name of ['.hidden', '.INBOX.index', 'a/.flags', '.subscriptions']) refused(name, /starts with "\."/);
});

test('".lock" and ".sbd" endings, in any case', () => {
  for (const name of ['x.lock', 'INBOX.lock', 'a/b.LOCK']) refused(name, /\.lock/);
  for (const name of ['x.sbd', 'Archive.SBD', 'a.Sbd/b']) refused(name, /\.sbd/);
  assert.equal(folderPath(ACCOUNT, 'a.locked'), path.join(ACCOUNT, 'a.locked'));
  assert.equal(folderPath(ACCOUNT, 'x.sbdx'), path.join(ACCOUNT, 'x.sbdx'));
});

test('overlong: a level over 200 bytes, a name over 1000, more than 16 levels', () => {
  assert.equal(folderPath(ACCOUNT, 'x'.repeat(200)), path.join(ACCOUNT, 'x'.repeat(200)));
  refused('x'.repeat(201), /too long/);
  refused('é'.repeat(101), /too long/); // 202 bytes in UTF-8
  refused(Array.from({ length: 6 }, () => 'y'.repeat(190)).join('/'), /too long/);
  assert.doesNotThrow(() => folderPath(ACCOUNT, Array.from({ length: MAX_DEPTH }, () => 'd').join('/')));
  refused(Array.from({ length: MAX_DEPTH + 1 }, () => 'd').join('/'), /too many levels/);
});

test('collision keys: case folding and NFC', () => {
  assert.equal(collisionKey('Work'), collisionKey('WORK'));
  assert.equal(collisionKey('Straße'), collisionKey('STRASSE'));
  assert.equal(collisionKey('Cafe\u0301'), collisionKey('CAFÉ'));
  assert.notEqual(collisionKey('Work'), collisionKey('Works'));
});

test('directory entries: folders, subfolder directories, and what is not a folder', () => {
  assert.equal(componentOfEntry('Sent', false), 'Sent');
  assert.equal(componentOfEntry('Archive.sbd', true), 'Archive');
  assert.equal(componentOfEntry('Archive', true), null, 'a directory without .sbd is not ours');
  for (const file of ['.INBOX.index', 'INBOX.lock', '.subscriptions', '.INBOX.expunge-123', 'Cafe\u0301']) assert.equal(componentOfEntry(file, false), null, file);
});
