// Mailbox paths: valid names map inside the account directory; every
// traversal or collision attempt is refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  accountDir,
  InvalidAccountNameError,
  InvalidMailboxNameError,
  isValidAccountName,
  mailboxPath,
  mailDir,
} from '../../src/store/paths.ts';

const DATA = path.resolve('/srv/jjordan');
const ALICE = path.join(DATA, 'mail', 'alice');

test('mailDir and accountDir', () => {
  assert.equal(mailDir(DATA), path.join(DATA, 'mail'));
  assert.equal(accountDir(DATA, 'alice'), ALICE);
  assert.equal(accountDir(DATA, 'a.b_c-9'), path.join(DATA, 'mail', 'a.b_c-9'));
});

test('account names', () => {
  for (const ok of ['alice', '0', 'a.b', 'x-y_z', 'a'.repeat(64)]) assert.ok(isValidAccountName(ok), ok);
  for (const bad of ['', 'Alice', '.alice', '-x', '_x', 'a..b', '..', 'a/b', 'a\\b', 'a b', 'a\0', 'a'.repeat(65), 'é']) {
    assert.ok(!isValidAccountName(bad), JSON.stringify(bad));
    assert.throws(() => accountDir(DATA, bad), InvalidAccountNameError);
    assert.throws(() => mailboxPath(DATA, bad, 'INBOX'), InvalidAccountNameError);
  }
});

test('INBOX in any case is the file INBOX', () => {
  for (const name of ['INBOX', 'inbox', 'InBoX']) assert.equal(mailboxPath(DATA, 'alice', name), path.join(ALICE, 'INBOX'));
});

test('other folders keep their case and use "/" for hierarchy, children in "<parent>.sbd/"', () => {
  assert.equal(mailboxPath(DATA, 'alice', 'Sent'), path.join(ALICE, 'Sent'));
  assert.equal(mailboxPath(DATA, 'alice', 'Lists/node.js'), path.join(ALICE, 'Lists.sbd', 'node.js'));
  assert.equal(mailboxPath(DATA, 'alice', 'inbox/child'), path.join(ALICE, 'INBOX.sbd', 'child'));
  assert.equal(mailboxPath(DATA, 'alice', 'Café ☕'), path.join(ALICE, 'Café ☕'));
  assert.equal(mailboxPath(DATA, 'alice', 'x'.repeat(200)), path.join(ALICE, 'x'.repeat(200)));
  assert.equal(mailboxPath(DATA, 'alice', 'INBOXES'), path.join(ALICE, 'INBOXES'));
  assert.equal(mailboxPath(DATA, 'alice', 'a.locked'), path.join(ALICE, 'a.locked'));
});

test('traversal, hidden, lock-like and malformed names are refused', () => {
  const bad = [
    '../x',
    'a/../../b',
    '..',
    '.',
    'a/./b',
    '.hidden',
    'a/.index',
    'x.lock',
    'INBOX.lock',
    'a/b.LOCK',
    'a.sbd',
    'a.SBD/b',
    'x'.repeat(201),
    'nul\0byte',
    'tab\there',
    'del\x7f',
    'back\\slash',
    '/etc/passwd',
    '',
    'a//b',
    'a/',
    'é'.repeat(128), // 256 bytes in UTF-8
  ];
  for (const name of bad) {
    assert.throws(() => mailboxPath(DATA, 'alice', name), InvalidMailboxNameError, JSON.stringify(name));
  }
});
