// The floors of bench-budget (scripts/lib/floor-smtp.ts, floor-pop3.ts) must
// store and hand over what this project's server does, or the comparison
// says nothing. Each is run as bench-budget runs it, a child process on a
// free loopback port, and spoken to over a real socket:
//  - floor-smtp: one message, then its mbox entry (From line, LF line ends,
//    dots unstuffed, a body "From " line quoted), its lock gone, its record;
//  - floor-pop3: an mbox written by the real store (a quoted ">From " line,
//    a line that starts with a dot, a last line without its newline), then
//    STAT, LIST and RETR compared with the server's RETR rules; on its own
//    and on the project's shared protocol layer (--layer).

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MboxAppender } from '../../src/store/mbox-append.ts';

/** A temporary directory, removed after the test. */
async function tempDir(t: TestContext, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-test-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts scripts/lib/SCRIPT on a free port (stopped after the test) and
 * connects to it: what it sent so far, and a wait for what it will send.
 */
async function floorSession(t: TestContext, script: string, args: string[]) {
  const floor = spawn(process.execPath, [new URL(`../../scripts/lib/${script}`, import.meta.url).pathname, '0', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => floor.kill('SIGKILL'));
  const [first] = (await once(floor.stdout, 'data')) as [Buffer];
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(first.toString())?.[1]);
  assert.ok(port > 0, `no port in ${first.toString()}`);
  const socket = connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  let received = '';
  socket.on('data', (chunk) => (received += chunk.toString('latin1')));
  const until = (done: (text: string) => boolean) =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`still waiting; received: ${JSON.stringify(received)}`)), 5000);
      const check = () => (done(received) ? (clearTimeout(deadline), resolve()) : setTimeout(check, 5));
      check();
    });
  return { socket, until, received: () => received };
}

const replyCodes = (text: string) => text.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3));

test('floor-smtp stores a message as the server does: mboxrd entry, dots unstuffed, lock released, record written', async (t) => {
  const dir = await tempDir(t, 'floor-smtp');
  const { socket, until, received } = await floorSession(t, 'floor-smtp.ts', [dir, '--record', '--lock']);
  await until((text) => replyCodes(text).length >= 1);
  socket.write('EHLO test\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n');
  await until((text) => replyCodes(text).length >= 5);
  socket.write('Subject: floor\r\n\r\n..a stuffed dot\r\nFrom the start of a line\r\nend\r\n.\r\n');
  await until((text) => replyCodes(text).length >= 6);
  socket.end('QUIT\r\n');
  await once(socket, 'close');

  assert.deepEqual(replyCodes(received()), ['220', '250', '250', '250', '354', '250', '221']);
  const mbox = await readFile(join(dir, 'alice'), 'latin1');
  assert.match(mbox, /^From floor@localhost .+\nSubject: floor\n\n\.a stuffed dot\n>From the start of a line\nend\n\n$/);
  await assert.rejects(stat(join(dir, 'alice.lock')), { code: 'ENOENT' });
  const record = await readFile(join(dir, '.alice.record'), 'latin1');
  assert.equal(record.length, 512);
  assert.match(record, new RegExp(`^batch start=0 end=${Buffer.byteLength(mbox, 'latin1')}\\n`));
});

const MESSAGES = [
  'Subject: one\n\nFrom the start of a line\n.a line with a dot\nend\n',
  'Subject: two\n\n>From quoted already\nno newline at the end',
  'Subject: three\n\n\n',
];

for (const [how, flags] of [['', []], [' on the shared protocol layer', ['--layer']]] as const) {
test(`floor-pop3${how} hands over each message as the server does: unquoted, CRLF, dot-stuffed, sizes as LIST says`, async (t) => {
  const mbox = join(await tempDir(t, 'floor-pop3'), 'INBOX');
  const appender = new MboxAppender();
  for (const text of MESSAGES) await appender.append(mbox, { envelopeFrom: 'a@example.org', date: new Date(), content: async function* () { yield Buffer.from(text); } });
  const { socket, until, received } = await floorSession(t, 'floor-pop3.ts', [mbox, ...flags]);
  await until((text) => /^\+OK.*\r\n/.test(text));
  socket.write('USER u\r\nPASS p\r\nSTAT\r\nLIST\r\nRETR 1\r\nRETR 2\r\nRETR 3\r\nQUIT\r\n');
  await until((text) => text.endsWith('+OK bye\r\n'));

  // What RETR must send for each stored message (RFC 1939 3: CRLF, a leading dot doubled).
  const wire = MESSAGES.map((m) => m.replaceAll('\n', '\r\n') + (m.endsWith('\n') ? '' : '\r\n'));
  const expected = wire.map((w) => w.replace(/^\./gm, '..'));
  const sizes = wire.map((w) => Buffer.byteLength(w));
  const total = sizes.reduce((a, b) => a + b, 0);
  const replies = received().split(/(?=^\+OK|^-ERR)/m);
  assert.equal(replies[3], `+OK 3 ${total}\r\n`);
  assert.equal(replies[4], `+OK\r\n${sizes.map((s, i) => `${i + 1} ${s}\r\n`).join('')}.\r\n`);
  for (let i = 0; i < 3; i++) assert.equal(replies[5 + i], `+OK ${sizes[i]} octets\r\n${expected[i]}.\r\n`, `RETR ${i + 1}`);
});
}
