// FETCH of a message's MIME structure over real sockets (RFC 3501 6.4.5,
// 7.4.2): every message of the project's corpus (test/mime/corpus) is
// APPENDed, then its ENVELOPE, BODY and BODYSTRUCTURE must be exactly the
// expected strings; body sections by part number, MIME headers, embedded
// messages, HEADER.FIELDS(.NOT), partials and BINARY are checked on the
// mixed and nested messages.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { imapServer, loggedIn } from './helpers.ts';

const CORPUS = join(import.meta.dirname, '..', 'mime', 'corpus');
const crlf = (text: string | Buffer) => Buffer.from(Buffer.from(text).toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');

/** The expected lines of a corpus message, with literals inlined as the test client shows them. */
async function expected(name: string): Promise<Map<string, string>> {
  const lines = new Map<string, string>();
  const text = await readFile(join(CORPUS, `${name}.expected`), 'latin1');
  for (const line of text.split(/\n(?=[A-Z]+ )/)) {
    const space = line.indexOf(' ');
    lines.set(line.slice(0, space), line.slice(space + 1).replace(/\{(\d+)\}\r?\n/g, '{$1}').trimEnd());
  }
  return lines;
}

test('ENVELOPE, BODY and BODYSTRUCTURE of every corpus message are exactly the expected strings', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxConnectionsPerIp: 50 } } });
  const client = await loggedIn(server);
  const names = (await readdir(CORPUS)).filter((f) => f.endsWith('.eml')).map((f) => f.slice(0, -4)).sort();
  assert.ok(names.length >= 15, names.join(' '));
  for (const [i, name] of names.entries()) {
    const raw = await readFile(join(CORPUS, `${name}.eml`));
    assert.equal((await client.commandWithLiterals(['APPEND INBOX ', raw])).status, 'OK', name);
    const reply = await client.command(`FETCH ${i + 1} (ENVELOPE BODY BODYSTRUCTURE)`);
    assert.equal(reply.status, 'OK', `${name}: ${reply.text}`);
    const line = reply.untagged.find((l) => l.startsWith(`${i + 1} FETCH (`))!;
    const want = await expected(name);
    // An mbox holds whole lines: a message that ends mid-line (the truncated
    // upload) is stored with its last line ended, 2 more octets on the wire.
    if (raw[raw.length - 1] !== 0x0a) {
      for (const [item, value] of want) want.set(item, value.replace(/"base64" (\d+)/, (_m, n) => `"base64" ${Number(n) + 2}`));
    }
    for (const item of ['ENVELOPE', 'BODY', 'BODYSTRUCTURE']) {
      if (!want.has(item)) continue;
      assert.ok(line.includes(`${item} ${want.get(item)}`), `${name} ${item}:\n  want ${want.get(item)}\n  got  ${line}`);
    }
  }
});

test('body sections by part number: parts, MIME headers, an embedded message\'s HEADER and TEXT, HEADER.FIELDS.NOT, partials, BINARY', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server);
  for (const name of ['mixed-attachments', 'nested-rfc822']) {
    assert.equal((await client.commandWithLiterals(['APPEND INBOX ', await readFile(join(CORPUS, `${name}.eml`))])).status, 'OK');
  }
  const mixed = await client.command('FETCH 1 (BODY.PEEK[1.1] BODY.PEEK[2.MIME] BODY.PEEK[3]<0.10> BINARY.PEEK[2] BINARY.SIZE[2] BODY.PEEK[HEADER.FIELDS.NOT (Received Date Message-ID MIME-Version Content-Type)])');
  assert.equal(mixed.status, 'OK', mixed.text);
  const [textPart, pdfMime, pngStart, pdf, headerRest] = mixed.literals;
  assert.deepEqual(textPart, crlf('The report is attached. Voil=E0.\n'));
  assert.match(pdfMime.toString(), /^Content-Type: application\/pdf; name="report.pdf"\r\n[^]*Content-Language: en-GB\r\n\r\n$/);
  assert.equal(pngStart.toString(), 'iVBORw0KGg');
  const pdfBytes = Buffer.from((await readFile(join(CORPUS, 'mixed-attachments.eml'), 'latin1')).split('Content-Language: en-GB\n\n')[1].split('\n\n')[0], 'base64');
  assert.deepEqual(pdf, pdfBytes, 'BINARY undoes base64');
  assert.match(mixed.untagged[0], new RegExp(`BINARY\\.SIZE\\[2\\] ${pdfBytes.length}\\b`));
  assert.match(mixed.untagged[0], /BINARY\[2\] ~\{\d+\}/, 'as literal8: the PDF holds NUL bytes');
  assert.equal(headerRest.toString(), 'From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nSubject: Report and photo\r\n\r\n');

  const nested = await client.command('FETCH 2 (BODY.PEEK[2.HEADER.FIELDS (Subject)] BODY.PEEK[2.2.TEXT] BODY.PEEK[3.1] BODY.PEEK[9])');
  assert.equal(nested.status, 'OK', nested.text);
  assert.equal(nested.literals[0].toString(), 'Subject: First\r\n\r\n');
  assert.match(nested.literals[1].toString(), /\r\n$/);
  assert.match(nested.untagged[0], /BODY\[9\] NIL/, 'a part that does not exist is NIL');
  assert.equal((await client.command('FETCH 1 BODY.PEEK[MIME]')).status, 'BAD', 'MIME needs a part number');
});
