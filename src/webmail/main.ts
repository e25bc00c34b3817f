// The webmail process: `node src/webmail/main.ts [--config FILE] [--data DIR] [--trace]`
// (`npm run webmail`). The mail server starts it as a child by default
// (webmail.enabled); on machine B it runs on its own, with webmail.imapHost,
// submissionHost and caFile (or a public certificate) pointing at machine A.
//
// Started as root it binds its port (443), drops root like the server
// (privileges.ts), and only then reads requests. SIGHUP reloads its
// certificate; SIGTERM, SIGINT, or the end of the server that started it
// (its IPC channel closes) stop it: listener closed, every session's IMAP
// connection logged out, exit 0.

import { access, mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, dataDirOf, loadConfig } from '../config.ts';
import type { Config } from '../config.ts';
import { startedDirectly } from '../cli.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { leaveRoot, restrictUmask } from '../privileges.ts';
import { TlsCredentials } from '../tls/certificates.ts';
import { bindPorts } from '../wire/listener.ts';
import type { BoundPorts } from '../wire/listener.ts';
import { Webmail } from './app.ts';
import { startWebmailListener } from './server.ts';
import { webmailSettings } from './settings.ts';

/** How long a webmail started with the server waits for the server's first certificate. */
const CERTIFICATE_WAIT_MS = 60_000;

/** What ending now means; replaced by a clean stop once the listener runs. */
let stopNow: (why: string) => void = () => process.exit(0);

async function main(): Promise<void> {
  // Started by the server: its end (the IPC channel closing) ends us too,
  // even if it comes while we are still starting.
  // SIGTERM too: once this process has dropped root, the server can signal it.
  process.on('SIGTERM', () => stopNow('SIGTERM'));
  process.on('SIGINT', () => stopNow('SIGINT'));
  if (typeof process.send === 'function') {
    process.on('disconnect', () => stopNow('server-exited'));
    if (!process.connected) process.exit(0);
  }
  const { values } = parseArgs({
    options: { config: { type: 'string' }, data: { type: 'string' }, trace: { type: 'boolean', default: false } },
  });
  let config: Config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  // The server names its data directory, so a webmail it restarts after dropping root finds the same one.
  if (values.data) config.dataDir = resolve(values.data);
  const dataDir = dataDirOf(config);
  const log = createLogger({ trace: values.trace }, 'webmail');
  if (config.webmail.port < 0) fail('webmail.port is -1: the webmail is turned off');
  restrictUmask();

  // Bind (as root, for 443), prepare the data directory and drop root, then serve.
  const host = config.webmail.listenAddress || config.listenAddress;
  let bound: BoundPorts;
  try {
    bound = await bindPorts([{ name: 'https', port: config.webmail.port }], host, config.limits);
  } catch (err) {
    fail(`cannot listen on ${host}:${config.webmail.port}: ${(err as Error).message}`);
  }
  try {
    const outcome = await leaveRoot(config.runAs, dataDir);
    if (outcome !== 'not-root') log.event('privileges', { outcome, user: config.runAs.user || 'root' });
  } catch (err) {
    await bound.close();
    fail((err as Error).message);
  }

  const supervised = typeof process.send === 'function';
  const certPath = config.webmail.certFile || config.tls.certFile || undefined;
  const keyPath = config.webmail.keyFile || config.tls.keyFile || undefined;
  // Started with the server on its first run: the server makes the self-signed pair; wait for it rather than make a second one.
  if (supervised && !certPath) await waitForFiles([join(dataDir, 'tls', 'cert.pem'), join(dataDir, 'tls', 'key.pem')], log);
  const credentials = await TlsCredentials.load({ certPath, keyPath, dataDir, hostname: config.hostname, log: (message) => log.event('tls', { message }) });
  const settings = await webmailSettings(config);
  await mkdir(settings.tmpDir, { recursive: true, mode: 0o700 });
  // Uploads and messages of a previous run were never sent: nothing refers to them any more.
  for (const name of await readdir(settings.tmpDir)) await rm(join(settings.tmpDir, name), { force: true });

  const app = new Webmail({ config, settings, log });
  const listener = await startWebmailListener({ app, credentials, host, port: config.webmail.port, bound, limits: config.limits, log });
  log.event('ready', {
    url: `https://${config.hostname}:${listener.port}/`,
    imap: `${settings.imap.host}:${settings.imap.port}`,
    submission: `${settings.submission.host}:${settings.submission.port}`,
  });

  process.on('SIGHUP', () => {
    credentials.reload().then(
      () => log.event('tls-reloaded', { certificate: credentials.certPath }),
      (err: Error) => log.event('tls-reload-failed', { level: 'error', error: err.message }),
    );
  });
  let stopping = false;
  stopNow = (why: string) => {
    if (stopping) return;
    stopping = true;
    log.event('shutdown', { signal: why });
    void listener.close().then(() => process.exit(0));
  };
  // The server may have ended while we started.
  if (typeof process.send === 'function' && !process.connected) stopNow('server-exited');
}

async function waitForFiles(paths: string[], log: Logger): Promise<void> {
  const deadline = Date.now() + CERTIFICATE_WAIT_MS;
  let told = false;
  for (;;) {
    const missing = (await Promise.all(paths.map((p) => access(p).then(() => false, () => true)))).some(Boolean);
    if (!missing) return;
    if (Date.now() > deadline) fail(`the server's certificate ${paths[0]} did not appear`);
    if (!told) log.event('waiting-for-certificate', { path: paths[0] });
    told = true;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function fail(message: string): never {
  console.error(`jjordan-mail webmail: ${message}`);
  process.exit(2);
}

if (startedDirectly(import.meta.url)) {
  main().catch((err) => {
    console.error(`jjordan-mail webmail: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
