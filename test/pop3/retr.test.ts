// RETR gives back exactly the message that was delivered: the bytes stored
// in the mbox (with the Return-Path: and Received: fields the server added),
// with mboxrd quoting undone, CRLF line endings, dot-stuffed on the wire and
// un-stuffed by the client, and as many octets as the +OK line and LIST
// promised (RFC 1939 5, 7, 11). And a large message streams: the server's
// memory does not grow with its size.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startTestServer, eventually } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { dotStuff, sendMail } from '../helpers/smtp-client.ts';
import { openPop3 } from '../helpers/pop3-client.ts';
import type { Pop3Client } from '../helpers/pop3-client.ts';

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    trace: false,
    ...options,
    config: { ...options.config, auth: { allowPlaintextOnLoopback: true } },
  });
  t.after(() => server.close());
  return server;
}

async function deliver(server: TestServer, data: string | Buffer): Promise<void> {
  const result = await sendMail(server.port, { from: 'sender@example.org', to: ['jjordan@localhost'], data });
  assert.equal(result.final.code, 250, `delivery: ${result.final.lines.join(' ')}`);
}

/** Log in as soon as the last session has let go of the maildrop (it ends after its socket closes). */
async function loginWhenFree(server: TestServer, port = server.server.pop3.ports.pop3, timeoutMs = 3000): Promise<Pop3Client> {
  let client: Pop3Client | null = null;
  await eventually(async () => {
    const attempt = server.track(await openPop3(port));
    const reply = await attempt.userPass('jjordan', 'secret');
    if (reply.ok) client = attempt;
    else {
      assert.match(reply.text, /^\[IN-USE\] /);
      attempt.destroy();
    }
    return reply.ok;
  }, 'the maildrop to be free', timeoutMs);
  return client!;
}

async function login(server: TestServer): Promise<Pop3Client> {
  const client = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.equal((await client.userPass('jjordan', 'secret')).ok, true);
  return client;
}

// A full garbage collection on demand, so that memory samples show what is
// alive rather than garbage the collector has not got round to yet (which,
// for 10 MiB streamed in 256 KiB chunks, is tens of MiB and varies by run).
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function liveBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

function crlf(lf: Buffer): Buffer {
  return Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
}

// A body with every line an mbox or POP3 has to treat specially.
const TRICKY_BODY =
  '.leading dot\r\n' +
  '..two dots\r\n' +
  '.\r\n' + // a lone dot: would end the response if it were not stuffed
  '. \r\n' +
  'From x\r\n' + // stored as ">From x" (mboxrd)
  '>From y\r\n' + // stored as ">>From y"
  '>>>From z\r\n' +
  'From\r\n' + // no space: not a From line, never quoted
  ' From indented\r\n' +
  'Fromage\r\n' +
  '\r\n' +
  'trailing spaces   \r\n' +
  'ünïcödé, 8 bits ✓\r\n' +
  'last line\r\n';
const TRICKY = `Subject: the tricky one\r\nFrom: Sender <sender@example.org>\r\nMessage-ID: <tricky@example.org>\r\n\r\n${TRICKY_BODY}`;

test('RETR returns the message exactly as delivered: trace fields, CRLF, dots stuffed on the wire, From lines unquoted', async (t) => {
  const server = await serverFor(t);
  await deliver(server, TRICKY);
  // The store really quoted the From lines, so the unquoting is under test.
  const mbox = (await readFile(server.mboxPath('jjordan'))).toString('utf8');
  for (const stored of ['\n>From x\n', '\n>>From y\n', '\n>>>>From z\n', '\nFrom\n', '\n From indented\n']) {
    assert.ok(mbox.includes(stored), `the mbox holds ${JSON.stringify(stored)}`);
  }
  const [stored] = await server.messages('jjordan');
  const expected = crlf(stored.content);

  const client = await login(server);
  const retr = await client.retr(1);
  assert.equal(retr.ok, true);
  assert.deepEqual(retr.bytes, expected, 'the stored message, CRLF');
  assert.ok(retr.bytes.toString('utf8').endsWith(`\r\n\r\n${TRICKY_BODY}`), 'the body exactly as sent');
  assert.ok(retr.bytes.toString('utf8').includes('\r\nSubject: the tricky one\r\n'), 'the header exactly as sent');
  assert.match(retr.bytes.toString('utf8'), /^Return-Path: <sender@example\.org>\r\nReceived: from client\.example \(\[127\.0\.0\.1\]\)\r\n\tby localhost \(jjordan-mail\) with ESMTP id /);

  // On the wire: the +OK line, then the message dot-stuffed with CRLF, then ".".
  assert.deepEqual(retr.wire, Buffer.concat([Buffer.from(`+OK ${retr.text}\r\n`), dotStuff(expected)]));
  assert.ok(retr.wire.includes('\r\n...two dots\r\n') && retr.wire.includes('\r\n..\r\n'), 'leading dots doubled');
  assert.equal(client.bareLineFeeds, 0, 'every line ends in CRLF');

  // RFC 1939 LIST and the +OK of RETR: the octets the client gets.
  assert.equal(retr.size, retr.bytes.length, `+OK ${retr.text} but ${retr.bytes.length} octets arrived`);
  assert.deepEqual(await client.command('LIST 1'), { ok: true, text: `1 ${retr.bytes.length}` });
  assert.deepEqual(await client.stat(), { count: 1, octets: retr.bytes.length });
  // And TOP applies the same transformations.
  const top = await client.top(1, 100);
  assert.deepEqual(top.bytes, expected);
});

test('sizes are right for every kind of message: empty body, no header, long lines, dots and From lines', async (t) => {
  const server = await serverFor(t);
  const messages = [
    'Subject: empty body\r\n\r\n',
    '\r\nno header at all\r\n',
    `Subject: long\r\n\r\n${'a'.repeat(5000)}\r\n${'.'.repeat(3000)}\r\n`,
    `Subject: many\r\n\r\n${'From here\r\n.\r\n>From there\r\n'.repeat(500)}`,
    'Subject: one\r\n\r\nx',
  ];
  for (const message of messages) await deliver(server, message);
  const stored = await server.messages('jjordan');
  const client = await login(server);
  const list = await client.multiline('LIST');
  for (let n = 1; n <= messages.length; n++) {
    const retr = await client.retr(n);
    assert.deepEqual(retr.bytes, crlf(stored[n - 1].content), `message ${n}`);
    assert.equal(retr.size, retr.bytes.length, `message ${n}: +OK size`);
    assert.equal(list.lines[n - 1], `${n} ${retr.bytes.length}`, `message ${n}: LIST size`);
    assert.deepEqual(retr.wire.subarray(retr.wire.indexOf('\r\n') + 2), dotStuff(retr.bytes), `message ${n}: wire`);
  }
  assert.equal(client.bareLineFeeds, 0);
});

// The client for the 10 MiB RETR runs in a child process, so that the memory
// of this process is the server's alone. It logs in, asks for message 1,
// reads nothing for 300 ms (a slow reader: the server must wait for it, not
// buffer the message), then hashes the multi-line response as it arrives and
// prints what it got. Node built-ins only; the port is its argument.
const STREAMING_CLIENT = `
import { connect } from 'node:net';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
const socket = connect({ port: Number(process.argv[1]), host: '127.0.0.1' });
const status = [];
let head = Buffer.alloc(0);
let tail = Buffer.alloc(0);
let octets = 0;
let done = false;
const digest = createHash('sha256');
socket.pause();
socket.once('connect', () => {
  socket.write('USER jjordan\\r\\nPASS secret\\r\\nRETR 1\\r\\n');
  setTimeout(() => socket.resume(), 300);
});
socket.on('end', () => {
  if (!done) process.exit(3); // closed before the end of the response
});
socket.on('data', (chunk) => {
  if (done) return; // the reply to QUIT
  if (status.length < 4) {
    head = Buffer.concat([head, chunk]);
    while (status.length < 4 && head.indexOf('\\r\\n') >= 0) {
      const end = head.indexOf('\\r\\n');
      status.push(head.subarray(0, end).toString());
      head = head.subarray(end + 2);
    }
    if (status.length < 4) return;
    chunk = head;
  }
  digest.update(chunk);
  octets += chunk.length;
  tail = Buffer.concat([tail, chunk]).subarray(-5);
  if (tail.toString() === '\\r\\n.\\r\\n') {
    done = true;
    socket.end('QUIT\\r\\n');
    process.stdout.write(JSON.stringify({ status, octets, sha256: digest.digest('hex') }));
  }
});
`;

test('RETR of a 10 MiB message streams it intact, and the server\'s memory stays bounded', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxMessageBytes: 20 * 1024 * 1024 } } });
  // 10 MiB of varied lines, with dots and From lines scattered through.
  const lines: string[] = ['Subject: big', 'Message-ID: <big@example.org>', ''];
  let bytes = 0;
  for (let i = 0; bytes < 10 * 1024 * 1024; i++) {
    const line = i % 997 === 0 ? `.dot line ${i}` : i % 1009 === 0 ? `From line ${i}` : `${i} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}`;
    lines.push(line);
    bytes += line.length + 2;
  }
  await deliver(server, lines.join('\r\n') + '\r\n');
  lines.length = 0;

  // What should come over the wire after "+OK": the stored message, CRLF, dot-stuffed, then ".".
  const [stored] = await server.messages('jjordan');
  const message = crlf(stored.content);
  assert.ok(message.length > 10 * 1024 * 1024);
  const wire = dotStuff(message);
  const expected = { size: message.length, octets: wire.length, sha256: createHash('sha256').update(wire).digest('hex') };

  collectGarbage();
  const before = { rss: process.memoryUsage().rss, live: liveBytes() };
  const peak = { ...before };
  const sampler = setInterval(() => {
    collectGarbage();
    peak.rss = Math.max(peak.rss, process.memoryUsage().rss);
    peak.live = Math.max(peak.live, liveBytes());
  }, 10);
  let output: string;
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', STREAMING_CLIENT, String(server.server.pop3.ports.pop3)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 20_000, // a response that never ends fails the test instead of hanging it
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const [code] = await once(child, 'close');
    assert.equal(code, 0, 'the client process ran to its end');
    output = Buffer.concat(chunks).toString();
  } finally {
    clearInterval(sampler);
  }
  const got = JSON.parse(output) as { status: string[]; octets: number; sha256: string };
  assert.deepEqual(got.status.slice(1), ['+OK Send PASS', "+OK jjordan's maildrop has 1 messages (" + expected.size + ' octets)', `+OK ${expected.size} octets`]);
  assert.equal(got.octets, expected.octets, 'as many octets as expected');
  assert.equal(got.sha256, expected.sha256, 'the same bytes');

  const MiB = 1024 * 1024;
  const rssGrowth = (peak.rss - before.rss) / MiB;
  const liveGrowth = (peak.live - before.live) / MiB;
  t.diagnostic(`server during RETR: RSS +${rssGrowth.toFixed(1)} MiB, live memory +${liveGrowth.toFixed(1)} MiB`);
  assert.ok(rssGrowth < 40, `RSS grew by ${rssGrowth.toFixed(1)} MiB while sending a 10 MiB message`);
  // Holding the message (or its dot-stuffed copy) anywhere would be 10 MiB or more.
  assert.ok(liveGrowth < 8, `live memory grew by ${liveGrowth.toFixed(1)} MiB while sending a 10 MiB message`);
});

test('a client that drops in the middle of a large RETR ends its session: the maildrop is freed, nothing removed', async (t) => {
  const server = await serverFor(t, { config: { limits: { maxMessageBytes: 20 * 1024 * 1024 } } });
  await deliver(server, 'Subject: small\r\n\r\nsmall\r\n');
  await deliver(server, `Subject: large\r\n\r\n${`${'z'.repeat(78)}\r\n`.repeat(50_000)}`);
  const mboxBefore = await readFile(server.mboxPath('jjordan'));
  const client = await login(server);
  assert.equal((await client.command('DELE 1')).ok, true);
  client.send('RETR 2');
  assert.equal((await client.readResponse()).ok, true);
  await client.readLine();
  client.destroy();
  const next = await loginWhenFree(server);
  assert.equal((await next.stat()).count, 2);
  assert.deepEqual(await readFile(server.mboxPath('jjordan')), mboxBefore);
});

test(
  'a client that stops reading in the middle of RETR is cut off by the idle timeout, freeing the maildrop',
  async (t) => {
    const server = await serverFor(t, { config: { limits: { maxMessageBytes: 20 * 1024 * 1024, pop3IdleTimeoutSeconds: 1 } } });
    await deliver(server, `Subject: large\r\n\r\n${`${'s'.repeat(78)}\r\n`.repeat(120_000)}`); // 9.6 MB: more than the socket buffers hold
    const stuck = await login(server);
    stuck.socket.pause(); // never reads again, but stays connected
    stuck.send('RETR 1');
    // The server notices (its own deadline, not the client's goodbye) and ends the session.
    await eventually(() => server.logLines.some((line) => /pop3\[\w+\] timeout during=transaction /.test(line)), 'the stuck client is cut off', 10_000);
    const next = await loginWhenFree(server, server.server.pop3.ports.pop3, 3000);
    assert.equal((await next.stat()).count, 1);
  },
);

test('an mbox cut short behind the session: RETR says -ERR [SYS/TEMP] and the session goes on', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'Subject: one\r\n\r\nfirst\r\n');
  const client = await login(server);
  const { truncate } = await import('node:fs/promises');
  await truncate(server.mboxPath('jjordan'), 10); // another program broke the file
  const reply = await client.command('RETR 1');
  assert.equal(reply.ok, false);
  assert.match(reply.text, /^\[SYS\/TEMP\] /);
  assert.equal((await client.command('NOOP')).ok, true, 'the session is still usable');
  assert.ok(server.logLines.some((line) => / stream-failed /.test(line)));
});

test('an mbox rewritten in place by another program, same size, messages shifted: RETR says -ERR, never other bytes', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'Subject: one\r\nMessage-ID: <one@example.org>\r\n\r\nfirst message\r\n');
  await deliver(server, 'Subject: two\r\nMessage-ID: <two@example.org>\r\n\r\nsecond message\r\n');
  const client = await login(server);
  const mbox = server.mboxPath('jjordan');
  const { readFile: read, writeFile: write, stat, utimes } = await import('node:fs/promises');
  const before = await read(mbox);
  const { mtime } = await stat(mbox);
  // One byte more in message 1, one less in message 2: the file keeps its
  // size (and here its mtime too), and message 2 starts one byte later.
  const after = Buffer.from(before.toString('latin1').replace('Subject: one', 'Subject: one!').replace('second message', 'secondmessage'), 'latin1');
  assert.equal(after.length, before.length);
  await write(mbox, after);
  await utimes(mbox, mtime, mtime);
  for (const n of [1, 2]) {
    const reply = await client.command(`RETR ${n}`);
    assert.equal(reply.ok, false, `RETR ${n} must not send the shifted bytes`);
    assert.match(reply.text, /^\[SYS\/TEMP\] /);
  }
  assert.equal((await client.command('NOOP')).ok, true, 'the session is still usable');
});

test('a message an IMAP session expunged after the POP3 login: RETR says -ERR', async (t) => {
  const server = await serverFor(t);
  await deliver(server, 'Subject: one\r\n\r\nfirst\r\n');
  await deliver(server, 'Subject: two\r\n\r\nsecond\r\n');
  const client = await login(server);
  const { openMailbox } = await import('../../src/store/mailbox.ts');
  const imap = await openMailbox(server.mboxPath('jjordan'));
  try {
    assert.deepEqual(await imap.expunge([1]), [1]);
  } finally {
    await imap.close();
  }
  const gone = await client.command('RETR 1');
  assert.equal(gone.ok, false);
  assert.match(gone.text, /No such message/);
  const kept = await client.retr(2);
  assert.equal(kept.ok, true);
  assert.match(kept.bytes.toString(), /\r\n\r\nsecond\r\n$/);
});
