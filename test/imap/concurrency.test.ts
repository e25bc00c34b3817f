// Several clients at once on one INBOX: IDLE hears of a delivery, of
// another session's expunge and flags; EXPUNGE responses come only when
// RFC 3501 7.4.1 allows; \Recent goes to one session; and SMTP, POP3 and
// IMAP working on one INBOX at the same time lose and corrupt nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imapServer, loggedIn, deliver, uidsAndSubjects } from './helpers.ts';
import { openPop3 } from '../helpers/pop3-client.ts';
import { scanMbox } from '../helpers/mbox-read.ts';

/** Read lines until one matches, within `ms`. */
async function waitForLine(client: { readLine(ms?: number): Promise<string | null> }, pattern: RegExp, ms = 3000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = await client.readLine(Math.max(1, deadline - Date.now()));
    if (line === null) throw new Error('connection closed');
    if (pattern.test(line)) return line;
  }
}

test('IDLE: a delivery shows as EXISTS at once, another session\'s flags and expunge as FETCH and EXPUNGE; DONE ends it', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'first');
  await deliver(server, 'second');
  const idler = await loggedIn(server);
  const other = await loggedIn(server);
  idler.sendRaw('i1 IDLE\r\n');
  assert.equal(await idler.readLine(), '+ idling');
  await deliver(server, 'third');
  assert.equal(await waitForLine(idler, /EXISTS$/), '* 3 EXISTS', 'told while idling, with no command from the client');
  await other.command('STORE 1 +FLAGS (\\Flagged)');
  assert.equal(await waitForLine(idler, /FETCH/), '* 1 FETCH (FLAGS (\\Flagged \\Recent))');
  await other.command('STORE 2 +FLAGS (\\Deleted)');
  await other.command('EXPUNGE');
  assert.equal(await waitForLine(idler, /EXPUNGE$/), '* 2 EXPUNGE');
  idler.sendRaw('DONE\r\n');
  assert.equal((await idler.readTagged('i1')).status, 'OK');
  assert.deepEqual((await uidsAndSubjects(idler)).map(([, s]) => s), ['first', 'third']);
});

test('EXPUNGE responses wait for a moment RFC 3501 7.4.1 allows: not during FETCH, STORE or SEARCH; at NOOP', async (t) => {
  const server = await imapServer(t);
  for (const subject of ['a', 'b', 'c']) await deliver(server, subject);
  const watcher = await loggedIn(server);
  const other = await loggedIn(server);
  await other.command('STORE 1 +FLAGS (\\Deleted)');
  await other.command('EXPUNGE');
  await deliver(server, 'd');
  const fetch = await watcher.command('FETCH 1:* (FLAGS)');
  assert.ok(!fetch.untagged.some((line) => /EXPUNGE/.test(line)), 'no EXPUNGE during FETCH');
  assert.ok(fetch.untagged.includes('4 EXISTS'), 'new mail may be told at once');
  assert.equal(fetch.status, 'NO', 'message 1 is gone: FETCH says so');
  assert.match(fetch.text, /EXPUNGEISSUED/);
  const search = await watcher.command('SEARCH ALL');
  assert.equal(search.untagged[0], 'SEARCH 2 3 4', 'message 1 still counts in the numbering, but matches nothing');
  const noop = await watcher.command('NOOP');
  assert.deepEqual(noop.untagged, ['1 EXPUNGE']);
  assert.equal((await watcher.command('SEARCH ALL')).untagged[0], 'SEARCH 1 2 3');
});

test('\\Recent goes to exactly one session', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'new');
  const first = await loggedIn(server);
  const second = await loggedIn(server);
  assert.match((await first.command('FETCH 1 FLAGS')).untagged[0], /\\Recent/);
  assert.doesNotMatch((await second.command('FETCH 1 FLAGS')).untagged[0], /\\Recent/);
  await deliver(server, 'newer');
  const [a, b] = [await first.command('NOOP'), await second.command('NOOP')];
  const recentCounts = [a, b].map((reply) => Number(/^(\d+) RECENT$/.exec(reply.untagged.find((l) => /RECENT$/.test(l)) ?? '0 RECENT')![1]));
  assert.equal(recentCounts.filter((count) => count > 0).length, 1, `one session got it: ${JSON.stringify(recentCounts)}`);
});

test('a POP3 client that RETRs a message an IMAP client expunged gets -ERR, never other bytes', async (t) => {
  const server = await imapServer(t);
  await deliver(server, 'one');
  await deliver(server, 'two');
  const pop = server.track(await openPop3(server.server.pop3.ports.pop3));
  assert.ok((await pop.userPass('jjordan', 'secret')).ok);
  const imap = await loggedIn(server);
  await imap.command('STORE 1 +FLAGS (\\Deleted)');
  await imap.command('EXPUNGE');
  const retr = await pop.command('RETR 1');
  assert.equal(retr.ok, false, retr.text);
  const two = await pop.retr(2);
  assert.ok(two.ok);
  assert.match(two.bytes.toString(), /Subject: two/);
});

test('SMTP deliveries, IMAP flags and expunges and POP3 deletions on one INBOX at once: nothing lost, nothing torn', async (t) => {
  const server = await imapServer(t, { config: { limits: { maxConnectionsPerIp: 50 } } });
  for (let i = 0; i < 10; i++) await deliver(server, `old ${i}`);
  const imap = await loggedIn(server);
  const deliveries = Array.from({ length: 30 }, (_, i) => deliver(server, `new ${i}`));
  const imapWork = (async () => {
    for (let round = 0; round < 5; round++) {
      await imap.command(`UID STORE ${round + 1} +FLAGS (\\Deleted \\Seen)`);
      await imap.command('UID EXPUNGE ' + (round + 1));
      await imap.command('NOOP');
    }
  })();
  const popWork = (async () => {
    const pop = server.track(await openPop3(server.server.pop3.ports.pop3));
    assert.ok((await pop.userPass('jjordan', 'secret')).ok);
    // The last two of the old messages, by UIDL (the snapshot POP3 took at login).
    const ids = await pop.uidl();
    for (const n of [9, 10]) if (ids.has(n)) await pop.command(`DELE ${n}`);
    await pop.quit();
  })();
  await Promise.all([...deliveries, imapWork, popWork]);
  const subjects = (await uidsAndSubjects(await loggedIn(server))).map(([, s]) => s);
  const expected = [...Array.from({ length: 10 }, (_, i) => `old ${i}`).slice(5, 8), ...Array.from({ length: 30 }, (_, i) => `new ${i}`)];
  assert.deepEqual([...subjects].sort(), [...expected].sort());
  // The file itself is whole: read by the tests' own independent reader, each message once.
  const found = (await server.messages('jjordan')).map((m) => /Subject: ([^\n]*)/.exec(m.content.toString())![1]);
  assert.deepEqual(found.sort(), [...expected].sort());
  let count = 0;
  for await (const _entry of scanMbox(server.mboxPath('jjordan'))) count++;
  assert.equal(count, expected.length);
});
