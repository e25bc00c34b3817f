// The mail server's entry point: `node src/main.ts [--config FILE] [--trace]`.
//
// With no config file it runs on its embedded defaults (see config.ts):
// unprivileged ports on loopback, data in spool/ (or, started as root, in
// /var/lib/jjordan-mail), a self-signed certificate made on first start.
// Started as root it binds its ports, gives up root, and only then reads
// anything a client sends (the steps are explained in privileges.ts). Then:
// - SIGHUP reloads the TLS certificate (after a renewal, see
//   scripts/certbot-deploy-hook.ts); a certificate that expires within
//   14 days is warned about at start and daily;
// - SIGINT/SIGTERM stop cleanly: no new connections, transactions in flight
//   finish (bounded by limits.shutdownGraceSeconds), exit 0.

import { mkdir, readdir, unlink, writeFile } from 'node:fs/promises';
import module from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, dataDirOf, ConfigError } from './config.ts';
import { startedDirectly } from './cli.ts';
import type { Config } from './config.ts';
import { createLogger } from './log.ts';
import type { Logger } from './log.ts';
import { Accounts } from './auth/accounts.ts';
import { MboxAppender } from './store/mbox-append.ts';
import { MemoryBudget } from './store/memory-budget.ts';
import { dropIdleMailboxes } from './store/mailbox-registry.ts';
import type { AppendIO } from './store/mbox-append.ts';
import { startSmtpServer } from './smtp/server.ts';
import type { SmtpServer } from './smtp/server.ts';
import { startPop3Server } from './pop3/server.ts';
import { startImapServer } from './imap/server.ts';
import { bindPorts } from './wire/listener.ts';
import type { BoundPorts, Listeners } from './wire/listener.ts';
import { TlsCredentials } from './tls/certificates.ts';
import { LoginThrottle } from './auth/throttle.ts';
import type { ThrottleOptions } from './auth/throttle.ts';
import { queueTmpDir } from './queue/queue-file.ts';
import { leaveRoot, restrictUmask } from './privileges.ts';
import { superviseRelay } from './relay/supervisor.ts';
import type { Supervisor } from './relay/supervisor.ts';
import { superviseWebmail } from './webmail/supervisor.ts';

export interface RunningServer {
  smtp: SmtpServer;
  pop3: Listeners;
  imap: Listeners;
  tls: TlsCredentials;
  close(): Promise<void>;
}

/** What tests may swap out: the file I/O under the mbox appends (to simulate a full disk). */
export interface TestHooks {
  appendIO?: AppendIO;
  /** Faster login throttling for tests. */
  throttle?: ThrottleOptions;
}

const SMTP_LISTENERS = [
  { name: 'smtp', role: 'smtp', implicitTls: false },
  { name: 'submission', role: 'submission', implicitTls: false },
  { name: 'smtps', role: 'submission', implicitTls: true },
] as const;

/** Step 1 (privileges.ts): bind every port of `config`; connections wait unread until startServer. */
export function bindServer(config: Config): Promise<BoundPorts> {
  const names = ['smtp', 'submission', 'smtps', 'pop3', 'pop3s', 'imap', 'imaps'] as const;
  return bindPorts(
    names.map((name) => ({ name, port: config.ports[name] })),
    config.listenAddress,
    config.limits,
  );
}

/**
 * Step 4: load accounts and certificate, and serve. `bound` holds the ports
 * main bound as root; without it (the tests) they are bound here.
 */
export async function startServer(config: Config, log: Logger, hooks: TestHooks = {}, bound?: BoundPorts): Promise<RunningServer> {
  const dataDir = dataDirOf(config);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tmpDir = join(dataDir, 'tmp');
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  await removeLeftovers(tmpDir, log);
  // Queue files prepared but never committed (the server died between the two): never acknowledged either.
  await mkdir(queueTmpDir(dataDir), { recursive: true, mode: 0o700 });
  await removeLeftovers(queueTmpDir(dataDir), log);

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
  const memory = new MemoryBudget(config.limits.memoryBufferTotalBytes);
  const login = { accounts, throttle: new LoginThrottle(hooks.throttle), trustedAddresses: config.auth.trustedClients };
  const smtp = await startSmtpServer({
    config,
    accounts,
    delivery: { dataDir, appender },
    tls,
    login,
    tmpDir,
    memory,
    log,
    host: config.listenAddress,
    bound,
    listeners: SMTP_LISTENERS.map((spec) => ({ ...spec, port: config.ports[spec.name] })),
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
    bound,
  });
  const imap = await startImapServer({
    config,
    accounts,
    dataDir,
    tmpDir,
    memory,
    tls,
    login,
    log,
    host: config.listenAddress,
    port: config.ports.imap,
    tlsPort: config.ports.imaps,
    bound,
  });
  for (const [name, port] of Object.entries({ ...smtp.ports, ...pop3.ports, ...imap.ports })) {
    log.event('listening', { service: name, address: config.listenAddress, port });
  }
  log.event('ready', { data: dataDir, certificate: tls.certPath });
  return {
    smtp,
    pop3,
    imap,
    tls,
    close: async () => {
      await Promise.all([smtp.close(), pop3.close(), imap.close()]);
      await dropIdleMailboxes(); // mailboxes kept in memory for a quick next login are let go
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

/** Where the server writes its PID, so the certbot hook can send it SIGHUP. */
export function serverPidPath(dataDir: string): string {
  return join(dataDir, 'server.pid');
}

/** How often the served certificate's expiry date is looked at. */
const EXPIRY_CHECK_MS = 24 * 60 * 60 * 1000;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, trace: { type: 'boolean', default: false } },
  });
  let config: Config;
  try {
    config = loadConfig(values.config); // decides the data directory (config.ts)
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const log = createLogger({ trace: values.trace });
  const dataDir = dataDirOf(config);
  restrictUmask(); // mail is private: files 0600, directories 0700

  // SIGTERM/SIGINT are caught from the start: without a handler the kernel
  // ends the process at once, and a stop sent the moment "ready" is logged
  // could land before the clean stop below is in place. A signal during
  // start-up is remembered and acted on once the server runs; a second one
  // ends the start at once.
  let startUpSignal = '';
  let stop = async (signal: string): Promise<void> => {
    if (startUpSignal) process.exit(1);
    startUpSignal = signal;
    log.event('shutdown-requested', { signal, message: 'stopping once started' });
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  // 1. Bind. Connections that arrive from now on wait, unread.
  let bound: BoundPorts;
  try {
    bound = await bindServer(config);
  } catch (err) {
    fail(`cannot listen on ${config.listenAddress}: ${(err as Error).message}`);
  }

  // 2 and 3. The data directory, then stop being root. The relay process is
  // started in between: it drops root itself, first thing, and the
  // unprivileged user may not be able to start node (npx keeps it under
  // /root). It is told the data directory, so a restart by the now
  // unprivileged server finds the same one.
  const relayArgs = ['--data', dataDir, ...(values.config ? ['--config', values.config] : []), ...(values.trace ? ['--trace'] : [])];
  let relay = null as Supervisor | null;
  try {
    const outcome = await leaveRoot(config.runAs, dataDir, () => {
      if (config.relay.enabled) relay = superviseRelay(relayArgs, log);
      if (config.webmail.enabled && config.webmail.port >= 0) superviseWebmail(relayArgs, log); // ends with this process (webmail/supervisor.ts)
    });
    if (outcome !== 'not-root') log.event('privileges', { outcome, user: config.runAs.user || 'root' });
  } catch (err) {
    await Promise.all([bound.close(), relay?.stop()]);
    fail((err as Error).message);
  }

  // 4. Accept: everything from here on runs as the unprivileged user.
  let server: RunningServer;
  try {
    server = await startServer(config, log, {}, bound);
  } catch (err) {
    await Promise.all([bound.close(), relay?.stop()]);
    fail((err as Error).message);
  }

  const checkExpiry = () => {
    const warning = server.tls.expiryWarning();
    if (warning) log.event('tls-expiring', { level: 'warning', certificate: server.tls.certPath, message: warning });
  };
  checkExpiry();
  setInterval(checkExpiry, EXPIRY_CHECK_MS).unref();
  process.on('SIGHUP', () => {
    server.tls.reload().then(
      () => {
        log.event('tls-reloaded', { certificate: server.tls.certPath });
        checkExpiry();
      },
      // The old certificate stays in use; an operator must hear about it.
      (err: Error) => log.event('tls-reload-failed', { level: 'error', error: err.message }),
    );
  });

  let stopping = false;
  stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.event('shutdown', { signal });
    await Promise.all([server.close(), relay?.stop()]);
    await unlink(serverPidPath(dataDir)).catch(() => {});
    log.event('stopped');
    process.exit(0);
  };
  if (startUpSignal) return stop(startUpSignal);
  // The PID file says "ready for signals", so it comes after the handlers.
  await writeFile(serverPidPath(dataDir), `${process.pid}\n`);
  // The compile cache (src/compile-cache.mjs) is written at exit; write it
  // now too, so that a server killed rather than stopped starts small again.
  module.flushCompileCache?.();
}

function fail(message: string): never {
  console.error(`jjordan-mail: ${message}`);
  process.exit(2);
}

if (startedDirectly(import.meta.url)) {
  main().catch((err) => {
    console.error(`jjordan-mail: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
