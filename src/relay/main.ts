// The relay process: `node src/relay/main.ts [--config FILE] [--data DIR] [--trace]`
// (`npm run relay`). The server starts it as a child by default; it can also
// run on its own. It shares the queue and store code with the server, never
// its sessions.
//
// It looks at the queue at start, whenever a new queue file appears (a
// directory watch), on a timer (for retries that became due) and on SIGUSR1
// (`node scripts/mailq.ts --flush`: try everything now). SIGTERM/SIGINT: let
// the attempts in flight finish, then exit.

import { mkdir, readFile, writeFile, unlink } from 'node:fs/promises';
import { watch } from 'node:fs';
import module from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, dataDirOf, ConfigError } from '../config.ts';
import type { Config } from '../config.ts';
import { createLogger } from '../log.ts';
import type { Logger } from '../log.ts';
import { startedDirectly } from '../cli.ts';
import { leaveRoot, restrictUmask } from '../privileges.ts';
import { queueDir } from '../queue/queue-file.ts';
import { QueueRunner } from './runner.ts';
import type { RunnerDeps } from './runner.ts';
import { createResolver } from './mx.ts';
import { loadDkimKeys } from './dkim.ts';

/** Where the relay writes its PID, so mailq --flush can signal it. */
export function relayPidPath(dataDir: string): string {
  return join(dataDir, 'relay.pid');
}

/**
 * Everything the runner needs, from the config. Tests build their own.
 *
 * The SMTP client (with node:tls) and what local delivery needs (accounts,
 * the mbox appender) are loaded the first time they are used, not at start:
 * a relay with an empty queue, the usual state on a small board, then holds
 * only what it needs to watch the queue (a few MB less; README, Benchmarks).
 */
export async function relayDeps(config: Config, log: Logger): Promise<RunnerDeps> {
  const dataDir = dataDirOf(config);
  const localDelivery = once(async () => {
    const [{ Accounts }, { MboxAppender }, local, { newId }] = await Promise.all([
      import('../auth/accounts.ts'),
      import('../store/mbox-append.ts'),
      import('../store/local-delivery.ts'),
      import('../queue/queue-id.ts'),
    ]);
    const accounts = await Accounts.load({ dataDir, domains: config.domains, warn: (message) => log.event('warning', { message }) });
    const appender = new MboxAppender({ lockTimeoutMs: config.limits.lockTimeoutSeconds * 1000 });
    return { accounts, appender, newId, ...local };
  });
  const smtpClient = once(() => import('./smtp-client.ts'));
  const { dkim } = config.relay;
  return {
    dataDir,
    config,
    resolver: createResolver(config.relay.dnsServers.split(',').map((s) => s.trim()).filter(Boolean)),
    deliver: async (request) => (await smtpClient()).deliverMessage(request),
    log,
    // The older single-key form (selector, keyFile) is the key for the first domain.
    dkimKeys: await loadDkimKeys([...dkim.keys, ...(dkim.keyFile ? [{ domain: config.domains[0], selector: dkim.selector, keyFile: dkim.keyFile }] : [])]),
    tlsCa: config.relay.caFile ? await readCaFile(config.relay.caFile) : undefined,
    // Bounces to our own users go straight into their INBOX, by the same
    // path as mail the SMTP server delivers, with the same trace fields. The
    // Received: field says the report was made here, as Postfix's local
    // pickup does: no client, no TCP-info, "with local".
    deliverLocally: async (address, message) => {
      const { accounts, appender, newId, traceHeader, returnPathHeader, deliverToAccounts } = await localDelivery();
      const found = await accounts.resolve(address);
      if (found.kind !== 'local') return false;
      const date = new Date();
      const trace = traceHeader({
        heloName: 'localhost', clientAddress: '', hostname: config.hostname, protocol: 'local',
        messageId: newId(), envelopeFrom: '', recipients: [address], date,
      });
      const content = Buffer.concat([returnPathHeader(''), trace, message]);
      await deliverToAccounts({ dataDir, appender }, found.accounts, '', date, async function* () {
        yield content;
      });
      return true;
    },
  };
}

/** `load()` the first time, the same promise after (a failed load is tried again). */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | null = null;
  return () => {
    loaded ??= load().catch((err: unknown) => {
      loaded = null;
      throw err;
    });
    return loaded;
  };
}

/** relay.caFile, read once at start: a file that cannot be read stops the relay with its name. */
async function readCaFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new Error(`relay.caFile: cannot read ${path}: ${(err as Error).message}`);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { config: { type: 'string' }, data: { type: 'string' }, trace: { type: 'boolean', default: false } },
  });
  let config: Config;
  try {
    config = loadConfig(values.config); // decides the data directory (config.ts)
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  // The server names its data directory, so that a relay it restarts after
  // dropping root (no longer root itself) finds the same one.
  if (values.data) config.dataDir = resolve(values.data);
  const log = createLogger({ trace: values.trace }, 'relay');
  // Stop handlers come before the drop: the moment the relay stops being
  // root, the server (already unprivileged) can signal it, and a SIGTERM then
  // must stop it cleanly, not kill it half-started. Until the queue runs,
  // stopping is only leaving.
  let stop = async (signal: string): Promise<void> => {
    log.event('shutdown', { signal });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // Started as root, the relay goes through the server's steps 2 and 3
  // (privileges.ts) before anything else: the data directory, then the drop.
  restrictUmask();
  try {
    const outcome = await leaveRoot(config.runAs, dataDirOf(config));
    if (outcome !== 'not-root') log.event('privileges', { outcome, user: config.runAs.user || 'root' });
  } catch (err) {
    fail((err as Error).message);
  }
  const runner = new QueueRunner(await relayDeps(config, log));
  const dataDir = dataDirOf(config);
  await mkdir(queueDir(dataDir), { recursive: true, mode: 0o700 });

  // One run at a time; a request during a run makes one more run afterwards.
  let running: Promise<void> | null = null;
  let again: boolean | null = null;
  const run = (force = false) => {
    if (running) {
      again = (again ?? false) || force;
      return;
    }
    running = runner.runDue(force).finally(() => {
      running = null;
      if (again !== null) {
        const forceNext = again;
        again = null;
        run(forceNext);
      }
    });
  };

  // Watch first, then scan: a file that arrives in between is seen by one or the other.
  const watcher = watch(queueDir(dataDir), (_event, name) => {
    if (name?.endsWith('.msg')) run();
  });
  const timer = setInterval(() => run(), config.relay.scanSeconds * 1000);
  run();
  process.on('SIGUSR1', () => {
    log.event('flush');
    run(true);
  });
  stop = async (signal: string) => {
    log.event('shutdown', { signal });
    watcher.close();
    clearInterval(timer);
    await running;
    await unlink(relayPidPath(dataDir)).catch(() => {});
    process.exit(0);
  };
  // The PID file says "ready for signals" (mailq --flush), so it comes after the handlers.
  await writeFile(relayPidPath(dataDir), `${process.pid}\n`);
  log.event('started', { queue: queueDir(dataDir), smarthost: config.relay.smarthost.host || undefined });
  module.flushCompileCache?.(); // see src/main.ts
}

function fail(message: string): never {
  console.error(`relay: ${message}`);
  process.exit(2);
}

if (startedDirectly(import.meta.url)) {
  main().catch((err) => {
    console.error(`relay: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
