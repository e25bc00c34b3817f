// BODY and BODYSTRUCTURE (RFC 3501 7.4.2): the shapes of single parts,
// text parts, message/rfc822 parts and multiparts, with and without
// extension data, and the choices made where Dovecot makes them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBody, formatBodyStructure } from '../../src/imap/bodystructure.ts';
import { MimeStructureParser, parseStructure } from '../../src/mime/structure.ts';

const structure = async (text: string) => parseStructure([Buffer.from(text, 'latin1')]);

function parseStructureSync(text: string) {
  const parser = new MimeStructureParser();
  parser.push(Buffer.from(text, 'latin1'));
  return parser.end();
}

test('a text part: type, parameters, fields, octets and lines; extension data only in BODYSTRUCTURE', async () => {
  const root = await structure(
    'Content-Type: text/plain; charset=utf-8\nContent-ID: <id@x>\nContent-Description: note\n' +
      'Content-Transfer-Encoding: quoted-printable\nContent-MD5: abc=\nContent-Disposition: inline; filename=n.txt\n' +
      'Content-Language: en, de\nContent-Location: http://x/n.txt\n\nline 1\nline 2\n',
  );
  assert.equal(formatBody(root), '("text" "plain" ("charset" "utf-8") "<id@x>" "note" "quoted-printable" 16 2)');
  assert.equal(
    formatBodyStructure(root),
    '("text" "plain" ("charset" "utf-8") "<id@x>" "note" "quoted-printable" 16 2 "abc=" ("inline" ("filename" "n.txt")) ("en" "de") "http://x/n.txt")',
  );
});

test('defaults: no Content-Type is text/plain us-ascii, a text part without charset gets one', async () => {
  assert.equal(formatBody(await structure('Subject: x\n\nhi\n')), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)');
  assert.equal(formatBody(await structure('Content-Type: broken\n\nhi\n')), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1)');
  assert.equal(formatBody(await structure('Content-Type: text/html; name=a.html\n\nhi')), '("text" "html" ("name" "a.html" "charset" "us-ascii") NIL NIL "7bit" 2 0)');
  // Not text: no line count, no charset added, parameters NIL when none.
  assert.equal(formatBodyStructure(await structure('Content-Type: image/png\n\nxx\n')), '("image" "png" NIL NIL NIL "7bit" 4 NIL NIL NIL NIL)');
});

test('multipart: parts, subtype, then parameters, disposition, language, location', async () => {
  const root = await structure('Content-Type: multipart/alternative; boundary=b\nContent-Language: fr\n\n--b\n\na\n--b\nContent-Type: text/html\n\n<b>a</b>\n--b--\n');
  assert.equal(formatBody(root), '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 8 0) "alternative")');
  assert.equal(
    formatBodyStructure(root),
    '(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0 NIL NIL NIL NIL)("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 8 0 NIL NIL NIL NIL) "alternative" ("boundary" "b") NIL ("fr") NIL)',
  );
});

test('a multipart with no parts to show gets one empty text part, as Dovecot sends it', async () => {
  const empty = '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)';
  assert.equal(formatBody(await structure('Content-Type: multipart/mixed\n\nno boundary\n')), `(${empty} "mixed")`);
  assert.equal(formatBody(await structure('Content-Type: multipart/mixed; boundary=b\n\n--b--\n')), `(${empty} "mixed")`);
});

test('message/rfc822: envelope, body structure and lines of the embedded message', async () => {
  const root = await structure('Content-Type: message/rfc822\n\nSubject: inner\nFrom: a@b\n\ninner body\n');
  assert.equal(
    formatBody(root),
    '("message" "rfc822" NIL NIL NIL "7bit" 41 (NIL "inner" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) NIL NIL NIL NIL NIL) ' +
      '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 12 1) 4)',
  );
  // Base64 is not allowed for message/rfc822 (RFC 2046 5.2.1): it is not parsed, and an empty envelope and body stand in.
  const encoded = await structure('Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeAoKeQo=\n');
  assert.equal(
    formatBody(encoded),
    '("message" "rfc822" NIL NIL NIL "base64" 22 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0) 1)',
  );
});

test('8-bit and quoted parameter values are sent as literals', async () => {
  const root = await structure('Content-Type: application/pdf; name="caf\xc3\xa9 \\"1\\".pdf"\n\nx');
  assert.equal(formatBody(root), '("application" "pdf" ("name" {13}\r\ncaf\xc3\xa9 "1".pdf) NIL NIL "7bit" 1)');
});

test('message/global is a basic part, as in RFC 3501 9 and Dovecot 2.3', async () => {
  const root = await structure('Content-Type: message/global\n\nSubject: g\n\nbody\n');
  assert.equal(formatBody(root), '("message" "global" NIL NIL NIL "7bit" 20)');
  assert.equal(root.message, null);
});

test('an encoding that is not one token counts as absent (7bit), as in Dovecot', async () => {
  const body = (encoding: string) => formatBody(parseStructureSync(`Content-Type: text/plain\nContent-Transfer-Encoding: ${encoding}\n\nx`));
  assert.equal(body('BASE64 (comment)'), '("text" "plain" ("charset" "us-ascii") NIL NIL "BASE64" 1 0)');
  assert.equal(body('quoted-printable <p>junk'), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)');
  assert.equal(body('"base64"'), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 1 0)');
});
