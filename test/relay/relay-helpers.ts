// Shared pieces for the relay's integration tests (runner, relay process,
// mailq): a temporary data directory with a config, a QueueRunner built by
// relayDeps() with a clock the test moves, queue files written the way the
// SMTP server writes them, and readers for what comes out: INBOX messages,
// state files, DSNs (split into their MIME parts) and DATA as a fake server
// received it.
//
// The fake SMTP server listens on 127.0.0.1 only, on a port the system picks,
// and the relay connects to every MX on the one relay.port. To give two MX
// hosts two different servers, aliasPort() listens on another loopback
// address (127.0.0.2, ...) on that same port number and forwards each
// connection to a second fake server.

import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeServer } from './fake-smtp-server.ts';
import type { FakeServer, FakeServerOptions } from './fake-smtp-server.ts';
import { defaults, mergeConfig } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { addAccount } from '../../src/auth/account-writer.ts';
import { queueDir, writeQueueFile } from '../../src/queue/queue-file.ts';
import type { QueueEnvelope } from '../../src/queue/queue-file.ts';
import { listQueue } from '../../src/queue/queue-state.ts';
import type { QueueState } from '../../src/queue/queue-state.ts';
import { QueueRunner } from '../../src/relay/runner.ts';
import type { RunnerDeps } from '../../src/relay/runner.ts';
import { relayDeps } from '../../src/relay/main.ts';
import { mailboxPath } from '../../src/store/paths.ts';
import { readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

/** A fixed start for the injectable clock. */
export const T0 = new Date('2026-03-02T10:00:00.000Z');
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

export async function tempDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'jjordan-relay-test-'));
}

/** A config for the relay: our domain is example.org, everything else is remote. */
export function relayConfig(dataDir: string, overrides: DeepPartial<Config> = {}): Config {
  const base = mergeConfig(defaults, { hostname: 'mail.example.org', domains: ['example.org'] });
  const config = mergeConfig(base, overrides);
  config.dataDir = dataDir;
  return config;
}

/** The message queued by default: the header fields a mail reader shows, a dot line for the wire. */
export function sampleMessage(subject = 'relay test', from = 'jjordan@example.org'): string {
  return (
    `From: Jo Jordan <${from}>\n` +
    'To: friend@remote.example\n' +
    `Subject: ${subject}\n` +
    'Date: Mon, 02 Mar 2026 10:00:00 +0000\n' +
    `Message-ID: <${subject.replace(/\W+/g, '-')}@example.org>\n` +
    '\n' +
    'Hello over there.\n' +
    '.a line that starts with a dot\n'
  );
}

let queued = 0;

/** Write a queue file exactly as the SMTP server does (writeQueueFile). */
export async function queueMessage(
  dataDir: string,
  options: { from?: string; to: string[]; arrived?: Date; message?: string; id?: string },
): Promise<string> {
  const id = options.id ?? `TEST${(++queued).toString().padStart(4, '0')}`;
  const envelope: QueueEnvelope = {
    id,
    from: options.from ?? 'jjordan@example.org',
    to: options.to,
    arrived: options.arrived ?? T0,
    auth: 'jjordan',
    body: '7bit',
    smtputf8: false,
  };
  const message = Buffer.from(options.message ?? sampleMessage());
  await writeQueueFile(dataDir, envelope, async function* () {
    yield message;
  });
  return id;
}

/** The saved state of a queued message, or null when it has none. */
export async function readStateFile(dataDir: string, id: string): Promise<QueueState | null> {
  try {
    return JSON.parse(await readFile(join(queueDir(dataDir), `${id}.state`), 'utf8')) as QueueState;
  } catch {
    return null;
  }
}

/** Every message in an account's INBOX (the mbox file), as stored. */
export async function inbox(dataDir: string, account: string): Promise<{ envelopeFrom: string; content: string }[]> {
  const file = mailboxPath(dataDir, account, 'INBOX');
  const found: { envelopeFrom: string; content: string }[] = [];
  for await (const entry of scanMbox(file)) found.push({ envelopeFrom: entry.envelopeFrom, content: (await readMessageBuffer(file, entry)).toString('utf8') });
  return found;
}

/** The clock a runner reads: tests move it instead of sleeping. */
export class Clock {
  now: Date;
  constructor(start = T0) {
    this.now = new Date(start);
  }
  set(at: Date | string): void {
    this.now = new Date(at);
  }
  advance(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }
}

export interface RelayEnv {
  dataDir: string;
  config: Config;
  deps: RunnerDeps;
  runner: QueueRunner;
  clock: Clock;
  logLines: string[];
  /** Ids still in the queue. */
  queued(): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * A data directory with accounts, a config and a runner from relayDeps()
 * (the real resolver, SMTP client and local delivery), with the test clock.
 */
export async function relayEnv(options: { config?: DeepPartial<Config>; accounts?: string[]; deps?: Partial<RunnerDeps> } = {}): Promise<RelayEnv> {
  const dataDir = await tempDataDir();
  for (const name of options.accounts ?? ['jjordan']) await addAccount(dataDir, name, 'secret');
  const config = relayConfig(dataDir, options.config);
  const logLines: string[] = [];
  const log = createLogger({ write: (line) => logLines.push(line) }, 'relay');
  const clock = new Clock();
  const deps: RunnerDeps = { ...(await relayDeps(config, log)), now: () => clock.now, random: () => 0, ...options.deps };
  return {
    dataDir,
    config,
    deps,
    runner: new QueueRunner(deps),
    clock,
    logLines,
    queued: () => listQueue(dataDir),
    close: () => rm(dataDir, { recursive: true, force: true }),
  };
}

/** RFC 5321 4.5.2 backwards: DATA as received (CRLF, dot-stuffed, end marker) to the message with LF endings. */
export function unstuff(data: Buffer): string {
  const text = data.toString('utf8');
  if (!text.endsWith('\r\n.\r\n')) throw new Error('DATA does not end with the end marker');
  const lines = text.slice(0, -'.\r\n'.length).split('\r\n');
  lines.pop(); // after the last CRLF
  return lines.map((line) => (line.startsWith('.') ? line.slice(1) : line)).join('\n') + '\n';
}

/** Header fields, unfolded (RFC 5322 2.2.3), keyed by lower-case name; the first instance wins. */
export function headerFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  return fields;
}

export interface MimePart {
  header: Map<string, string>;
  body: string;
}

/**
 * A DSN read the way a bounce processor reads it (RFC 6522): the top header,
 * the parts split at the boundary named in Content-Type.
 */
export function parseReport(message: string): { header: Map<string, string>; parts: MimePart[] } {
  const text = message.replace(/\r\n/g, '\n');
  const split = text.indexOf('\n\n');
  if (split < 0) throw new Error('no end of header');
  const header = headerFields(text.slice(0, split));
  const boundary = /boundary="?([^";]+)"?/.exec(header.get('content-type') ?? '')?.[1];
  if (!boundary) throw new Error(`not a multipart: ${header.get('content-type')}`);
  const body = text.slice(split + 1); // keep the newline: it belongs to the first delimiter
  const end = body.indexOf(`\n--${boundary}--`);
  if (end < 0) throw new Error('no closing delimiter');
  const parts = body
    .slice(0, end)
    .split(`\n--${boundary}\n`)
    .slice(1) // the preamble
    .map((part) => {
      const blank = part.indexOf('\n\n');
      return { header: headerFields(part.slice(0, blank)), body: part.slice(blank + 2) };
    });
  return { header, parts };
}

/** The blocks of a message/delivery-status body (RFC 3464 2.1): per-message first, then one per recipient. */
export function statusBlocks(body: string): Map<string, string>[] {
  return body
    .split(/\n\s*\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => headerFields(block));
}

/** A bounce or delay report, checked for its shape and reduced to what tests compare. */
export function readDsn(message: string): {
  subject: string;
  to: string;
  recipients: Map<string, string>[];
  originalHeader: string;
  text: string;
} {
  const { header, parts } = parseReport(message);
  if (!/^multipart\/report;/i.test(header.get('content-type') ?? '')) throw new Error(`not a report: ${header.get('content-type')}`);
  if (!/report-type=delivery-status/i.test(header.get('content-type') ?? '')) throw new Error('not a delivery-status report');
  const types = parts.map((p) => (p.header.get('content-type') ?? '').split(';')[0].trim().toLowerCase());
  if (types.join(' ') !== 'text/plain message/delivery-status text/rfc822-headers') throw new Error(`unexpected parts: ${types.join(', ')}`);
  return {
    subject: header.get('subject') ?? '',
    to: header.get('to') ?? '',
    recipients: statusBlocks(parts[1].body).slice(1),
    originalHeader: parts[2].body,
    text: parts[0].body,
  };
}

/**
 * Listen on `address`:`port` (another loopback address, same port number as
 * a fake server on 127.0.0.1) and pipe each connection to 127.0.0.1:`targetPort`.
 */
export async function aliasPort(address: string, port: number, targetPort: number): Promise<{ connections: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };
  const state = { connections: 0 };
  const server = createServer((client) => {
    state.connections++;
    const upstream = netConnect(targetPort, '127.0.0.1');
    track(client);
    track(upstream);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  return {
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Every message a fake server received, un-stuffed, in order. */
export const received = (server: FakeServer): string[] => server.sessions.flatMap((s) => s.messages).map(unstuff);

/** Every command line a fake server received, in order. */
export const commandsOf = (server: FakeServer): string[] => server.sessions.flatMap((s) => s.commands.map((c) => c.line));

/** The files in the queue directory (messages and states), without tmp/. */
export async function queueFiles(dataDir: string): Promise<string[]> {
  return (await readdir(queueDir(dataDir))).filter((name) => name !== 'tmp');
}

/**
 * What the runner tests share: fake servers and relay environments opened
 * during a test and closed after it, in reverse order (call closeAll from
 * afterEach), and setup(): a fake MX on relay.port with a runner whose DNS
 * is the test's DNS server.
 */
export class RunnerTestBed {
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  private readonly dnsPort: () => number;

  constructor(dnsPort: () => number) {
    this.dnsPort = dnsPort;
  }

  /** Close `cleanup` after the test. */
  readonly defer = (cleanup: () => Promise<unknown>): void => {
    this.cleanups.push(cleanup);
  };

  readonly closeAll = async (): Promise<void> => {
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup();
  };

  readonly fake = async (options: FakeServerOptions = {}): Promise<FakeServer> => {
    const server = await startFakeServer(options);
    this.defer(() => server.close());
    return server;
  };

  readonly setup = async (options: { fake?: FakeServerOptions; config?: DeepPartial<Config> } = {}): Promise<{ mx: FakeServer; env: RelayEnv }> => {
    const mx = await this.fake(options.fake);
    const env = await relayEnv({
      config: { ...options.config, relay: { dnsServers: `127.0.0.1:${this.dnsPort()}`, port: mx.port, ...options.config?.relay } },
    });
    this.defer(() => env.close());
    return { mx, env };
  };
}
