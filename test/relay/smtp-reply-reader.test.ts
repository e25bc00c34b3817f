// The relay's reply reader (src/relay/smtp-reply-reader.ts) on a real
// loopback socket, against servers that send too much: too many lines in one
// reply, lines too long to keep, and bytes nobody asked for.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { MAX_LINE_OCTETS, MAX_REPLY_LINES, ReplyReader } from '../../src/relay/smtp-reply-reader.ts';
import { deliverMessage } from '../../src/relay/smtp-client.ts';
import { startFakeServer } from './fake-smtp-server.ts';

/** A server that runs `script` on its one connection, and a reader attached to the client side. */
async function readerFor(t: TestContext, script: (socket: Socket) => void): Promise<{ reader: ReplyReader; client: Socket }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    script(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const client = connect(port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const reader = new ReplyReader();
  reader.attach(client);
  t.after(() => {
    reader.detach();
    client.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { reader, client };
}

test(`a reply of 5,000 lines: the first ${MAX_REPLY_LINES} are kept, the rest read and dropped, the next reply is intact`, async (t) => {
  const lines = Array.from({ length: 5000 }, (_, i) => `250-line ${i}\r\n`).join('') + '250 last\r\n220 next\r\n';
  const { reader } = await readerFor(t, (socket) => socket.write(lines));
  const result = await reader.readReply(5000);
  assert.equal(result.kind, 'reply');
  if (result.kind !== 'reply') return;
  assert.equal(result.reply.code, 250);
  assert.equal(result.reply.lines.length, MAX_REPLY_LINES);
  assert.equal(result.reply.lines[MAX_REPLY_LINES - 1], `line ${MAX_REPLY_LINES - 1}`);
  const next = await reader.readReply(5000);
  assert.deepEqual(next.kind === 'reply' && [next.reply.code, next.reply.text], [220, 'next']);
});

test(`a reply line of 1 MB: its first ${MAX_LINE_OCTETS} octets are kept, the rest skipped, the next line read`, async (t) => {
  const { reader } = await readerFor(t, (socket) => {
    socket.write('550-' + 'x'.repeat(1024 * 1024) + '\r\n');
    socket.write('550 5.1.1 second line\r\n');
  });
  const result = await reader.readReply(5000);
  assert.equal(result.kind, 'reply');
  if (result.kind !== 'reply') return;
  assert.equal(result.reply.lines.length, 2);
  assert.equal(result.reply.lines[0], 'x'.repeat(MAX_LINE_OCTETS - 4));
  assert.equal(result.reply.lines[1], '5.1.1 second line');
});

test('a line that never ends is not gathered without bound: a timeout, not a growing buffer', async (t) => {
  let sent = 0;
  const { reader } = await readerFor(t, (socket) => {
    const chunk = Buffer.alloc(64 * 1024, 'y');
    // 4 MiB in all, written as fast as the reader takes it.
    const pump = () => {
      while (sent < 64 && socket.write(chunk)) sent++;
      if (sent < 64) socket.once('drain', () => (sent++, pump()));
    };
    socket.write('250-');
    pump();
  });
  const result = await reader.readReply(2000);
  assert.equal(result.kind, 'timeout');
  assert.ok((reader as unknown as { pending: Buffer }).pending.length <= MAX_LINE_OCTETS, 'only the start of the line is held');
});

test('bytes nobody reads pause the socket; reading resumes it and nothing is lost', async (t) => {
  const replies = Array.from({ length: 20_000 }, (_, i) => `250 reply ${i}\r\n`).join('');
  const { reader, client } = await readerFor(t, (socket) => socket.write(replies));
  // Nobody reads while the server fills the socket (up to 5 s on a busy machine).
  for (let i = 0; i < 500 && !client.isPaused(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(client.isPaused(), true, 'paused while 300 KB wait unread');
  for (let i = 0; i < 20_000; i++) {
    const result = await reader.readReply(5000);
    assert.ok(result.kind === 'reply' && result.reply.text === `reply ${i}`, `reply ${i}: ${JSON.stringify(result)}`);
  }
  assert.equal(client.isPaused(), false);
});

test('a delivery to a server whose greeting has 1,000 lines still goes through', async (t) => {
  const greeting = Array.from({ length: 999 }, (_, i) => `220-banner line ${i}`).join('\n') + '\n220 fake.test ESMTP';
  const server = await startFakeServer({ greeting, ehlo: ['PIPELINING'] });
  t.after(() => server.close());
  const log: string[] = [];
  const outcome = await deliverMessage({
    host: '127.0.0.1', port: server.port, heloName: 'relay.test', from: 'a@here.test', recipients: ['b@there.test'],
    message: async function* () { yield Buffer.from('Subject: hi\n\nhello\n'); },
    size: 20, eightBit: false, smtputf8: false, tls: 'none', verifyCertificate: false, log: (line) => log.push(line),
  });
  assert.equal(outcome.kind, 'done', JSON.stringify(outcome));
  assert.equal(log.filter((line) => line.startsWith('S: 220')).length, MAX_REPLY_LINES, 'only the kept lines are logged');
});
