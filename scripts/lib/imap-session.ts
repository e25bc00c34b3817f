// The pieces every phase of bench-imap.ts shares: where the server is, a
// session opened and timed step by step (connect, greeting, LOGIN, SELECT),
// what the benchmark has learned about the mailbox (UIDs and sizes, from
// one FETCH), and the shape of a phase and of the line it prints.

import { performance } from 'node:perf_hooks';
import { ImapClient, ImapError, quoted } from './imap-client.ts';

export interface Target {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** What the phases share: the server, the clock, and what is known of the mailbox. */
export interface BenchContext {
  target: Target;
  /** The server's process (the root of its tree), for memory and I/O; null if unknown. */
  serverPid: number | null;
  /** Where the mailbox's files are (mbox, index, flag journal), for the STORE phase; null if unknown. */
  indexDir: string | null;
  /** Date.now() value that ends the whole run. */
  runDeadline: number;
  /** The longest one phase may take, in ms. */
  phaseMs: number;
  idleSessions: number;
  /**
   * Restarts the server (this project's, when the benchmark started it),
   * for the phases that want a fresh one (Phase.freshServer). Updates
   * target.port and serverPid. Null for a server the benchmark did not start.
   */
  restartServer: (() => Promise<void>) | null;
  /** Filled in by the first FETCH of sizes; every later phase reads it. */
  mailbox: MailboxFacts | null;
}

export interface MailboxFacts {
  exists: number;
  /** uids[i] and sizes[i] are message i+1's. */
  uids: number[];
  sizes: number[];
  /** The largest message (the streaming phase's). */
  bigSeq: number;
}

/** One printed line: a figure beside the target (if it has one) and Dovecot's figure from the issue. */
export interface Row {
  label: string;
  figure: string;
  /** "<= 1.0 s"; '' where the issue sets none. */
  target: string;
  met: boolean | null;
  /** Extra lines under it: splits, checks, warnings. */
  notes: string[];
  /** The figures for the JSON line. */
  json: Record<string, unknown>;
}

/** A phase: a name for --phases, and a run that returns its rows. */
export interface Phase {
  name: string;
  /**
   * Measures the server's memory growth: run it on a freshly restarted
   * server where the benchmark can (restartServer), since a garbage-collected
   * server's heap stays as large as earlier phases made it and would hide
   * the growth.
   */
  freshServer?: boolean;
  run(ctx: BenchContext): Promise<Row[]>;
}

/** The deadline for a phase starting now: its own bound or the run's, whichever comes first. */
export function phaseDeadline(ctx: BenchContext): number {
  return Math.min(ctx.runDeadline, Date.now() + ctx.phaseMs);
}

export interface SessionTiming {
  /** Milliseconds from the start of connect() to each step's end. */
  connectMs: number;
  greetingMs: number;
  loginMs: number;
  /** NaN when the session did not select. */
  selectMs: number;
  /** The SELECT command alone (sent to tagged OK). */
  selectOnlyMs: number;
  exists: number;
}

export interface OpenSession {
  client: ImapClient;
  timing: SessionTiming;
}

const CONNECT_TIMEOUT_MS = 10_000;

/** Connect, greeting, LOGIN, and (unless `select` is false) SELECT INBOX, each timed. */
export async function openSession(target: Target, deadline: number, select = true): Promise<OpenSession> {
  const started = performance.now();
  const client = await ImapClient.open(target.host, target.port, Math.min(CONNECT_TIMEOUT_MS, Math.max(1, deadline - Date.now())));
  try {
    const connectMs = performance.now() - started;
    const greeting = await client.read(deadline);
    if (greeting.kind !== 'untagged' || greeting.status !== 'OK') throw new ImapError(`greeting: ${greeting.text.slice(0, 120)}`);
    const greetingMs = greeting.at - started;
    await client.ok(`LOGIN ${quoted(target.user)} ${quoted(target.password)}`, deadline);
    const loginMs = performance.now() - started;
    const timing: SessionTiming = { connectMs, greetingMs, loginMs, selectMs: NaN, selectOnlyMs: NaN, exists: 0 };
    if (select) {
      const selected = await client.ok('SELECT INBOX', deadline, { keepUntagged: true });
      timing.selectOnlyMs = selected.ms;
      timing.selectMs = performance.now() - started;
      timing.exists = existsOf(selected.untagged.map((r) => r.text));
    }
    return { client, timing };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

/** "* 50000 EXISTS" among SELECT's untagged responses (RFC 3501 7.3.1). */
export function existsOf(lines: string[]): number {
  for (const line of lines) {
    const match = /^\* (\d+) EXISTS\b/i.exec(line);
    if (match) return Number(match[1]);
  }
  throw new ImapError('SELECT gave no EXISTS');
}

/**
 * The mailbox's UIDs and sizes from the untagged responses of
 * `FETCH 1:* (UID FLAGS RFC822.SIZE)`: "* 5 FETCH (UID 5 FLAGS () RFC822.SIZE 4321)".
 */
export function factsOf(lines: string[], exists: number): MailboxFacts {
  const uids = new Array<number>(exists).fill(0);
  const sizes = new Array<number>(exists).fill(-1);
  for (const line of lines) {
    const seq = Number(/^\* (\d+) FETCH /i.exec(line)?.[1] ?? 0);
    if (seq < 1 || seq > exists) continue;
    const uid = /[ (]UID (\d+)/i.exec(line);
    const size = /[ (]RFC822\.SIZE (\d+)/i.exec(line);
    if (uid) uids[seq - 1] = Number(uid[1]);
    if (size) sizes[seq - 1] = Number(size[1]);
  }
  let bigSeq = 0;
  for (let i = 0; i < exists; i++) if (bigSeq === 0 || sizes[i] > sizes[bigSeq - 1]) bigSeq = i + 1;
  return { exists, uids, sizes, bigSeq };
}

/** Messages the FETCH left without a UID or a size (should be 0). */
export function incomplete(facts: MailboxFacts): number {
  let missing = 0;
  for (let i = 0; i < facts.exists; i++) if (facts.uids[i] === 0 || facts.sizes[i] < 0) missing++;
  return missing;
}
