// The whole server, started in-process for end-to-end tests: a temporary
// spool under the OS temp directory, real accounts (addAccount), the SMTP
// listener on a free loopback port, and every log line collected so tests can
// look for events such as `aborted` or `deferred`.

import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { startServer } from '../../src/main.ts';
import type { RunningServer } from '../../src/main.ts';
import { defaults, mergeConfig } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import type { ThrottleOptions } from '../../src/auth/throttle.ts';
import { createLogger } from '../../src/log.ts';
import { addAccount } from '../../src/auth/account-writer.ts';
import type { AppendIO } from '../../src/store/append-io.ts';
import { mailboxPath } from '../../src/store/paths.ts';
import { scanMbox, readMessageBuffer } from './mbox-read.ts';
import type { MboxEntry } from './mbox-read.ts';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

export interface TestServerOptions {
  /** Accounts to create; default: jjordan (password "secret"). */
  accounts?: { name: string; password: string }[];
  /** Content of `<dataDir>/aliases`, e.g. "team: alice, bob\n". */
  aliases?: string;
  /** Config overrides, merged over the test defaults below. */
  config?: DeepPartial<Config>;
  /** File I/O under the mbox appends (to simulate a full disk). */
  appendIO?: AppendIO;
  /** Login throttling settings (small delays so AUTH tests stay fast). */
  throttle?: ThrottleOptions;
  /** Record the conversation (C:/S: lines) in logLines; with SMTP_TRACE=1 also print it. */
  trace?: boolean;
}

export interface StoredMessage {
  entry: MboxEntry;
  /** The message as read back (unquoted), LF line endings. */
  content: Buffer;
}

export interface TestServer {
  port: number;
  dataDir: string;
  /** Where large messages are spooled while they arrive. */
  tmpDir: string;
  config: Config;
  server: RunningServer;
  /** INBOX of an account. */
  mboxPath(account: string): string;
  /** Every message in an account's INBOX, read back through the store. */
  messages(account: string): Promise<StoredMessage[]>;
  /** Names of the files in the spool's tmp directory. */
  tmpFiles(): Promise<string[]>;
  logLines: string[];
  /** Remember a client connection; close() destroys it before stopping the server. */
  track<T extends { destroy(): void }>(client: T): T;
  /** Stop the server (idempotent) and keep the spool for inspection. */
  stop(): Promise<void>;
  /** Drop tracked clients, stop the server and remove the spool. */
  close(): Promise<void>;
}

/** Limits that keep a test from waiting long; tests of a limit lower it further. */
const TEST_LIMITS: DeepPartial<Config> = {
  hostname: 'localhost',
  domains: ['localhost'],
  limits: {
    idleTimeoutSeconds: 10,
    lockTimeoutSeconds: 2,
    shutdownGraceSeconds: 2,
  },
};

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'jjordan-smtp-test-'));
  try {
    for (const { name, password } of options.accounts ?? [{ name: 'jjordan', password: 'secret' }]) {
      await addAccount(dataDir, name, password);
    }
    if (options.aliases !== undefined) await fs.writeFile(path.join(dataDir, 'aliases'), options.aliases);
    const withTestLimits = mergeConfig(defaults, TEST_LIMITS);
    const config = mergeConfig(withTestLimits, {
      ...options.config,
      dataDir,
      listenAddress: '127.0.0.1',
      ports: { smtp: 0, submission: 0, smtps: 0, pop3: 0, pop3s: 0, imap: 0, imaps: 0 },
    });

    const logLines: string[] = [];
    const printTrace = process.env.SMTP_TRACE === '1';
    const log = createLogger({
      trace: options.trace ?? printTrace,
      write: (line) => {
        logLines.push(line);
        if (printTrace) process.stderr.write(line + '\n');
      },
    });
    const server = await startServer(config, log, {
      appendIO: options.appendIO,
      throttle: options.throttle ?? { baseDelayMs: 10, maxDelayMs: 50 },
    });

    const clients: { destroy(): void }[] = [];
    let stopped: Promise<void> | null = null;
    const stop = () => (stopped ??= server.close());
    const tmpDir = path.join(dataDir, 'tmp');
    const mboxPath = (account: string) => mailboxPath(dataDir, account, 'INBOX');
    return {
      port: server.smtp.port,
      dataDir,
      tmpDir,
      config,
      server,
      logLines,
      mboxPath,
      async messages(account) {
        const file = mboxPath(account);
        const found: StoredMessage[] = [];
        for await (const entry of scanMbox(file)) found.push({ entry, content: await readMessageBuffer(file, entry) });
        return found;
      },
      tmpFiles: () => fs.readdir(tmpDir),
      track(client) {
        clients.push(client);
        return client;
      },
      stop,
      async close() {
        // A client left mid-DATA would otherwise hold the shutdown for its grace period.
        for (const client of clients) client.destroy();
        await stop();
        await fs.rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await fs.rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** Poll `check` until it returns true; fail after `timeoutMs`. For effects the server makes after a socket closes. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Read a file, or null if it does not exist. */
export async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
