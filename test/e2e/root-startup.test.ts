// What a server started by root does (privileges.ts): bind, give up root,
// and only then read what clients send; the data directory must belong to
// the `mail` user and is never chowned as a tree. These tests start the real
// programs as root, so they only run as root (CI runs the tests as root).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { lchown, lstat, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sendMail } from '../helpers/smtp-client.ts';
import type { MailResult } from '../helpers/smtp-client.ts';
import { connectPop3 } from '../helpers/pop3-client.ts';
import { MAIN, RELAY, addUser, freePort, isRoot, mailIds, privateCheckout, processIds, spawnProgram, workDir } from './main-helpers.ts';

const needsRoot = isRoot ? false : 'only as root (as CI runs the tests): it checks what a server started by root does';

/** Retry `attempt` while the port is not bound yet, so it runs as early as the server allows. */
async function asEarlyAsPossible<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err;
      await new Promise((ok) => setTimeout(ok, 2));
    }
  }
}

/** Every path under `dir` (links not followed) whose owner is not `uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const wrong: string[] = [];
  const info = await lstat(dir);
  if (info.uid !== uid) wrong.push(`${dir} (uid ${info.uid})`);
  if (info.isDirectory()) for (const name of await readdir(dir)) wrong.push(...(await notOwnedBy(join(dir, name), uid)));
  return wrong;
}

test('no client byte is read by root: connections made during start-up run as mail; every file belongs to mail', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]); // as root: it becomes mail to write
  // A large data directory: start-up used to walk it as root (chown) while
  // the ports already took connections, which made that window long.
  const bulk = join(dataDir, 'bulk');
  await mkdir(bulk);
  execFileSync('sh', ['-c', 'seq 5000 | sed s/^/f/ | xargs touch && chown -R mail:mail .'], { cwd: bulk });

  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: await freePort(), pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports, auth: { allowPlaintextOnLoopback: true } }));
  const server = spawnProgram(['--config', 'mail.json'], cwd);
  try {
    // Clients that connect the moment the ports are bound: a delivery and a POP3 login.
    const delivery: Promise<MailResult> = asEarlyAsPossible(() =>
      sendMail(ports.smtp, { from: 'early@example.org', to: ['jjordan@localhost'], data: 'Subject: early\r\n\r\nfirst!\r\n' }),
    );
    const pop3Login = asEarlyAsPossible(async () => {
      const client = await connectPop3(ports.pop3);
      try {
        await client.readResponse();
        const login = await client.userPass('jjordan', 'secret');
        await client.quit();
        return login.ok;
      } finally {
        client.destroy();
      }
    });
    assert.equal((await delivery).final.code, 250);
    assert.equal(await pop3Login, true);
    await server.waitFor(/relay started queue=/, 'the relay');

    const output = server.output();
    const dropped = output.indexOf('privileges outcome=dropped user=mail');
    assert.ok(dropped >= 0, output);
    assert.ok(output.indexOf(' connect ') > dropped, `the first session started after the drop:\n${output}`);
    const mail = mailIds();
    const relayPid = Number(output.match(/relay-started pid=(\d+)/)![1]);
    for (const [name, pid] of [['server', server.child.pid!], ['relay', relayPid]] as const) {
      const ids = await processIds(pid);
      assert.deepEqual(ids.uids, [mail.uid, mail.uid, mail.uid, mail.uid], `${name}: real, effective, saved and filesystem uid`);
      assert.deepEqual(ids.gids, [mail.gid, mail.gid, mail.gid, mail.gid], `${name}: gids`);
      assert.ok(!ids.groups.includes(0), `${name}: no root group left: ${ids.groups}`);
    }
  } finally {
    assert.equal(await server.stop(), 0, server.output());
  }
  assert.deepEqual(await notOwnedBy(dataDir, mailIds().uid), [], 'every file in the data directory belongs to mail');
});

test('a data directory that belongs to someone else stops the start, naming it and the fix; nothing is chowned', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  await mkdir(dataDir); // root's
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports: { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 } }));
  const run = spawnSync(process.execPath, [MAIN, '--config', 'mail.json'], { cwd, encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2, run.stderr);
  assert.match(run.stderr, new RegExp(`the data directory ${dataDir} belongs to uid 0, not to mail`));
  assert.ok(run.stderr.includes(`chown -R mail: ${dataDir}`), run.stderr);
  assert.equal((await lstat(dataDir)).uid, 0, 'left as it was');
});

test('start-up never chowns inside the data directory: a root-owned entry is named, a link is left alone', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]);
  // What an administrator made as root, and a link the mail user could plant.
  await mkdir(join(dataDir, 'stray'));
  await writeFile(join(dataDir, 'stray/file'), 'root made this');
  const outside = join(cwd, 'outside.txt');
  await writeFile(outside, 'not the server business');
  await symlink(outside, join(dataDir, 'link'));
  await lchown(join(dataDir, 'link'), mailIds().uid, mailIds().gid);
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports, relay: { enabled: false } }));

  const run = spawnSync(process.execPath, [MAIN, '--config', 'mail.json'], { cwd, encoding: 'utf8', timeout: 10_000 });
  assert.equal(run.status, 2, run.stdout + run.stderr);
  assert.ok(run.stderr.includes(`${join(dataDir, 'stray')} belongs to uid 0, not to mail`), run.stderr);
  assert.ok(run.stderr.includes(`chown -R mail: ${dataDir}`), run.stderr);
  for (const path of [join(dataDir, 'stray'), join(dataDir, 'stray/file'), outside]) assert.equal((await lstat(path)).uid, 0, `${path} kept its owner`);

  await rm(join(dataDir, 'stray'), { recursive: true });
  const server = spawnProgram(['--config', 'mail.json'], cwd);
  await server.waitFor(/ main ready /, 'the server to start without the stray directory');
  assert.equal(await server.stop(), 0, server.output());
  assert.equal((await lstat(outside)).uid, 0, 'the link target kept its owner');
});

test('a data directory the mail user cannot reach is a one-line error, for the server and the relay', { skip: needsRoot }, async () => {
  // dataDir inside a checkout in root's private home, as a config might say.
  const checkout = await privateCheckout();
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(checkout, 'mail.json'), JSON.stringify({ dataDir: 'spool', ports, relay: { enabled: false } }));
  for (const program of [join(checkout, 'src/main.ts'), join(checkout, 'src/relay/main.ts')]) {
    const run = spawnSync(process.execPath, [program, '--config', 'mail.json'], { cwd: checkout, encoding: 'utf8', timeout: 10_000 });
    assert.equal(run.status, 2, run.stderr);
    assert.match(run.stderr, new RegExp(`user mail cannot use the data directory ${join(checkout, 'spool')}`));
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  }
});

test('the relay on its own, started as root, drops to mail like the server', { skip: needsRoot }, async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir }));
  const relay = spawnProgram(['--config', 'mail.json'], cwd, RELAY);
  try {
    await relay.waitFor(/relay started queue=/, 'the relay to start');
    assert.match(relay.output(), /relay privileges outcome=dropped user=mail/);
    assert.deepEqual((await processIds(relay.child.pid!)).uids, Array(4).fill(mailIds().uid));
  } finally {
    assert.equal(await relay.stop(), 0, relay.output());
  }
  assert.deepEqual(await notOwnedBy(dataDir, mailIds().uid), [], 'the data directory it made belongs to mail');
});

test('stopped right after start, the server still stops its relay with SIGTERM while the relay is still root', { skip: needsRoot }, async (t) => {
  const cwd = await workDir();
  const ports = { smtp: await freePort(), submission: -1, smtps: -1, pop3: -1, pop3s: -1, imap: -1, imaps: -1 };
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir: join(cwd, 'data'), ports }));
  const server = spawnProgram(['--config', 'mail.json'], cwd);
  // The server is ready (and no longer root) well before the relay it started
  // has loaded its code and dropped root: SIGTERM it at once.
  await server.waitFor(/ main ready /, 'the server to be ready');
  const relayWasUp = /relay started/.test(server.output());
  assert.equal(await server.stop(), 0);
  if (relayWasUp) return t.skip('the relay was up before the server: the moment this test is about did not happen');
  assert.match(server.output(), /relay shutdown signal=SIGTERM/, `the relay got SIGTERM, not SIGKILL 10 s later:\n${server.output()}`);
});
