// What one bench-pop3 session does, timed: connect, greeting, log in
// (USER/PASS or AUTH PLAIN) and STAT, the time to first answer; then, in the
// download session, LIST, UIDL and RETR of every message, each RETR checked
// against LIST's size and, for the messages this run filled in, its number.

import { performance } from 'node:perf_hooks';
import { CpuMeter } from './cpu-meter.ts';
import type { CpuUse } from './cpu-meter.ts';
import { Pop3Client, Pop3Error } from './pop3-client.ts';
import type { Pop3Response } from './pop3-client.ts';

const CONNECT_TIMEOUT_MS = 10_000;

/** Mutable so Ctrl-C can end the run at once. */
export interface Clock {
  deadline: number;
}

export interface Target {
  address: string;
  port: number;
  tls: boolean;
  user: string;
  password: string;
  auth: 'user' | 'plain';
}

/** Milliseconds from the start of connect to each answer, and what STAT said. */
export interface LoginTiming {
  connectMs: number; // TCP (and TLS) established
  greetingMs: number; // +OK greeting
  userMs: number | null; // +OK to USER (null with AUTH PLAIN)
  loginMs: number; // +OK to PASS or AUTH: password check and maildrop opened
  statMs: number; // +OK to STAT: the first answer about the mailbox
  messages: number;
  octets: number;
}

function expectOk(response: Pop3Response, what: string): Pop3Response {
  if (!response.ok || response.continuation) throw new Pop3Error(`${what} refused: ${response.continuation ? '+' : '-ERR'} ${response.text}`);
  return response;
}

/** Connect, greeting, log in, STAT: the time to first answer. */
export async function loginAndStat(target: Target, clock: Clock): Promise<{ client: Pop3Client; timing: LoginTiming }> {
  const started = performance.now();
  const since = (at: number) => at - started;
  const client = await Pop3Client.open({ host: target.address, port: target.port, tls: target.tls, timeoutMs: CONNECT_TIMEOUT_MS });
  try {
    const connectMs = since(performance.now());
    const greeting = expectOk(await client.read(clock.deadline), 'greeting');
    let userMs: number | null = null;
    let login: Pop3Response;
    if (target.auth === 'user') {
      userMs = since(expectOk(await client.command(`USER ${target.user}`, clock.deadline), 'USER').at);
      login = await client.command(`PASS ${target.password}`, clock.deadline);
    } else {
      // RFC 4616: authzid NUL authcid NUL password; RFC 5034 4: initial response on the command line.
      const plain = Buffer.from(`\0${target.user}\0${target.password}`).toString('base64');
      login = await client.command(`AUTH PLAIN ${plain}`, clock.deadline);
      if (login.continuation) {
        client.answer(plain); // a server that ignores the initial response asks again
        login = await client.read(clock.deadline);
      }
    }
    const loginMs = since(expectOk(login, 'login').at);
    const stat = expectOk(await client.command('STAT', clock.deadline), 'STAT');
    const match = /^(\d+) (\d+)/.exec(stat.text);
    if (!match) throw new Pop3Error(`cannot read the STAT answer: ${stat.text}`);
    return {
      client,
      timing: {
        connectMs,
        greetingMs: since(greeting.at),
        userMs,
        loginMs,
        statMs: since(stat.at),
        messages: Number(match[1]),
        octets: Number(match[2]),
      },
    };
  } catch (err) {
    client.destroy();
    throw err;
  }
}

export interface DownloadResult {
  pipelined: boolean;
  pipeliningOffered: boolean;
  window: number;
  listMs: number;
  listed: number;
  uidlMs: number;
  uids: number;
  uniqueUids: number;
  retrieved: number;
  refused: number;
  refusedSample: string | null;
  messageOctets: number;
  wireBytes: number;
  retrSeconds: number;
  /** Where the CPU went during the RETRs. */
  cpu: CpuUse | null;
  /** RETR octet counts that differ from LIST (first few kept). */
  sizeMismatches: number;
  mismatchSamples: string[];
  /** Lines received with a bare LF (the octet count then differs). */
  bareLf: number;
  /** LIST sizes that differ from the size the messages were filled with. */
  unexpectedSizes: number;
  /** Of the messages filled in this run: how many were checked, how many were another message. */
  seqChecked: number;
  seqWrong: number;
}

export interface DownloadOptions {
  pipelining: boolean;
  window: number;
  /** Messages this run filled in, and their size. */
  filled: number;
  filledSize: number;
  /** The server's process, for its CPU time. */
  pid: number | null;
}

/** Messages per second over the RETRs. */
export function retrRate(dl: DownloadResult): number {
  return dl.retrSeconds > 0 ? dl.retrieved / dl.retrSeconds : 0;
}

/** LIST, UIDL, then RETR of every message, in the session `client` is logged into. */
export async function download(client: Pop3Client, stat: LoginTiming, opts: DownloadOptions, clock: Clock): Promise<DownloadResult> {
  // RFC 2449 5: CAPA is allowed after login too.
  const capa = await client.command('CAPA', clock.deadline, 'lines');
  const pipeliningOffered = capa.ok && (capa.lines ?? []).some((line) => /^PIPELINING\b/i.test(line));
  const window = opts.pipelining && pipeliningOffered ? opts.window : 1;

  let started = performance.now();
  const list = expectOk(await client.command('LIST', clock.deadline, 'lines'), 'LIST');
  const listMs = list.at - started;
  const sizes = new Map<number, number>();
  for (const line of list.lines!) {
    const match = /^(\d+) (\d+)/.exec(line);
    if (match) sizes.set(Number(match[1]), Number(match[2]));
  }

  started = performance.now();
  const uidl = expectOk(await client.command('UIDL', clock.deadline, 'lines'), 'UIDL');
  const uidlMs = uidl.at - started;
  const uids = uidl.lines!.map((line) => line.split(' ')[1] ?? '');

  // Messages this run filled in are the last `filled` ones (as long as
  // nothing else arrived meanwhile): message n carries X-Bench-Seq n - before.
  const before = stat.messages - opts.filled;
  const numbers = [...sizes.keys()];
  const result: DownloadResult = {
    pipelined: window > 1,
    pipeliningOffered,
    window,
    listMs,
    listed: sizes.size,
    uidlMs,
    uids: uids.length,
    uniqueUids: new Set(uids).size,
    retrieved: 0,
    refused: 0,
    refusedSample: null,
    messageOctets: 0,
    wireBytes: 0,
    retrSeconds: 0,
    cpu: null,
    sizeMismatches: 0,
    mismatchSamples: [],
    bareLf: 0,
    unexpectedSizes: 0,
    seqChecked: 0,
    seqWrong: 0,
  };
  if (opts.filled > 0) {
    for (const [n, size] of sizes) if (n > before && size !== opts.filledSize) result.unexpectedSizes++;
  }

  // RETR in a window: `window` commands in flight, one more sent as each
  // answer completes (window 1: one at a time). Bounded by the message count.
  const bytesBefore = client.bytesReceived;
  const meter = new CpuMeter(opts.pid);
  started = performance.now();
  let lastAt = started;
  let sent = 0;
  for (; sent < Math.min(window, numbers.length); sent++) client.send(`RETR ${numbers[sent]}`, 'count');
  for (let done = 0; done < numbers.length; done++) {
    const response = await client.read(clock.deadline);
    if (sent < numbers.length) client.send(`RETR ${numbers[sent++]}`, 'count');
    lastAt = response.at;
    const n = numbers[done];
    if (!response.ok) {
      result.refused++;
      result.refusedSample ??= `RETR ${n}: -ERR ${response.text}`;
      continue;
    }
    result.retrieved++;
    result.messageOctets += response.octets!;
    result.bareLf += response.bareLf!;
    if (response.octets !== sizes.get(n)) {
      result.sizeMismatches++;
      if (result.mismatchSamples.length < 5) result.mismatchSamples.push(`RETR ${n}: ${response.octets} octets, LIST said ${sizes.get(n)}`);
    }
    if (opts.filled > 0 && n > before) {
      result.seqChecked++;
      const seq = /^X-Bench-Seq: (\d+)\r?$/m.exec(response.head!.toString('latin1'));
      if (!seq || Number(seq[1]) !== n - before) result.seqWrong++;
    }
  }
  result.retrSeconds = (lastAt - started) / 1000;
  result.wireBytes = client.bytesReceived - bytesBefore;
  result.cpu = meter.stop();
  return result;
}
