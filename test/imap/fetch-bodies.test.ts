// FETCH of whole messages (BODY[], BODY.PEEK[], RFC822, BINARY[]) over real
// sockets. Small messages take the batch path (imap/fetch-batch.ts: read
// in one piece, no wait per message), large ones are streamed by the
// general path (fetch-data.ts); both must send the stored message byte for
// byte, as the general path does, and neither may send other bytes when
// another program rewrote the mbox behind the server's back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, utimes, writeFile } from 'node:fs/promises';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { imapServer, loggedIn, deliver } from './helpers.ts';
import type { TestServer } from '../helpers/test-server.ts';

/** The message as a client receives it: LF becomes CRLF, a CRLF stays. */
const onWire = (stored: Buffer) => Buffer.from(stored.toString('latin1').replace(/(?<!\r)\n/g, '\r\n'), 'latin1');

/** Well over the 128 KiB read in one piece (store/message-reader.ts WHOLE_CHECK_BYTES). */
const LARGE_BODY = `${'x'.repeat(78)}\r\n`.repeat(3000);

/** Five messages: quoted From lines, a large one, one stored with CRLF line ends by another program, a plain one. */
async function fiveMessages(server: TestServer): Promise<void> {
  await deliver(server, 'quoted', 'jjordan@localhost', 'From the desk\r\n>From quoted once\r\n>>From twice\r\n');
  await deliver(server, 'large', 'jjordan@localhost', LARGE_BODY);
  await deliver(server, 'plain');
  const mbox = server.mboxPath('jjordan');
  await withMailboxLock(mbox, async () => {
    const text = await readFile(mbox, 'latin1');
    await writeFile(mbox, `${text}From someone@example.net Mon Nov 23 10:00:00 2026\nSubject: crlf\r\n\r\nstored by another program\r\n\n`, 'latin1');
  });
  await deliver(server, 'last');
}

test('whole-message FETCH: every message byte for byte, and the same responses as the general path, for small and large messages', async (t) => {
  const server = await imapServer(t);
  await fiveMessages(server);
  const client = await loggedIn(server);
  const stored = await server.messages('jjordan');
  assert.equal(stored.length, 5);
  const expected = stored.map((m) => onWire(m.content));
  assert.ok(expected[1].length > 128 * 1024 && expected.every((m, i) => i === 1 || m.length < 16 * 1024));

  const whole = await client.command('FETCH 1:* (UID BODY.PEEK[] RFC822.SIZE FLAGS)', 20_000);
  assert.equal(whole.status, 'OK', whole.text);
  assert.deepEqual(whole.literals, expected);
  for (const [i, line] of whole.untagged.entries()) {
    assert.match(line, new RegExp(`^${i + 1} FETCH \\(UID ${i + 1} BODY\\[\\] \\{${expected[i].length}\\}`));
    assert.ok(line.endsWith(` RFC822.SIZE ${expected[i].length} FLAGS (\\Recent))`), line.slice(-60));
  }
  // A header section sends the same FETCH through the general path (fetch-data.ts).
  const general = await client.command('FETCH 1:* (UID BODY.PEEK[] RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (X-None)])', 20_000);
  assert.deepEqual(
    whole.untagged,
    general.untagged.map((line) => line.replace(/ BODY\[HEADER\.FIELDS \(X-NONE\)\] \{2\}\r\n\)$/, ')')),
  );

  // One message at a time, by UID, as a client opens them.
  for (const uid of [4, 2, 5]) {
    const one = await client.command(`UID FETCH ${uid} BODY.PEEK[]`, 20_000);
    assert.deepEqual([one.untagged.length, one.literals], [1, [expected[uid - 1]]]);
    assert.match(one.untagged[0], new RegExp(`^${uid} FETCH \\(UID ${uid} BODY\\[\\] \\{`));
  }
  // BINARY[] of the whole message is the same bytes, as literal8 (RFC 3516 4.3).
  const binary = await client.command('FETCH 3:4 BINARY.PEEK[]');
  assert.deepEqual(binary.literals, expected.slice(2, 4));
  assert.match(binary.untagged[0], /^3 FETCH \(BINARY\[\] ~\{\d+\}/);
  // RFC822 sets \Seen the first time (its FLAGS then come with it); the second time nothing changes.
  const first = await client.command('FETCH 1:* RFC822', 20_000);
  const again = await client.command('FETCH 1:* RFC822', 20_000);
  assert.deepEqual([first.literals, again.literals], [expected, expected]);
  assert.match(first.untagged[0], /FLAGS \(\\Seen \\Recent\)\)$/);
  assert.match(again.untagged[0], /^1 FETCH \(RFC822 \{\d+\}[^]*\)$/);
  assert.doesNotMatch(again.untagged[0], /FLAGS/);
});

// Message 1 ("quoted") gains a byte, message 5 ("last") loses one: the
// size stays, message 1 is no longer what the index says, 2 to 4 moved.
for (const [uid, what] of [[1, 'a small message (read in one piece)'], [2, 'the large message (streamed)']] as const) {
  test(`an mbox rewritten behind the server (same size, same time): FETCH BODY[] of ${what} answers NO, never other bytes`, async (t) => {
    const server = await imapServer(t);
    await fiveMessages(server);
    const mbox = server.mboxPath('jjordan');
    // A time in whole seconds, which utimes can set again exactly.
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 10_000);
    await utimes(mbox, mtime, mtime);
    const client = await loggedIn(server);
    const file = await readFile(mbox, 'latin1');
    const shifted = file.replace('Subject: quoted', 'Subject: quoted!').replace('This is last.', 'This is last');
    assert.equal(shifted.length, file.length);
    await writeFile(mbox, shifted, 'latin1');
    await utimes(mbox, mtime, mtime); // the stat before each command sees nothing
    const reply = await client.command(`UID FETCH ${uid} (UID BODY.PEEK[])`);
    assert.deepEqual([reply.status, reply.untagged, reply.literals], ['NO', [], []], reply.text);
    assert.match(reply.text, /^\[EXPUNGEISSUED\]/);
  });
}
