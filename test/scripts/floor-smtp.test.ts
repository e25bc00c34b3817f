// The SMTP floor of bench-budget (scripts/lib/floor-smtp.ts) must store what
// this project's server stores, or the comparison says nothing: one message
// over a real socket, then its mbox entry (From line, LF line ends, dots
// unstuffed, a body "From " line quoted), its lock gone, its record written.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FLOOR = new URL('../../scripts/lib/floor-smtp.ts', import.meta.url).pathname;

test('floor-smtp stores a message as the server does: mboxrd entry, dots unstuffed, lock released, record written', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'floor-smtp-test-'));
  const floor = spawn(process.execPath, [FLOOR, '0', dir, '--record', '--lock'], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const replyCount = (n: number) =>
    new Promise<void>((done, fail) => {
      const deadline = setTimeout(() => fail(new Error(`waiting for ${n} replies, got: ${received}`)), 5000);
      const check = () => (received.split('\r\n').filter((l) => /^\d{3} /.test(l)).length >= n ? (clearTimeout(deadline), done()) : setTimeout(check, 5));
      check();
    });
  await replyCount(1);
  socket.write('EHLO test\r\nMAIL FROM:<bob@example.org>\r\nRCPT TO:<alice@localhost>\r\nDATA\r\n');
  await replyCount(5);
  socket.write('Subject: floor\r\n\r\n..a stuffed dot\r\nFrom the start of a line\r\nend\r\n.\r\n');
  await replyCount(6);
  socket.end('QUIT\r\n');
  await once(socket, 'close');

  assert.deepEqual(received.split('\r\n').filter((l) => /^\d{3} /.test(l)).map((l) => l.slice(0, 3)), ['220', '250', '250', '250', '354', '250', '221']);
  const mbox = await readFile(join(dir, 'alice'), 'latin1');
  assert.match(mbox, /^From floor@localhost .+\nSubject: floor\n\n\.a stuffed dot\n>From the start of a line\nend\n\n$/);
  await assert.rejects(stat(join(dir, 'alice.lock')), { code: 'ENOENT' });
  const record = await readFile(join(dir, '.alice.record'), 'latin1');
  assert.equal(record.length, 512);
  assert.match(record, new RegExp(`^batch start=0 end=${Buffer.byteLength(mbox, 'latin1')}\\n`));
});
