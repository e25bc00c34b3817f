// The maildrop over a session's life (RFC 1939 6, 8): one session at a time
// ([IN-USE], RFC 2449 8.1.1); a snapshot taken at login that mail arriving
// later does not enter; DELE carried out only by QUIT (UPDATE state), never
// by a dropped connection, an idle timeout or a shutdown; UIDLs that stay the
// same across sessions, deliveries, expunges and restarts; and the expunge
// racing with deliveries to the same mbox, which must neither lose nor
// duplicate a message.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, renameSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startServer } from '../../src/main.ts';
import { createLogger } from '../../src/log.ts';
import { Maildrop } from '../../src/pop3/maildrop.ts';
import { withMailboxLock } from '../../src/store/dotlock.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { indexPathFor } from '../../src/store/mbox-index.ts';
import { startTestServer, eventually } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { openSession, sendMail } from '../helpers/smtp-client.ts';
import { openPop3 } from '../helpers/pop3-client.ts';
import type { Pop3Client, Pop3Response } from '../helpers/pop3-client.ts';
import { mountTmpfs, tmpfsUnavailable, unmountTmpfs } from '../helpers/tmpfs.ts';
import { withoutStamps } from '../store/helpers.ts';

async function serverFor(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    trace: true,
    ...options,
    config: { ...options.config, auth: { allowPlaintextOnLoopback: true } },
  });
  t.after(() => server.close());
  return server;
}

async function deliver(server: TestServer, subject: string, to = 'jjordan@localhost'): Promise<void> {
  const data = `Subject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '-')}@example.org>\r\n\r\nBody of ${subject}.\r\nFrom the desk of ${subject}\r\n.\r\n`;
  const result = await sendMail(server.port, { from: 'sender@example.org', to: [to], data });
  assert.equal(result.final.code, 250, `delivery of ${subject}: ${result.final.lines.join(' ')}`);
}

async function deliverNumbered(server: TestServer, count: number, prefix = 'message'): Promise<string[]> {
  const subjects: string[] = [];
  for (let i = 1; i <= count; i++) {
    subjects.push(`${prefix} ${i}`);
    await deliver(server, `${prefix} ${i}`);
  }
  return subjects;
}

async function tryLogin(port: number, user = 'jjordan', password = 'secret'): Promise<{ client: Pop3Client; reply: Pop3Response }> {
  const client = await openPop3(port);
  return { client, reply: await client.userPass(user, password) };
}

async function login(server: TestServer, user = 'jjordan', password = 'secret', port = server.server.pop3.ports.pop3): Promise<Pop3Client> {
  const { client, reply } = await tryLogin(port, user, password);
  server.track(client);
  assert.ok(reply.ok, `login: -ERR ${reply.text}`);
  return client;
}

/** Log in as soon as the last session has let go of the maildrop (it ends after its socket closes). */
async function loginWhenFree(server: TestServer, port = server.server.pop3.ports.pop3): Promise<Pop3Client> {
  let client: Pop3Client | null = null;
  await eventually(async () => {
    const attempt = await tryLogin(port);
    server.track(attempt.client);
    if (attempt.reply.ok) client = attempt.client;
    else {
      assert.match(attempt.reply.text, /^\[IN-USE\] /);
      attempt.client.destroy();
    }
    return attempt.reply.ok;
  }, 'the maildrop to be free');
  return client!;
}

function subjectOf(message: Buffer): string {
  return /\nSubject: (.*)\n/.exec(message.toString('utf8'))?.[1] ?? '(none)';
}

/** Subjects in the mbox, in file order. */
async function storedSubjects(server: TestServer, account = 'jjordan'): Promise<string[]> {
  return (await server.messages(account)).map((m) => subjectOf(m.content));
}

/** Subject of each message a POP3 session shows, in order, read with RETR. */
async function sessionSubjects(client: Pop3Client): Promise<string[]> {
  const { count } = await client.stat();
  const subjects: string[] = [];
  for (let n = 1; n <= count; n++) subjects.push(subjectOf(Buffer.from((await client.retr(n)).bytes.toString().replaceAll('\r\n', '\n'))));
  return subjects;
}

function crlf(lf: Buffer): Buffer {
  return Buffer.from(lf.toString('latin1').replaceAll('\n', '\r\n'), 'latin1');
}

test('a second login to the same maildrop gets -ERR [IN-USE]; once the first QUITs, a new login works', async (t) => {
  const server = await serverFor(t, {
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
  });
  await deliverNumbered(server, 2);
  const first = await login(server);

  const second = await tryLogin(server.server.pop3.ports.pop3);
  server.track(second.client);
  assert.deepEqual(second.reply, { ok: false, text: '[IN-USE] Mailbox is already open in another session' });
  assert.equal((await second.client.command('STAT')).ok, false, 'the refused session is not logged in');
  const viaAuth = await second.client.command(`AUTH PLAIN ${Buffer.from('\0jjordan\0secret').toString('base64')}`);
  assert.match(viaAuth.text, /^\[IN-USE\] /, 'AUTH too');
  assert.equal((await first.stat()).count, 2, 'the refusal did not take the lock from the first session');

  // Another account is not affected.
  const ana = await login(server, 'ana', 'ana-pw');
  assert.deepEqual(await ana.stat(), { count: 0, octets: 0 });

  // The refused ones try again, under any spelling of the name: still in use until the first session ends.
  assert.match((await second.client.userPass('JJordan@LOCALHOST', 'secret')).text, /^\[IN-USE\] /);
  assert.equal((await first.quit()).ok, true);
  const retry = await second.client.userPass('jjordan', 'secret');
  assert.equal(retry.ok, true, `after QUIT: ${retry.text}`);
  assert.equal((await second.client.stat()).count, 2);
  assert.ok(server.logLines.some((l) => /refused reason=maildrop-in-use account=jjordan/.test(l)));
});

test('an account no mail has reached yet (no directory): log in, QUIT, log in again, then its first message', async (t) => {
  const server = await serverFor(t, { accounts: [{ name: 'jjordan', password: 'secret' }, { name: 'ana', password: 'ana-pw' }] });
  await rm(dirname(server.mboxPath('ana')), { recursive: true }); // as when passwd was written by hand
  for (let round = 0; round < 2; round++) {
    const ana = await login(server, 'ana', 'ana-pw');
    assert.deepEqual(await ana.stat(), { count: 0, octets: 0 }, `round ${round}`);
    assert.equal((await ana.quit()).ok, true);
  }
  assert.equal(existsSync(dirname(server.mboxPath('ana'))), false, 'reading made nothing');
  await deliver(server, 'the first', 'ana@localhost');
  const ana = await login(server, 'ana', 'ana-pw');
  assert.equal((await ana.stat()).count, 1);
});

test('a session dropped without QUIT releases the maildrop too', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 1);
  const first = await login(server);
  assert.equal((await first.command('DELE 1')).ok, true);
  first.destroy();
  const next = await loginWhenFree(server);
  assert.equal((await next.stat()).count, 1);
});

test('the maildrop is a snapshot: mail delivered after login is not seen, not counted and not touched by the expunge', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = await login(server);
  const stat = await client.stat();
  const list = (await client.multiline('LIST')).lines;
  const uidl = await client.uidl();

  await deliver(server, 'late arrival');
  const [, , , late] = await server.messages('jjordan');
  assert.equal(subjectOf(late.content), 'late arrival');
  const mboxBefore = await readFile(server.mboxPath('jjordan'));
  const lateRaw = mboxBefore.subarray(late.entry.offset, late.entry.offset + late.entry.length);

  assert.deepEqual(await client.stat(), stat, 'STAT unchanged');
  assert.deepEqual((await client.multiline('LIST')).lines, list, 'LIST unchanged');
  assert.deepEqual(await client.uidl(), uidl, 'UIDL unchanged');
  for (const command of ['RETR 4', 'LIST 4', 'UIDL 4', 'TOP 4 0', 'DELE 4']) {
    assert.equal((await client.command(command)).ok, false, command);
  }

  // DELE two of the three it knows, then QUIT: the late one stays, byte for byte.
  assert.equal((await client.command('DELE 1')).ok, true);
  assert.equal((await client.command('DELE 3')).ok, true);
  const quit = await client.quit();
  assert.deepEqual(quit, { ok: true, text: 'Bye, 2 messages deleted' });

  const after = await server.messages('jjordan');
  assert.deepEqual(after.map((m) => subjectOf(m.content)), ['message 2', 'late arrival']);
  assert.deepEqual(after[1].content, late.content);
  const mboxAfter = await readFile(server.mboxPath('jjordan'));
  assert.deepEqual(mboxAfter.subarray(after[1].entry.offset, after[1].entry.offset + after[1].entry.length), lateRaw, 'the raw mbox bytes, From line included');

  const next = await login(server);
  assert.equal((await next.stat()).count, 2);
  assert.deepEqual((await next.retr(2)).bytes, crlf(late.content));
  const ids = await next.uidl();
  assert.equal(ids.get(1), uidl.get(2), 'message 2 kept its UIDL');
  assert.ok(![...uidl.values()].includes(ids.get(2)!), 'the late one has a UIDL of its own');
});

test('DELE then QUIT removes exactly those messages; the rest keep their bytes and UIDLs', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 5);
  const before = await server.messages('jjordan');
  const client = await login(server);
  const uidl = await client.uidl();
  for (const n of [2, 4]) assert.equal((await client.command(`DELE ${n}`)).ok, true);
  assert.deepEqual(await client.quit(), { ok: true, text: 'Bye, 2 messages deleted' });

  const after = await server.messages('jjordan');
  assert.deepEqual(after.map((m) => m.content), [before[0].content, before[2].content, before[4].content]);
  const next = await login(server);
  assert.deepEqual([...(await next.uidl()).values()], [uidl.get(1), uidl.get(3), uidl.get(5)]);
  assert.deepEqual(await sessionSubjects(next), ['message 1', 'message 3', 'message 5']);
  const sizes = (await next.multiline('LIST')).lines;
  assert.deepEqual(sizes, after.map((m, i) => `${i + 1} ${crlf(m.content).length}`));
  // No temporary file or lock file left behind; a delivery goes straight in.
  assert.deepEqual(withoutStamps(await readdir(dirname(server.mboxPath('jjordan')))).sort(), ['.INBOX.append', '.INBOX.index', 'INBOX']);
  await deliver(server, 'after the expunge');
  assert.deepEqual(await storedSubjects(server), ['message 1', 'message 3', 'message 5', 'after the expunge']);
});

test('deleting every message leaves an empty maildrop; the next message gets a new UIDL', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const client = await login(server);
  const old = [...(await client.uidl()).values()];
  for (const n of [3, 1, 2]) assert.equal((await client.command(`DELE ${n}`)).ok, true);
  assert.deepEqual(await client.stat(), { count: 0, octets: 0 });
  assert.deepEqual((await client.multiline('LIST')).lines, []);
  assert.deepEqual(await client.quit(), { ok: true, text: 'Bye, 3 messages deleted' });
  assert.deepEqual(await server.messages('jjordan'), []);

  const empty = await login(server);
  assert.deepEqual(await empty.stat(), { count: 0, octets: 0 });
  await empty.quit();
  await deliver(server, 'fresh');
  const next = await login(server);
  const [id] = [...(await next.uidl()).values()];
  assert.ok(!old.includes(id), `the UIDL ${id} was not used before`);
  assert.deepEqual(await sessionSubjects(next), ['fresh']);
});

test('when the expunge cannot lock the mbox, QUIT says -ERR [SYS/TEMP] and every message stays', async (t) => {
  const server = await serverFor(t, { config: { limits: { lockTimeoutSeconds: 0.3 } } });
  await deliverNumbered(server, 3);
  const mbox = server.mboxPath('jjordan');
  const mboxBefore = await readFile(mbox);
  const client = await login(server);
  const uidl = await client.uidl();
  assert.equal((await client.command('DELE 2')).ok, true);
  // Another program (mutt, procmail) holds the dot-lock, and is alive.
  await writeFile(`${mbox}.lock`, `${process.pid}\n`);
  try {
    const quit = await client.command('QUIT');
    assert.equal(quit.ok, false, 'RFC 1939 6: -ERR when the deletions could not be made');
    assert.match(quit.text, /^\[SYS\/TEMP\] /);
    await client.waitClosed();
    // While it is locked, a login cannot take its snapshot either: a temporary error.
    const locked = await tryLogin(server.server.pop3.ports.pop3);
    server.track(locked.client);
    assert.equal(locked.reply.ok, false);
    assert.match(locked.reply.text, /^\[SYS\/TEMP\] /);
  } finally {
    await rm(`${mbox}.lock`);
  }
  assert.deepEqual(await readFile(mbox), mboxBefore, 'nothing removed');
  const next = await loginWhenFree(server);
  assert.deepEqual(await next.uidl(), uidl);
  assert.equal((await next.command('DELE 2')).ok, true);
  assert.deepEqual(await next.quit(), { ok: true, text: 'Bye, 1 messages deleted' });
  assert.deepEqual(await storedSubjects(server), ['message 1', 'message 3']);
});

test('DELE then a dropped connection (no QUIT) removes nothing', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const mboxBefore = await readFile(server.mboxPath('jjordan'));
  const client = await login(server);
  const uidl = await client.uidl();
  for (const n of [1, 2, 3]) assert.equal((await client.command(`DELE ${n}`)).ok, true);
  client.destroy(); // as a crashing client or a broken network would

  const next = await loginWhenFree(server);
  assert.equal((await next.stat()).count, 3);
  assert.deepEqual(await next.uidl(), uidl);
  assert.deepEqual(await readFile(server.mboxPath('jjordan')), mboxBefore, 'the mbox is untouched');
  assert.ok(server.logLines.some((l) => /pop3\[\w+\] disconnect during=transaction expunged=0/.test(l)));
});

test('an idle session is closed with -ERR and removes nothing', async (t) => {
  const server = await serverFor(t, { config: { limits: { pop3IdleTimeoutSeconds: 1 } } });
  await deliverNumbered(server, 2);
  const mboxBefore = await readFile(server.mboxPath('jjordan'));
  const anonymous = server.track(await openPop3(server.server.pop3.ports.pop3)); // before login too
  const client = await login(server);
  assert.equal((await client.command('DELE 1')).ok, true);
  // Not at once (the server's timer of 1 s against ours of 300 ms, in this process), then -ERR.
  const replying = client.readResponse(3000);
  assert.equal(await Promise.race([replying, new Promise((resolve) => setTimeout(resolve, 300, 'still waiting'))]), 'still waiting', 'not before the timeout');
  const reply = await replying;
  assert.deepEqual(reply, { ok: false, text: 'Idle for too long, closing' });
  await client.waitClosed(1000);
  assert.deepEqual(await anonymous.readResponse(100), { ok: false, text: 'Idle for too long, closing' });
  await anonymous.waitClosed(1000);

  const next = await loginWhenFree(server);
  assert.equal((await next.stat()).count, 2);
  assert.deepEqual(await readFile(server.mboxPath('jjordan')), mboxBefore);
});

test('UIDLs stay the same across sessions, new deliveries, a server restart and a shutdown in mid-session', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 3);
  const first = await login(server);
  const ids = await first.uidl();
  assert.equal((await first.quit()).ok, true);

  const second = await login(server);
  assert.deepEqual(await second.uidl(), ids, 'a new session');
  assert.equal((await second.quit()).ok, true);

  await deliver(server, 'message 4');
  const third = await login(server);
  const withNew = await third.uidl();
  assert.deepEqual([...withNew.entries()].slice(0, 3), [...ids.entries()], 'after a delivery');
  assert.ok(![...ids.values()].includes(withNew.get(4)!));
  // Mark two, then the server shuts down under the session: nothing is removed.
  assert.equal((await third.command('DELE 1')).ok, true);
  assert.equal((await third.command('DELE 4')).ok, true);
  const mboxBefore = await readFile(server.mboxPath('jjordan'));
  await server.stop();
  assert.deepEqual(await third.readResponse(), { ok: false, text: 'Server shutting down' });
  await third.waitClosed();
  assert.deepEqual(await readFile(server.mboxPath('jjordan')), mboxBefore, 'a shutdown is not a QUIT');

  // A new server process on the same data directory.
  const restarted = await startServer(server.config, createLogger({ quiet: true }));
  try {
    const port = restarted.pop3.ports.pop3;
    const fourth = await login(server, 'jjordan', 'secret', port);
    assert.deepEqual(await fourth.uidl(), withNew, 'after a restart');
    assert.deepEqual(await sessionSubjects(fourth), ['message 1', 'message 2', 'message 3', 'message 4']);
    assert.equal((await fourth.command('DELE 2')).ok, true);
    assert.equal((await fourth.quit()).ok, true);
    const fifth = await login(server, 'jjordan', 'secret', port);
    assert.deepEqual([...(await fifth.uidl()).values()], [withNew.get(1), withNew.get(3), withNew.get(4)], 'after an expunge');
    await fifth.quit();
  } finally {
    await restarted.close();
  }
});

test('a lost side index never makes a shown UIDL name a different message', async (t) => {
  const server = await serverFor(t);
  await deliverNumbered(server, 4);
  // UIDVALIDITY is a time in seconds: start at the top of a second, so that what follows fits in it.
  await new Promise((resolve) => setTimeout(resolve, 1005 - (Date.now() % 1000)));
  const first = await login(server);
  const seen = new Map<string, string>(); // UIDL -> subject, for every id ever shown
  const ids = await first.uidl();
  const subjects = await sessionSubjects(first);
  for (const [n, id] of ids) seen.set(id, subjects[n - 1]);
  assert.equal((await first.command('DELE 2')).ok, true);
  assert.equal((await first.quit()).ok, true);

  await rm(indexPathFor(server.mboxPath('jjordan')));
  const second = await login(server);
  const rebuilt = await second.uidl();
  const now = await sessionSubjects(second);
  assert.deepEqual(now, ['message 1', 'message 3', 'message 4']);
  for (const [n, id] of rebuilt) {
    const before = seen.get(id);
    assert.ok(before === undefined || before === now[n - 1], `UIDL ${id} named "${before}" and now names "${now[n - 1]}"`);
  }
});

test('an expunge racing with deliveries to the same mbox loses and duplicates nothing', async (t) => {
  const server = await serverFor(t, { trace: false, config: { limits: { maxConnectionsPerIp: 64, maxConnections: 128 } } });
  // A large message that is never deleted makes each rewrite of the file take a while.
  const big = await sendMail(server.port, {
    from: 'sender@example.org',
    to: ['jjordan@localhost'],
    data: `Subject: big\r\n\r\n${`${'b'.repeat(98)}\r\n`.repeat(40_000)}`,
  });
  assert.equal(big.final.code, 250);
  let expected = ['big', ...(await deliverNumbered(server, 6))];
  const everSeenIds = new Set<string>();
  for (let round = 1; round <= 3; round++) {
    const stored = new Map((await server.messages('jjordan')).map((m) => [subjectOf(m.content), m.content]));
    const client = await login(server);
    const ids = await client.uidl();
    for (const id of ids.values()) everSeenIds.add(id);
    assert.equal(ids.size, expected.length);
    // Delete every other message (not the big one).
    const numbers = expected.map((_, i) => i + 1).filter((n) => n % 2 === 1 && expected[n - 1] !== 'big');
    for (const n of numbers) assert.equal((await client.command(`DELE ${n}`)).ok, true);
    const deleted = numbers.map((n) => expected[n - 1]);
    const keptIds = [...ids.entries()].filter(([n]) => !numbers.includes(n)).map(([, id]) => id);

    // 20 SMTP clients to the same mailbox, each with its message sent but for the final dot.
    const arriving = Array.from({ length: 20 }, (_, i) => `race ${round}-${i}`);
    const senders = await Promise.all(
      arriving.map(async (subject) => {
        const smtp = server.track(await openSession(server.port));
        assert.equal((await smtp.command('MAIL FROM:<sender@example.org>')).code, 250);
        assert.equal((await smtp.command('RCPT TO:<jjordan@localhost>')).code, 250);
        assert.equal((await smtp.command('DATA')).code, 354);
        smtp.sendRaw(`Subject: ${subject}\r\n\r\nBody of ${subject}.\r\nFrom the desk of ${subject}\r\n..\r\n`);
        return smtp;
      }),
    );
    // The final dots go out one every 2 ms, the QUIT in the middle of them, so
    // that appends land before, during and after the rewrite of the file.
    const pause = () => new Promise((resolve) => setTimeout(resolve, 2));
    for (const smtp of senders.slice(0, 10)) {
      smtp.sendRaw('.\r\n');
      await pause();
    }
    const quitStarted = Date.now();
    client.send('QUIT');
    const quitting = client.readResponse().then((reply) => ({ reply, ms: Date.now() - quitStarted }));
    for (const smtp of senders.slice(10)) {
      smtp.sendRaw('.\r\n');
      await pause();
    }
    const replies = await Promise.all(senders.map((smtp) => smtp.readReply()));
    const { reply: quit, ms } = await quitting;
    t.diagnostic(`round ${round}: QUIT took ${ms} ms`);
    assert.deepEqual(replies.map((r) => r.code), replies.map(() => 250), 'every delivery accepted');
    assert.deepEqual(quit, { ok: true, text: `Bye, ${deleted.length} messages deleted` });
    await client.waitClosed();
    await Promise.all(senders.map((smtp) => smtp.close()));

    expected = expected.filter((s) => !deleted.includes(s));
    const survivors = [...expected];
    expected.push(...arriving);
    const after = await server.messages('jjordan');
    const afterSubjects = after.map((m) => subjectOf(m.content));
    assert.deepEqual([...afterSubjects].sort(), [...expected].sort(), `round ${round}: every message exactly once, the deleted ones gone`);
    for (const m of after) {
      const subject = subjectOf(m.content);
      if (stored.has(subject)) assert.ok(m.content.equals(stored.get(subject)!), `round ${round}: ${subject} unchanged`);
      else assert.match(m.content.toString(), new RegExp(`\\n\\nBody of ${subject}\\.\\nFrom the desk of ${subject}\\n\\.\\n$`));
    }

    // The index agrees with the file: a new session reads every message where it is.
    const check = await login(server);
    const checkIds = await check.uidl();
    assert.equal(new Set(checkIds.values()).size, expected.length, 'UIDLs unique');
    const inSession = await sessionSubjects(check);
    assert.deepEqual(inSession, afterSubjects, `round ${round}: POP3 shows what the mbox holds, in order`);
    for (let n = 1; n <= after.length; n++) {
      assert.ok((await check.retr(n)).bytes.equals(crlf(after[n - 1].content)), `round ${round}: RETR ${n}`);
    }
    for (const id of keptIds) assert.ok([...checkIds.values()].includes(id), `round ${round}: a survivor kept UIDL ${id}`);
    for (const [n, id] of checkIds) {
      const subject = inSession[n - 1];
      if (!survivors.includes(subject)) assert.ok(!everSeenIds.has(id), `round ${round}: new message ${subject} has a fresh UIDL`);
    }
    expected = inSession;
    assert.equal((await check.quit()).ok, true);
  }
});

test('the mbox is opened under the lock that read the index: a rewrite right after login does not move what the session reads', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'jjordan-maildrop-'));
  try {
    const mbox = join(dataDir, 'mail', 'jjordan', 'INBOX');
    const appender = new MboxAppender();
    const texts = [1, 2, 3].map((i) => `Subject: message ${i}\nMessage-ID: <m${i}@example.org>\n\nBody ${i}.\n`);
    for (const text of texts) await appender.append(mbox, { envelopeFrom: 'a@example.org', date: new Date(), content: async function* () { yield Buffer.from(text); } });
    // Another program (mutt deleting message 1) waits for the dot-lock and,
    // the moment it gets it, renames a rewritten file over the mbox.
    const file = await readFile(mbox);
    const rewritten = join(dirname(mbox), 'rewritten');
    await writeFile(rewritten, file.subarray(file.indexOf('\n\nFrom ') + 2));
    const opening = Maildrop.open(dataDir, 'jjordan', 2000);
    while (!existsSync(`${mbox}.lock`)) await new Promise((resolve) => setImmediate(resolve)); // the login holds the lock
    const rewriting = withMailboxLock(mbox, async () => renameSync(rewritten, mbox));
    const drop = await opening;
    await rewriting;
    try {
      const read = [];
      for (const m of drop.messages) {
        const chunks: Buffer[] = [];
        for await (const chunk of drop.read(m)) chunks.push(chunk);
        read.push(Buffer.concat(chunks).toString());
      }
      // The rename waited for the login's lock; the session then saw either
      // the old file (3 messages) or the new one (2), and reads exactly that.
      assert.deepEqual(read, texts.slice(texts.length - drop.messages.length), 'the session reads the file its index describes');
      assert.ok(drop.messages.length >= 2);
    } finally {
      await drop.release();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a full disk does not stop a login or RETR (the index is kept in memory)', { skip: tmpfsUnavailable() }, async (t) => {
  const server = await serverFor(t);
  const accountDir = dirname(server.mboxPath('jjordan'));
  await mkdir(accountDir, { recursive: true });
  assert.equal(mountTmpfs(accountDir, '1m'), null, 'mount');
  try {
    await deliverNumbered(server, 2);
    const first = await login(server);
    const uidl = await first.uidl();
    assert.equal((await first.quit()).ok, true);
    await deliver(server, 'message 3'); // not in the index file yet
    // Fill the disk.
    const filler = await open(join(accountDir, 'filler'), 'w');
    try {
      for (;;) await filler.write(Buffer.alloc(64 * 1024, 0x41));
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      await filler.close();
    }
    const client = await loginWhenFree(server);
    assert.equal((await client.stat()).count, 3);
    const ids = await client.uidl();
    assert.deepEqual([ids.get(1), ids.get(2)], [uidl.get(1), uidl.get(2)]);
    assert.deepEqual(await sessionSubjects(client), ['message 1', 'message 2', 'message 3']);
    // Removing needs room for a copy: refused, and every message stays.
    assert.equal((await client.command('DELE 1')).ok, true);
    const quit = await client.quit();
    assert.deepEqual(quit, { ok: false, text: '[SYS/TEMP] not enough disk space to remove messages' });
    assert.deepEqual(await storedSubjects(server), ['message 1', 'message 2', 'message 3']);
    await rm(join(accountDir, 'filler'));
    const after = await loginWhenFree(server);
    assert.deepEqual(await after.uidl(), ids, 'the UIDLs shown on the full disk were kept');
    assert.equal((await after.quit()).ok, true);
  } finally {
    await server.stop();
    unmountTmpfs(accountDir);
  }
});
