// The POP3 floor of bench-budget (scripts/lib/floor-pop3.ts) must hand over
// what this project's server hands over, or the comparison says nothing: an
// mbox written by the real store (a quoted ">From " line, a line that starts
// with a dot, a last line without its newline), then STAT, LIST and RETR
// over a real socket, and each message compared with the server's own RETR
// rules: ">From " unquoted, CRLF line ends, a leading dot doubled.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MboxAppender } from '../../src/store/mbox-append.ts';

const FLOOR = new URL('../../scripts/lib/floor-pop3.ts', import.meta.url).pathname;

const MESSAGES = [
  'Subject: one\n\nFrom the start of a line\n.a line with a dot\nend\n',
  'Subject: two\n\n>From quoted already\nno newline at the end',
  'Subject: three\n\n\n',
];

test('floor-pop3 hands over each message as the server does: unquoted, CRLF, dot-stuffed, sizes as LIST says', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'floor-pop3-test-'));
  const mbox = join(dir, 'INBOX');
  const appender = new MboxAppender();
  for (const text of MESSAGES) await appender.append(mbox, { envelopeFrom: 'a@example.org', date: new Date(), content: async function* () { yield Buffer.from(text); } });
  const floor = spawn(process.execPath, [FLOOR, '0', mbox], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(async () => {
    floor.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const [first] = (await once(floor.stdout, 'data')) as [Buffer];
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(first.toString())?.[1]);
  assert.ok(port > 0, `no port in ${first.toString()}`);

  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  const waitFor = (pattern: RegExp) =>
    new Promise<void>((done, fail) => {
      const deadline = setTimeout(() => fail(new Error(`waiting for ${pattern}, got: ${JSON.stringify(received)}`)), 5000);
      const check = () => (pattern.test(received) ? (clearTimeout(deadline), done()) : setTimeout(check, 5));
      check();
    });
  await waitFor(/^\+OK.*\r\n/);
  socket.write('USER u\r\nPASS p\r\nSTAT\r\nLIST\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nQUIT\r\n');
  await waitFor(/\+OK bye\r\n$/);
  socket.destroy();

  // What RETR must send for each stored message (RFC 1939 3: CRLF, a leading dot doubled).
  const wire = MESSAGES.map((m) => m.replaceAll('\n', '\r\n') + (m.endsWith('\n') ? '' : '\r\n'));
  const expected = wire.map((w) => w.replace(/^\./gm, '..'));
  const sizes = wire.map((w) => Buffer.byteLength(w));
  const total = sizes.reduce((a, b) => a + b, 0);
  const replies = received.split(/(?=^\+OK|^-ERR)/m);
  assert.equal(replies[3], `+OK 3 ${total}\r\n`);
  assert.equal(replies[4], `+OK\r\n${sizes.map((s, i) => `${i + 1} ${s}\r\n`).join('')}.\r\n`);
  for (let i = 0; i < 3; i++) assert.equal(replies[5 + i], `+OK ${sizes[i]} octets\r\n${expected[i]}.\r\n`, `RETR ${i + 1}`);
});
