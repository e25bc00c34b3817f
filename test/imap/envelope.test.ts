// ENVELOPE (RFC 3501 7.4.2) and the IMAP string forms it is written in
// (RFC 3501 4.3, 4.5): quoted when possible, a literal for CR, LF, NUL,
// quotes, backslashes and 8-bit bytes, NIL for what is absent.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { astring, imapString, listOrNil, literal, nstring, toWire, utf8ByteString } from '../../src/imap/imap-string.ts';
import { formatAddressList, formatEnvelope } from '../../src/imap/envelope.ts';
import { parseAddressList } from '../../src/mime/address.ts';
import { splitHeaderFields } from '../../src/mime/header.ts';

test('strings: quoted, literal or NIL', () => {
  assert.equal(imapString('plain text'), '"plain text"');
  assert.equal(imapString(''), '""');
  assert.equal(imapString('say "hi"'), '{8}\r\nsay "hi"');
  assert.equal(imapString('back\\slash'), '{10}\r\nback\\slash');
  assert.equal(imapString('two\r\nlines'), '{10}\r\ntwo\r\nlines');
  assert.equal(imapString(utf8ByteString('café')), '{5}\r\ncaf\xc3\xa9'); // the count is in bytes
  assert.deepEqual(toWire(imapString(utf8ByteString('café'))), Buffer.from('{5}\r\ncafé'));
  assert.equal(imapString(Buffer.from([0x41, 0xff])), '{2}\r\nA\xff');
  assert.equal(imapString('tab\there'), '"tab\there"'); // TAB is a TEXT-CHAR
  assert.equal(nstring(null), 'NIL');
  assert.equal(nstring(undefined), 'NIL');
  assert.equal(nstring('NIL'), '"NIL"');
  assert.equal(listOrNil([]), 'NIL');
  assert.equal(listOrNil(['"a"', 'NIL']), '("a" NIL)');
});

test('NUL cannot be sent even in a literal: it becomes U+FFFD, as Dovecot sends it', () => {
  assert.equal(literal('a\0b'), '{5}\r\na\xef\xbf\xbdb');
  assert.equal(imapString('a\0b'), '{5}\r\na\xef\xbf\xbdb');
});

test('astring: an atom when it can be', () => {
  assert.equal(astring('INBOX'), 'INBOX');
  assert.equal(astring('a]b'), 'a]b'); // resp-specials are ASTRING-CHARs
  assert.equal(astring('two words'), '"two words"');
  assert.equal(astring('nil'), '"nil"');
  assert.equal(astring(''), '""');
  assert.equal(astring('a%b'), '"a%b"');
});

test('address lists and groups (RFC 3501 7.4.2)', () => {
  assert.equal(formatAddressList(parseAddressList('')), 'NIL');
  assert.equal(
    formatAddressList(parseAddressList('"Terry Gray" <gray@cac.washington.edu>')),
    '(("Terry Gray" NIL "gray" "cac.washington.edu"))',
  );
  assert.equal(
    formatAddressList(parseAddressList('team: a@x, Bo <b@y>;, undisclosed-recipients:;')),
    '((NIL NIL "team" NIL)(NIL NIL "a" "x")("Bo" NIL "b" "y")(NIL NIL NIL NIL)(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))',
  );
  assert.equal(formatAddressList(parseAddressList('<@a,@b:u@h>')), '((NIL "@a,@b" "u" "h"))');
  assert.equal(formatAddressList(parseAddressList('"A  \t B" <a@b>')), '(("A B" NIL "a" "b"))'); // white space collapsed, as Dovecot
});

test('the envelope of RFC 3501 6.4.5\'s example message', () => {
  const header = Buffer.from(
    'Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\n' +
      'From: Terry Gray <gray@cac.washington.edu>\n' +
      'Subject: IMAP4rev1 WG mtg summary and minutes\n' +
      'To: imap@cac.washington.edu\n' +
      'cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\n' +
      'Message-Id: <B27397-0100000@cac.washington.edu>\n',
  );
  // RFC 3501 7.4.2 shows this answer (there it is one line, with the From repeated for Sender and Reply-To).
  assert.equal(
    formatEnvelope(header),
    '("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" ' +
      '(("Terry Gray" NIL "gray" "cac.washington.edu")) (("Terry Gray" NIL "gray" "cac.washington.edu")) ' +
      '(("Terry Gray" NIL "gray" "cac.washington.edu")) ((NIL NIL "imap" "cac.washington.edu")) ' +
      '((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) NIL NIL ' +
      '"<B27397-0100000@cac.washington.edu>")',
  );
});

test('sender and reply-to default to from; raw values; last Subject wins; address fields add up', () => {
  const envelope = formatEnvelope(
    Buffer.from('Subject: first\nSubject:  =?UTF-8?Q?caf=C3=A9?=\n\t "q"\nFrom: a@x\nFrom: b@y\nSender:\nReply-To: r@z\nIn-Reply-To: <p@x>\nDate:\n'),
  );
  assert.equal(
    envelope,
    '("" {25}\r\n=?UTF-8?Q?caf=C3=A9?= "q" ((NIL NIL "a" "x")(NIL NIL "b" "y")) ((NIL NIL "a" "x")(NIL NIL "b" "y")) ' +
      '((NIL NIL "r" "z")) NIL NIL NIL "<p@x>" NIL)',
  );
  assert.equal(formatEnvelope(Buffer.alloc(0)), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
});

test('field names in any case, with white space around them, and names that only look alike', () => {
  const header = Buffer.from(
    'fROM : a@x\nX-From: not@this\nFromage: not@this\nFr\xf6m: not@this\nREPLY-to:r@z\n' +
      'SUBJECT\t: spaced name\nMESSAGE-ID: <m@x>\nmessage-id: <later@x>\nIn-Reply-To : <p@x>\nBcc\xa0: b@y\n',
    'latin1',
  );
  const envelope = formatEnvelope(header);
  assert.equal(
    envelope,
    '(NIL "spaced name" ((NIL NIL "a" "x")) ((NIL NIL "a" "x")) ((NIL NIL "r" "z")) NIL NIL ((NIL NIL "b" "y")) "<p@x>" "<later@x>")',
  );
  // The same as from the header's fields one by one (mime/header.ts), the general way.
  assert.equal(formatEnvelope(splitHeaderFields(header)), envelope);
});
