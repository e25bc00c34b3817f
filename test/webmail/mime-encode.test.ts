// What the webmail writes, read back with the MIME module it reads with:
// encoded-words, display names, RFC 2231 file names, quoted-printable and
// base64 must all come back as they went in.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeHeaderText } from '../../src/mime/encoded-words.ts';
import { parseAddressList, addressText } from '../../src/mime/address.ts';
import { paramText, parseParams } from '../../src/mime/params.ts';
import { QuotedPrintableDecoder, Base64Decoder } from '../../src/mime/transfer-decode.ts';
import { addressField, base64Lines, encodedWords, mimeParameter, quotedPrintable, unstructuredField } from '../../src/webmail/mail/mime-encode.ts';
import { linkify } from '../../src/webmail/mail/linkify.ts';
import { attachmentDisposition } from '../../src/webmail/http/reply.ts';

const unfold = (field: string) => field.replace(/\r\n(?=[ \t])/g, '').replace(/^[^:]+: /, '').replace(/\r\n$/, '');

test('header text: encoded-words of at most 75 characters, never splitting a character; ASCII folded at spaces', () => {
  const text = 'Grüße aus Köln 🎉 '.repeat(8).trim();
  const field = unstructuredField('Subject', text);
  for (const line of field.split('\r\n')) assert.ok(line.length <= 78, line);
  assert.equal(decodeHeaderText(unfold(field)), text);
  const ascii = unstructuredField('Subject', 'word '.repeat(40).trim());
  assert.ok(ascii.split('\r\n').every((line) => line.length <= 78));
  assert.equal(unfold(ascii), 'word '.repeat(40).trim());
  assert.equal(unstructuredField('Subject', 'a\r\nBcc: victim@example.org'), 'Subject: a Bcc: victim@example.org\r\n', 'no header injection');
  for (const word of encodedWords('€'.repeat(40)).split('\r\n ')) assert.ok(word.length <= 75);
});

test('display names and addresses read back; file names as RFC 2231 read back', () => {
  const field = addressField('To', [{ name: 'Joe "the" Sender, Jr.', address: 'joe@example.org' }, { name: 'Zoë', address: 'zoe@example.org' }, { name: null, address: 'plain@example.org' }]);
  assert.equal(addressText(parseAddressList(Buffer.from(unfold(field)).toString('latin1'))), 'Joe "the" Sender, Jr. <joe@example.org>, Zoë <zoe@example.org>, plain@example.org');
  for (const name of ['report.pdf', 'été 2026.pdf', 'a"b\\c.txt', '日本語.txt']) {
    assert.equal(paramText(parseParams(`; ${mimeParameter('filename', name)}`), 'filename'), name);
  }
  assert.equal(attachmentDisposition('../../etc/pass\nwd'), `attachment; filename=".._.._etc_pass_wd"; filename*=UTF-8''.._.._etc_pass_wd`);
});

test('quoted-printable and base64 bodies decode to what was written', async () => {
  const text = `${'long line with spaces at the end   \n'.repeat(3)}=equals= and ümlauts\n${'x'.repeat(200)}\n.\nFrom here`;
  const encoded = quotedPrintable(text);
  for (const line of encoded.split('\r\n')) assert.ok(line.length <= 76, line);
  const decoder = new QuotedPrintableDecoder();
  const decoded = Buffer.concat([decoder.write(Buffer.from(encoded)), decoder.end()]).toString('utf8');
  assert.equal(decoded, text.replace(/\n/g, '\r\n'));

  const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 256));
  async function* chunks() {
    for (let i = 0; i < bytes.length; i += 33) yield bytes.subarray(i, i + 33);
  }
  const lines: Buffer[] = [];
  for await (const piece of base64Lines(chunks())) lines.push(piece);
  const all = Buffer.concat(lines).toString();
  assert.ok(all.split('\r\n').every((line) => line.length <= 76));
  const b64 = new Base64Decoder();
  assert.ok(Buffer.concat([b64.write(Buffer.from(all)), b64.end()]).equals(bytes));
});

test('links: http and https only, escaped, trailing punctuation left out', () => {
  assert.equal(linkify('see https://a.example/x?y=1&z=2. or (http://b.example/w_(x)) <b>').text,
    'see <a href="https://a.example/x?y=1&amp;z=2" rel="noopener noreferrer" target="_blank">https://a.example/x?y=1&amp;z=2</a>. or (<a href="http://b.example/w_(x)" rel="noopener noreferrer" target="_blank">http://b.example/w_(x)</a>) &lt;b&gt;');
  assert.equal(linkify('javascript:alert(1) data:text/html,x').text, 'javascript:alert(1) data:text/html,x');
});
