// The mail server's entry point: `node src/main.ts [--config FILE] [--trace]`.
//
// With no config file it runs on its embedded defaults (see config.ts):
// unprivileged ports on loopback, data under spool/, a self-signed
// certificate made on first start. It loads the accounts, opens the mbox
// store, starts the listeners, drops root if it had it, and then:
// - SIGHUP reloads the TLS certificate (after a certbot renewal);
// - SIGINT/SIGTERM stop cleanly: no new connections, transactions in flight
//   finish (bounded by limits.shutdownGraceSeconds), exit 0.

import { mkdir, readdir, unlink } from 'node:fs/promises';
import { accessSync, constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, dataDirOf, ConfigError } from './config.ts';
import { startedDirectly } from './cli.ts';
import type { Config } from './config.ts';
import { createLogger } from './log.ts';
import type { Logger } from './log.ts';
import { Accounts } from './auth/accounts.ts';
import { MboxAppender } from './store/mbox-append.ts';
import type { AppendIO } from './store/mbox-append.ts';
import { startSmtpServer } from './smtp/server.ts';
import type { SmtpServer } from './smtp/server.ts';
import { startPop3Server } from './pop3/server.ts';
import type { Listeners } from './wire/listener.ts';
import { TlsCredentials } from './tls/certificates.ts';
import { LoginThrottle } from './auth/throttle.ts';
import type { ThrottleOptions } from './auth/throttle.ts';
import { dropPrivileges, restrictUmask, lookupIds, chownTree } from './privileges.ts';
import { superviseRelay } from './relay/supervisor.ts';
import type { Supervisor } from './relay/supervisor.ts';

export interface RunningServer {
  smtp: SmtpServer;
  pop3: Listeners;
  tls: TlsCredentials;
  close(): Promise<void>;
}

/** What tests may swap out: the file I/O under the mbox appends (to simulate a full disk). */
export interface TestHooks {
  appendIO?: AppendIO;
  /** Faster login throttling for tests. */
  throttle?: ThrottleOptions;
}

/** Start every listener for `config`. Used by main below and by the end-to-end tests. */
export async function startServer(config: Config, log: Logger, hooks: TestHooks = {}): Promise<RunningServer> {
  const dataDir = dataDirOf(config);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tmpDir = join(dataDir, 'tmp');
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  await removeLeftovers(tmpDir, log);

  const accounts = await Accounts.load({
    dataDir,
    domains: config.domains,
    warn: (message) => log.event('warning', { message }),
  });
  const appender = new MboxAppender({ lockTimeoutMs: config.limits.lockTimeoutSeconds * 1000, io: hooks.appendIO });
  const tls = await TlsCredentials.load({
    certPath: config.tls.certFile || undefined,
    keyPath: config.tls.keyFile || undefined,
    dataDir,
    hostname: config.hostname,
    log: (message) => log.event('tls', { message }),
  });
  const login = { accounts, throttle: new LoginThrottle(hooks.throttle) };
  const smtp = await startSmtpServer({
    config,
    accounts,
    delivery: { dataDir, appender },
    tls,
    login,
    tmpDir,
    log,
    host: config.listenAddress,
    listeners: [
      { name: 'smtp', port: config.ports.smtp, role: 'smtp', implicitTls: false },
      { name: 'submission', port: config.ports.submission, role: 'submission', implicitTls: false },
      { name: 'smtps', port: config.ports.smtps, role: 'submission', implicitTls: true },
    ],
  });
  const pop3 = await startPop3Server({
    config,
    dataDir,
    tls,
    login,
    log,
    host: config.listenAddress,
    port: config.ports.pop3,
    tlsPort: config.ports.pop3s,
  });
  for (const [name, port] of Object.entries({ ...smtp.ports, ...pop3.ports })) {
    log.event('listening', { service: name, address: config.listenAddress, port });
  }
  log.event('ready', { data: dataDir, certificate: tls.certPath });
  return {
    smtp,
    pop3,
    tls,
    close: async () => {
      await Promise.all([smtp.close(), pop3.close()]);
    },
  };
}

/** Temporary message files from a previous run were never acknowledged: remove them. */
async function removeLeftovers(tmpDir: string, log: Logger): Promise<void> {
  for (const name of await readdir(tmpDir)) {
    const path = join(tmpDir, name);
    await unlink(path).then(
      () => log.event('cleanup', { removed: path }),
      (err: Error) => log.event('cleanup-failed', { path, error: err.message }),
    );
  }
}

/** After dropping root, the data directory must still be ours (a checkout under /root is not). */
function checkDataDirReachable(dataDir: string, user: string): void {
  try {
    accessSync(dataDir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch {
    throw new Error(`user ${user} cannot use the data directory ${dataDir}: move it (dataDir) where ${user} can reach it, or set runAs`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, trace: { type: 'boolean', default: false } },
  });
  let config: Config;
  try {
    config = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`jjordan-mail: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger({ trace: values.trace });
  restrictUmask(); // mail is private: files 0600, directories 0700
  const server = await startServer(config, log);

  // The relay delivers queued mail to other domains, in its own process. It
  // is started before we drop root (it drops root itself, first thing), as
  // the unprivileged user may not be able to run the node binary (e.g. one
  // that npx fetched under /root).
  const relayArgs = [...(values.config ? ['--config', values.config] : []), ...(values.trace ? ['--trace'] : [])];
  let relay: Supervisor | null = null;

  // Ports are bound: now stop being root (see privileges.ts).
  try {
    if (process.getuid?.() === 0 && config.runAs.user) {
      const { uid, gid } = lookupIds(config.runAs.user, config.runAs.group);
      await chownTree(dataDirOf(config), uid, gid);
    }
    if (config.relay.enabled) relay = superviseRelay(relayArgs, log);
    const outcome = dropPrivileges(config.runAs);
    if (outcome !== 'not-root') log.event('privileges', { outcome, user: config.runAs.user || 'root' });
    if (outcome === 'dropped') checkDataDirReachable(dataDirOf(config), config.runAs.user);
  } catch (err) {
    console.error(`jjordan-mail: ${(err as Error).message}`);
    await Promise.all([server.close(), relay?.stop()]);
    process.exit(2);
  }

  process.on('SIGHUP', () => {
    server.tls.reload().then(
      () => log.event('tls-reloaded', { certificate: server.tls.certPath }),
      (err: Error) => log.event('tls-reload-failed', { error: err.message }),
    );
  });

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.event('shutdown', { signal });
    await Promise.all([server.close(), relay?.stop()]);
    log.event('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

if (startedDirectly(import.meta.url)) {
  main().catch((err) => {
    console.error(`jjordan-mail: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
