// When delivery cannot finish: a mailbox locked by another program, a full
// disk, a failing fsync, a client that vanishes mid-message. In every case
// the client must not hear 250 for a message that is not safely stored, the
// mailbox must be exactly as it was, no temporary file may be left behind,
// and the next delivery must work.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { openSession, transaction, dotStuff } from '../helpers/smtp-client.ts';
import type { SmtpClient, SmtpReply } from '../helpers/smtp-client.ts';
import { eventually, readOrNull, startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { realAppendIO } from '../../src/store/append-io.ts';
import type { AppendIO } from '../../src/store/append-io.ts';
import { lockFileContent } from '../../src/store/dotlock.ts';
import { startServer } from '../../src/main.ts';
import { createLogger } from '../../src/log.ts';
import { queueTmpDir } from '../../src/queue/queue-file.ts';

const TRY_AGAIN: [number, string] = [451, '4.3.0 Local error in processing, message not accepted, try again later'];
/** RFC 3463 4.3.1 "mail system full": what a full disk is answered with. */
const DISK_FULL: [number, string] = [452, '4.3.1 Insufficient system storage, try again later'];

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer(options);
  t.after(() => server.close());
  return server;
}

function send(client: SmtpClient, body: string): Promise<SmtpReply> {
  return transaction(client, {
    from: 'alice@example.org',
    to: ['jjordan@localhost'],
    data: `Subject: test\n\n${body}`,
  }).then((result) => result.final);
}

function brief(reply: SmtpReply): [number, string] {
  return [reply.code, reply.lines.join('\n')];
}

function bodies(messages: { content: Buffer }[]): string[] {
  return messages.map(({ content }) => content.toString().slice(content.indexOf('\n\n') + 2));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The real file I/O, except that once armed, the write that would pass
 * `limit` more bytes writes what fits (as a real full disk does) and then
 * fails with ENOSPC. It fails once, then disarms itself.
 */
function diskThatFills() {
  let limit = -1;
  let written = 0;
  let failures = 0;
  const io: AppendIO = {
    ...realAppendIO,
    async write(fd, data) {
      if (limit >= 0) {
        const room = limit - written;
        if (data.length > room) {
          if (room > 0) await realAppendIO.write(fd, data.subarray(0, room));
          limit = -1;
          failures++;
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        }
        written += data.length;
      }
      await realAppendIO.write(fd, data);
    },
  };
  return {
    io,
    /** Fail once `bytes` more have been written. */
    fillAfter(bytes: number) {
      limit = bytes;
      written = 0;
    },
    get failures() {
      return failures;
    },
  };
}

test('a full disk: 452 4.3.1, the mailbox byte-identical, then the next delivery works', async (t) => {
  const disk = diskThatFills();
  const server = await serverFor(t, { appendIO: disk.io });
  const client = server.track(await openSession(server.port));
  assert.equal((await send(client, 'first\n')).code, 250);
  const before = await readFile(server.mboxPath('jjordan'));

  // 200 KB, so several writes land before the one that fails.
  const big = `${'z'.repeat(999)}\n`.repeat(200);
  disk.fillAfter(100_000);
  assert.deepEqual(brief(await send(client, big)), DISK_FULL);
  assert.equal(disk.failures, 1, 'the simulated failure happened');
  assert.ok((await readFile(server.mboxPath('jjordan'))).equals(before), 'the mailbox was cut back to its old size');
  assert.equal(await readOrNull(server.mboxPath('jjordan') + '.lock'), null, 'the lock was released');
  assert.deepEqual(await server.tmpFiles(), []);
  assert.ok(server.logLines.some((line) => / deferred id=\w+ reason="ENOSPC: no space left on device, write" /.test(line)));

  // Same session, the disk has room again.
  assert.equal((await send(client, 'third\n')).code, 250);
  assert.deepEqual(bodies(await server.messages('jjordan')), ['first\n', 'third\n']);
});

test('a full disk on the first delivery into a new mailbox leaves it empty', async (t) => {
  const disk = diskThatFills();
  const server = await serverFor(t, { appendIO: disk.io });
  const client = server.track(await openSession(server.port));
  disk.fillAfter(10);
  assert.deepEqual(brief(await send(client, 'never stored\n')), DISK_FULL);
  const left = await readOrNull(server.mboxPath('jjordan'));
  assert.ok(left === null || left.length === 0, `mailbox holds ${left?.length} bytes`);
  assert.equal((await send(client, 'stored\n')).code, 250);
  assert.deepEqual(bodies(await server.messages('jjordan')), ['stored\n']);
});

test('a failing fsync: 451 4.3.0 and nothing kept, since 250 may only follow a good fsync', async (t) => {
  let failNextFsync = false;
  const io: AppendIO = {
    ...realAppendIO,
    async fsync(fd) {
      if (failNextFsync) {
        failNextFsync = false;
        throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
      }
      await realAppendIO.fsync(fd);
    },
  };
  const server = await serverFor(t, { appendIO: io });
  const client = server.track(await openSession(server.port));
  assert.equal((await send(client, 'first\n')).code, 250);
  const before = await readFile(server.mboxPath('jjordan'));
  failNextFsync = true;
  assert.deepEqual(brief(await send(client, 'lost in the cache\n')), TRY_AGAIN);
  assert.equal(failNextFsync, false, 'the simulated failure happened');
  assert.ok((await readFile(server.mboxPath('jjordan'))).equals(before));
  assert.equal((await send(client, 'third\n')).code, 250);
  assert.deepEqual(bodies(await server.messages('jjordan')), ['first\n', 'third\n']);
});

test('a mailbox dot-locked by another program: delivery waits, then succeeds once the lock goes', async (t) => {
  const server = await serverFor(t, { config: { limits: { lockTimeoutSeconds: 2 } } });
  const lock = server.mboxPath('jjordan') + '.lock';
  await writeFile(lock, `${process.pid}\n`); // a live PID: not stale, so it must be waited for
  const client = server.track(await openSession(server.port));
  let unlocked = false;
  const reply = send(client, 'waited for the lock\n').then((r) => ({ ...r, afterUnlock: unlocked }));
  const early = await Promise.race([reply, sleep(300).then(() => 'still waiting' as const)]);
  assert.equal(early, 'still waiting', 'no reply while the mailbox is locked');
  assert.deepEqual(await server.messages('jjordan'), []);
  unlocked = true; // before the unlink: the server may take the lock as soon as the file is gone
  await unlink(lock);
  const answered = await reply;
  assert.equal(answered.code, 250);
  assert.equal(answered.afterUnlock, true, 'the 250 came only once the lock was gone');
  assert.deepEqual(bodies(await server.messages('jjordan')), ['waited for the lock\n']);
  assert.equal(await readOrNull(lock), null, 'the server removed its own lock');
});

test('a lock held past lockTimeoutSeconds: 451 4.3.0, mailbox and lock untouched; a retry then succeeds', async (t) => {
  const server = await serverFor(t, { config: { limits: { lockTimeoutSeconds: 1 } } });
  const client = server.track(await openSession(server.port));
  assert.equal((await send(client, 'first\n')).code, 250);
  const before = await readFile(server.mboxPath('jjordan'));
  const lock = server.mboxPath('jjordan') + '.lock';
  await writeFile(lock, `${process.pid}\n`);

  const blocked = send(client, 'blocked\n');
  // It waits for the lock first (one in-process timer of 1 s against ours of 300 ms), then gives up.
  assert.equal(await Promise.race([blocked, sleep(300).then(() => 'still waiting' as const)]), 'still waiting');
  assert.deepEqual(brief(await blocked), TRY_AGAIN);
  assert.ok((await readFile(server.mboxPath('jjordan'))).equals(before));
  assert.equal(await readFile(lock, 'utf8'), `${process.pid}\n`, "another program's lock is not ours to remove");
  assert.ok(server.logLines.some((line) => / deferred id=\w+ reason="mailbox locked" /.test(line)));

  await unlink(lock);
  assert.equal((await send(client, 'retried\n')).code, 250);
  assert.deepEqual(bodies(await server.messages('jjordan')), ['first\n', 'retried\n']);
});

test('a stale lock (its PID is not running) is broken and delivery goes ahead', async (t) => {
  const server = await serverFor(t, { config: { limits: { lockTimeoutSeconds: 1 } } });
  // PIDs are below 2^22 on Linux; this one cannot be running. Written the
  // way this server writes locks, so the PID is known to be from this host.
  await writeFile(server.mboxPath('jjordan') + '.lock', lockFileContent(99999999));
  const client = server.track(await openSession(server.port));
  assert.equal((await send(client, 'through a stale lock\n')).code, 250);
  assert.deepEqual(bodies(await server.messages('jjordan')), ['through a stale lock\n']);
});

test('a body that cannot be spooled to a temporary file: 451 4.3.0 after the dot, nothing stored, the session goes on', async (t) => {
  const server = await serverFor(t, { config: { limits: { memoryBufferBytes: 8 * 1024 } } });
  const client = server.track(await openSession(server.port));
  // A file where the tmp directory should be: creating the temporary file fails, as on a full disk.
  await rm(server.tmpDir, { recursive: true, force: true });
  await writeFile(server.tmpDir, 'not a directory');
  assert.deepEqual(brief(await send(client, `${'s'.repeat(99)}\n`.repeat(200))), TRY_AGAIN);
  assert.ok(server.logLines.some((line) => / deferred reason=.* stored=nothing$/.test(line)));
  assert.equal(await readOrNull(server.mboxPath('jjordan')), null);

  // Same session: a small message (kept in memory) still goes through.
  assert.equal((await send(client, 'small\n')).code, 250);
  await rm(server.tmpDir);
  await mkdir(server.tmpDir);
  assert.equal((await send(client, `${'b'.repeat(99)}\n`.repeat(200))).code, 250);
  assert.deepEqual(await server.tmpFiles(), []);
});

async function startData(server: TestServer): Promise<SmtpClient> {
  const client = server.track(await openSession(server.port));
  assert.equal((await client.command('MAIL FROM:<alice@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  return client;
}

test('a client that vanishes mid-DATA (body in a temporary file): nothing stored, the file removed', async (t) => {
  const server = await serverFor(t, { config: { limits: { memoryBufferBytes: 8 * 1024 } } });
  const client = await startData(server);
  const wire = dotStuff(`Subject: half\n\n${'w'.repeat(99)}\n`.repeat(2000)); // 200 KB
  await client.sendRawAndFlush(wire.subarray(0, 100_000));
  await eventually(async () => (await server.tmpFiles()).length === 1, 'the body to reach a temporary file');
  client.destroy();
  await eventually(async () => (await server.tmpFiles()).length === 0, 'the temporary file to be removed');
  await eventually(() => server.logLines.some((line) => / aborted reason="client closed during DATA" stored=nothing$/.test(line)), 'the abort to be logged');
  assert.equal(await readOrNull(server.mboxPath('jjordan')), null);
});

test('a client that vanishes mid-DATA (small body in memory): nothing stored', async (t) => {
  const server = await serverFor(t);
  const client = await startData(server);
  await client.sendRawAndFlush('Subject: half\r\n\r\nno end in sight\r\n');
  await sleep(50);
  client.destroy();
  await eventually(() => server.logLines.some((line) => / aborted /.test(line)), 'the abort to be logged');
  assert.equal(await readOrNull(server.mboxPath('jjordan')), null);
  assert.deepEqual(await server.tmpFiles(), []);

  // The server is fine: the next client delivers.
  const next = server.track(await openSession(server.port));
  assert.equal((await send(next, 'next\n')).code, 250);
});

test('a client that goes silent mid-DATA is timed out with 421 4.4.2; nothing stored', async (t) => {
  const server = await serverFor(t, { config: { limits: { idleTimeoutSeconds: 1 } } });
  const client = await startData(server);
  await client.sendRawAndFlush('Subject: slow\r\n\r\nand then nothing\r\n');
  const reply = await client.readReply(4000);
  assert.deepEqual(brief(reply), [421, '4.4.2 localhost Timeout during DATA, closing connection']);
  await client.waitClosed();
  assert.equal(await readOrNull(server.mboxPath('jjordan')), null);
  assert.deepEqual(await server.tmpFiles(), []);
});

test('leftover temporary files from a crash are removed at start-up', async (t) => {
  const first = await startTestServer();
  await first.stop();
  await writeFile(`${first.tmpDir}/body-crashed`, 'half a message');
  // A queue file prepared but never committed (queue-file.ts): it was never acknowledged.
  const queueTmp = queueTmpDir(first.config.dataDir);
  await mkdir(queueTmp, { recursive: true });
  await writeFile(`${queueTmp}/Abc123.msg`, 'jjordan-queue 1\n');
  t.after(() => first.close());
  // A second server on the same spool, as after a restart.
  const again = await startServer({ ...first.config }, createLogger({ quiet: true }));
  await again.close();
  assert.deepEqual(await first.tmpFiles(), []);
  assert.deepEqual(await readdir(queueTmp), []);
});

test('the memory for messages in flight has a global cap: past it, bodies go to temporary files', async (t) => {
  // Each body alone would stay in memory (2 MiB per message), but together they would not fit in 1 MiB.
  const server = await serverFor(t, { config: { limits: { memoryBufferBytes: 2 * 1024 * 1024, memoryBufferTotalBytes: 1024 * 1024 } } });
  const chunk = `Subject: big\r\n\r\n${`${'m'.repeat(99)}\r\n`.repeat(7000)}`; // 700 KB, without the final dot
  const clients = [];
  for (let i = 0; i < 4; i++) {
    const client = server.track(await openSession(server.port));
    assert.equal((await client.command('MAIL FROM:<a@example.net>')).code, 250);
    assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    await client.sendRawAndFlush(chunk);
    clients.push(client);
  }
  await eventually(async () => (await server.tmpFiles()).length >= 3, 'three of the four bodies spilled to temporary files');
  // They are still whole messages: finish them all.
  for (const client of clients) client.sendRaw('.\r\n');
  for (const client of clients) assert.equal((await client.readReply()).code, 250);
  assert.equal((await server.messages('jjordan')).length, 4);
  await eventually(async () => (await server.tmpFiles()).length === 0, 'the temporary files are removed');
});
