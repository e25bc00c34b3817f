// The webmail as the programs run it: `npm start` starts it as a child of
// the server (restarted if it dies, gone when the server ends), and
// `npm run webmail` runs it on its own, pointed at a mail server's IMAP and
// submission ports, as on a second machine. Also the mail clients'
// autoconfig document.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT, addUser, freePort, isRoot, spawnProgram, startMain, workDir } from '../e2e/main-helpers.ts';
import { Browser } from './browser.ts';

const WEBMAIL = join(PROJECT, 'src/webmail/main.ts');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the server starts the webmail, restarts it when it dies, and takes it along when it stops; npm run webmail runs alone', async () => {
  const cwd = await workDir();
  const dataDir = join(cwd, 'data');
  addUser('jjordan', ['--data', dataDir]);
  const ports = { smtp: await freePort(), submission: await freePort(), smtps: await freePort(), pop3: -1, pop3s: -1, imap: await freePort(), imaps: await freePort() };
  const webmailPort = await freePort();
  // The restart is what this test looks at: as root keep root, or the
  // restarted child may not be able to run a node binary under /root (see main-process.test.ts).
  const runAs = isRoot ? { user: '', group: '', allowRoot: true } : undefined;
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir, ports, runAs, relay: { enabled: false }, webmail: { port: webmailPort } }));
  const server = await startMain(cwd, ['--config', 'mail.json']);
  const pids = () => [...server.output().matchAll(/webmail-started pid=(\d+)/g)].map((m) => Number(m[1]));
  try {
    await until('the webmail to be ready', () => /webmail ready url=https:\/\/localhost:\d+\//.test(server.output()), server.output);
    const ca = await readFile(join(dataDir, 'tls/cert.pem'), 'utf8');
    const browser = new Browser(webmailPort, ca);
    assert.equal((await browser.logIn('jjordan', 'secret')).status, 303, server.output());
    assert.match((await browser.get('/mail')).text, /Inbox/);

    const autoconfig = await browser.get('/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=jjordan%40localhost');
    assert.equal(autoconfig.headers['content-type'], 'application/xml; charset=utf-8');
    assert.match(autoconfig.text, /<domain>localhost<\/domain>/);
    assert.match(autoconfig.text, new RegExp(`<incomingServer type="imap">\\s*<hostname>localhost</hostname>\\s*<port>${ports.imaps}</port>\\s*<socketType>SSL</socketType>`));
    assert.match(autoconfig.text, new RegExp(`<port>${ports.imap}</port>\\s*<socketType>STARTTLS</socketType>`));
    assert.match(autoconfig.text, new RegExp(`<outgoingServer type="smtp">\\s*<hostname>localhost</hostname>\\s*<port>${ports.smtps}</port>`));
    assert.match(autoconfig.text, /<username>%EMAILADDRESS%<\/username>/);
    assert.doesNotMatch(autoconfig.text, /type="pop3"/, 'POP3 is off in this config');
    assert.equal((await browser.get('/mail/config-v1.1.xml')).text, (await browser.get('/.well-known/autoconfig/mail/config-v1.1.xml')).text);

    // Killed: started again, and serving again.
    const first = pids()[0];
    process.kill(first, 'SIGKILL');
    await until('the webmail to be restarted', () => pids().length === 2 && server.output().split('webmail ready').length === 3, server.output);
    assert.match(server.output(), /webmail-died signal=SIGKILL restartInMs=1000/);
    assert.equal((await new Browser(webmailPort, ca).logIn('jjordan', 'secret')).status, 303);

    // `npm run webmail` on its own, as on machine B: another port, the server's ports named in its config.
    const alonePort = await freePort();
    await writeFile(join(cwd, 'webmail.json'), JSON.stringify({
      dataDir,
      runAs,
      webmail: { port: alonePort, imapHost: '127.0.0.1', imapPort: ports.imap, imapTls: 'starttls', submissionHost: '127.0.0.1', submissionPort: ports.submission, submissionTls: 'starttls', caFile: join(dataDir, 'tls/cert.pem') },
    }));
    const alone = spawnProgram(['--config', 'webmail.json'], cwd, WEBMAIL);
    try {
      await alone.waitFor(/webmail ready /, 'the webmail on its own');
      assert.match(alone.output(), new RegExp(`imap=127\\.0\\.0\\.1:${ports.imap} submission=127\\.0\\.0\\.1:${ports.submission}`));
      assert.equal((await new Browser(alonePort, ca).logIn('jjordan', 'secret')).status, 303, alone.output());
    } finally {
      assert.equal(await alone.stop(), 0, alone.output());
    }
  } finally {
    assert.equal(await server.stop(), 0, server.output());
  }
  const last = pids()[pids().length - 1];
  await until('the webmail to end with the server', () => !alive(last), server.output);
});
