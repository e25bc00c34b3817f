// Address lists (RFC 5322 3.4, 4.4) in the shape IMAP ENVELOPE needs, with
// the cases Dovecot answers the same way, and where we are more tolerant.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressText, listMailboxes, parseAddressList } from '../../src/mime/address.ts';

const one = (name: string | null, mailbox: string, host: string, adl: string | null = null) => ({ name, adl, mailbox, host });

test('mailboxes with and without display names', () => {
  assert.deepEqual(parseAddressList('Alice Example <alice@example.org>, bob@example.net'), [
    one('Alice Example', 'alice', 'example.org'),
    one(null, 'bob', 'example.net'),
  ]);
  assert.deepEqual(parseAddressList('"Smith, John" <john@x.com>'), [one('Smith, John', 'john', 'x.com')]);
  assert.deepEqual(parseAddressList('"Joe \\"Q\\" Public" <joe@x.org>'), [one('Joe "Q" Public', 'joe', 'x.org')]);
  assert.deepEqual(parseAddressList('John Q. Public <jqp@x.org>'), [one('John Q. Public', 'jqp', 'x.org')]);
  assert.deepEqual(parseAddressList('=?UTF-8?B?w6k=?= <e@x.org>'), [one('=?UTF-8?B?w6k=?=', 'e', 'x.org')]); // raw, not decoded
});

test('quoted local parts, domain literals, comments', () => {
  assert.deepEqual(parseAddressList('"john doe"@x.org'), [one(null, 'john doe', 'x.org')]);
  assert.deepEqual(parseAddressList('joe@[192.0.2.1]'), [one(null, 'joe', '[192.0.2.1]')]);
  assert.deepEqual(parseAddressList('joe@x.org (Joe Bloggs)'), [one('Joe Bloggs', 'joe', 'x.org')]);
  assert.deepEqual(parseAddressList('joe@x.org (Joe) (more)'), [one('more', 'joe', 'x.org')]); // the last comment, as Dovecot
  assert.deepEqual(parseAddressList('(leading comment) jane@x.org'), [one(null, 'jane', 'x.org')]);
  assert.deepEqual(parseAddressList('john.q . public@x.org'), [one(null, 'john.q.public', 'x.org')]);
});

test('obsolete source routes become the adl (RFC 5322 4.4)', () => {
  assert.deepEqual(parseAddressList('<@r1.example,@r2.example:u@h.example>'), [one(null, 'u', 'h.example', '@r1.example,@r2.example')]);
  assert.deepEqual(parseAddressList('Joe <@r1:joe@x>, b@y'), [one('Joe', 'joe', 'x', '@r1'), one(null, 'b', 'y')]);
});

test('groups', () => {
  assert.deepEqual(parseAddressList('undisclosed-recipients:;'), [{ group: 'undisclosed-recipients', members: [] }]);
  const list = parseAddressList('team: ann@x, Ben <ben@y>;, carl@z');
  assert.deepEqual(list, [{ group: 'team', members: [one(null, 'ann', 'x'), one('Ben', 'ben', 'y')] }, one(null, 'carl', 'z')]);
  assert.deepEqual(listMailboxes(list).map((a) => a.mailbox), ['ann', 'ben', 'carl']);
  assert.deepEqual(parseAddressList('open: a@b'), [{ group: 'open', members: [one(null, 'a', 'b')] }]); // no ";"
});

test('missing pieces get Dovecot placeholders; garbage never throws', () => {
  assert.deepEqual(parseAddressList('no-domain'), [one(null, 'no-domain', 'MISSING_DOMAIN')]);
  assert.deepEqual(parseAddressList('Joe <>'), [one('Joe', 'MISSING_MAILBOX', 'MISSING_DOMAIN')]);
  assert.deepEqual(parseAddressList('@x.org'), [one(null, 'MISSING_MAILBOX', 'x.org')]);
  assert.deepEqual(parseAddressList(',,a@b,,'), [one(null, 'a', 'b')]); // empty elements skipped
  assert.deepEqual(parseAddressList('<joe@x.org> trailing garbage'), [one(null, 'joe', 'x.org')]);
  assert.deepEqual(parseAddressList('Joe <joe@x.org'), [one('Joe', 'joe', 'x.org')]); // missing ">"
  assert.deepEqual(parseAddressList('Joe joe@x.org'), [one('Joe', 'joe', 'x.org')]); // missing "<>"
  assert.deepEqual(parseAddressList(''), []);
  assert.deepEqual(parseAddressList(null), []);
  for (const junk of [';;;:::<<<>>>@@@', '"', '(', '<', '\\', 'a@', ':', '"a"@"b"', '\0\x01\xff', '((((((', 'a:b:c;d;e']) {
    assert.doesNotThrow(() => parseAddressList(junk), junk);
  }
});

test('addressText decodes names for SEARCH and people', () => {
  assert.equal(addressText(parseAddressList('=?ISO-8859-1?Q?Fran=E7ois?= <f@x.fr>, g: a@b;')), 'François <f@x.fr>, g: a@b;');
});
