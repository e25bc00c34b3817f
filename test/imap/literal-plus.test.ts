// LITERAL+ (RFC 7888) over real sockets: a `{n+}` literal is accepted up to
// the message size limit, like a synchronising one, and spooled the same
// way; one over the limit is read to its end and thrown away, and only its
// command is refused (NO [TOOBIG], RFC 7889 4): the session goes on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn } from './helpers.ts';

/** A message of about `size` octets: CRLF lines of printable text, no "From " line to quote. */
function message(size: number): Buffer {
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'.repeat(1) + '\r\n';
  const header = 'From: me@localhost\r\nSubject: large\r\n\r\n';
  return Buffer.from(header + line.repeat(Math.ceil((size - header.length) / line.length)));
}

test('APPEND with a 1 MiB {n+} literal: no "+" is awaited, the message is stored and FETCHed byte for byte', async (t) => {
  const server = await imapServer(t);
  const client = await loggedIn(server);
  const body = message(1024 * 1024);
  assert.ok(body.length > 1024 * 1024);
  client.sendRaw(`a1 APPEND INBOX {${body.length}+}\r\n`);
  client.sendRaw(body);
  client.sendRaw('\r\n');
  const reply = await client.readTagged('a1', 20_000);
  assert.equal(reply.status, 'OK', reply.text);
  assert.match(reply.text, /^\[APPENDUID \d+ 1\] /);
  const fetched = await client.command('FETCH 1 (RFC822.SIZE BODY.PEEK[])', 20_000);
  assert.equal(Number(/RFC822.SIZE (\d+)/.exec(fetched.untagged[0])![1]), body.length);
  assert.ok(fetched.literals[0].equals(body), 'byte for byte');
});

test('a {n+} over the message size limit is read and discarded: NO [TOOBIG], nothing stored, the session goes on in step', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxMessageBytes: 64 * 1024 } } });
  const client = await loggedIn(server);
  // 4 MiB, 64 times the limit: the bytes go nowhere, and what follows them is read as the commands it is.
  const tooLarge = message(4 * 1024 * 1024);
  client.sendRaw(`a1 APPEND INBOX {${tooLarge.length}+}\r\n`);
  client.sendRaw(tooLarge);
  // The command goes on after the literal with another {n+}: that one is thrown away too.
  client.sendRaw(' {5+}\r\nA1 OK\r\na2 NOOP\r\n');
  const refused = await client.readTagged('a1', 20_000);
  assert.equal(refused.status, 'NO');
  assert.match(refused.text, /^\[TOOBIG\] /);
  assert.equal((await client.readTagged('a2')).status, 'OK', 'the literal\'s bytes were not read as commands');
  const status = await client.command('STATUS INBOX (MESSAGES)');
  assert.match(status.untagged[0], /MESSAGES 0\)/);
  // A synchronising literal over the limit is still refused before a byte is sent, and one within it still works.
  client.sendRaw(`a3 APPEND INBOX {${tooLarge.length}}\r\n`);
  assert.match((await client.readLine()) ?? '', /^a3 NO \[TOOBIG\] /);
  const small = message(1000);
  client.sendRaw(`a4 APPEND INBOX {${small.length}+}\r\n`);
  client.sendRaw(small);
  client.sendRaw('\r\n');
  assert.equal((await client.readTagged('a4')).status, 'OK');
  // Another session of the same server is served all along.
  const other = await loggedIn(server);
  assert.match((await other.command('FETCH 1 RFC822.SIZE')).untagged[0], new RegExp(`RFC822.SIZE ${small.length}\\)`));
});

test('a {n+} beyond what the server will discard (twice the limit, 64 MiB at least) gets BYE [TOOBIG] at once, before its bytes are read', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxMessageBytes: 64 * 1024 } } });
  const client = await loggedIn(server);
  client.sendRaw(`a1 APPEND INBOX {${200 * 1024 * 1024}+}\r\nonly a few bytes of it`);
  assert.match((await client.readLine()) ?? '', /^\* BYE \[TOOBIG\] /);
  await client.waitClosed();
  // The server is fine, and nothing was stored.
  const other = await loggedIn(server);
  assert.match((await other.command('STATUS INBOX (MESSAGES)')).untagged[0], /MESSAGES 0\)/);
});
