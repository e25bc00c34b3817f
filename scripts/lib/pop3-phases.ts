// bench-pop3's phases: a maildrop filled with N messages of S bytes, then
// --count-sessions login+STAT sessions and (unless first-answer-only) one
// download session. With --start-server each phase gets a fresh server of
// this project's; the result's JSON form is here too.

import { randomBytes } from 'node:crypto';
import { POP3_SETTINGS, prepareProjectServer } from './bench-server.ts';
import { CpuMeter } from './cpu-meter.ts';
import type { CpuUse } from './cpu-meter.ts';
import { formatSize, round } from './format.ts';
import { fillMbox } from './mbox-fill.ts';
import type { FillResult } from './mbox-fill.ts';
import { median, readMemory } from './measure.ts';
import { download, loginAndStat, retrRate } from './pop3-session.ts';
import type { Clock, DownloadResult, LoginTiming, Target } from './pop3-session.ts';
import { scryptCost } from './scrypt-cost.ts';
import type { ScryptCost } from './scrypt-cost.ts';

const MiB = 1024 * 1024;
const MB = 1_000_000;

export interface PhaseSpec {
  label: string;
  fill: number;
  size: number;
  full: boolean;
  /** The targets apply (the 5,000-message phase). */
  targets: boolean;
}

export interface PhaseResult {
  spec: PhaseSpec;
  fill: FillResult | null;
  sessions: LoginTiming[];
  download: DownloadResult | null;
  downloadLogin: LoginTiming | null;
  /** The same download again in new sessions (--downloads): the server's code warm. */
  laterDownloads: DownloadResult[];
  errors: string[];
  serverPeakRss: number | null;
  /** Where the CPU went from the first connect to the end of the phase. */
  cpu: CpuUse | null;
}

/** What the sessions find; the caller adds the fill and the server's memory. */
type Measured = Omit<PhaseResult, 'fill' | 'serverPeakRss'>;

/** The part of bench-pop3's options the phases use. */
export interface PhaseOptions {
  user: string;
  password: string;
  auth: 'user' | 'plain';
  tls: boolean;
  pipelining: boolean;
  window: number;
  sessions: number;
  /** Download sessions: the first, then the same again. */
  downloads: number;
  dir: string;
  nodeArgs: string[];
}

/** The login+STAT sessions, then (unless first-answer-only) the download session. */
export async function runSessions(
  spec: PhaseSpec,
  target: Target,
  opts: PhaseOptions,
  pid: number | null,
  clock: Clock,
): Promise<Measured> {
  const meter = new CpuMeter(pid);
  const result: Measured = { spec, sessions: [], download: null, downloadLogin: null, laterDownloads: [], errors: [], cpu: null };
  try {
    await measureSessions(result, spec, target, opts, pid, clock);
  } finally {
    result.cpu = meter.stop();
  }
  return result;
}

async function measureSessions(
  result: Measured,
  spec: PhaseSpec,
  target: Target,
  opts: PhaseOptions,
  pid: number | null,
  clock: Clock,
): Promise<void> {
  for (let i = 0; i < opts.sessions && Date.now() < clock.deadline; i++) {
    try {
      const { client, timing } = await loginAndStat(target, clock);
      result.sessions.push(timing);
      await client.quit(Math.min(clock.deadline, Date.now() + 10_000));
    } catch (err) {
      result.errors.push(`session ${i + 1}: ${(err as Error).message}`);
      if (i === 0) return; // the first login failing says enough
    }
  }
  for (let i = 0; i < opts.downloads && spec.full && Date.now() < clock.deadline; i++) {
    try {
      const { client, timing } = await loginAndStat(target, clock);
      try {
        const done = await download(client, timing, { pipelining: opts.pipelining, window: opts.window, filled: spec.fill, filledSize: spec.size, pid }, clock);
        if (i === 0) [result.download, result.downloadLogin] = [done, timing];
        else result.laterDownloads.push(done);
      } finally {
        await client.quit(Math.min(clock.deadline, Date.now() + 10_000));
      }
    } catch (err) {
      result.errors.push(`download session ${i + 1}: ${(err as Error).message}`);
      return;
    }
  }
}

export async function fillPhase(mboxPath: string, spec: PhaseSpec, user: string, clock: Clock): Promise<FillResult | null> {
  if (spec.fill === 0) return null;
  console.error(`bench-pop3: filling ${mboxPath} with ${spec.fill} x ${formatSize(spec.size, true)}...`);
  const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  return fillMbox({ mboxPath, count: spec.fill, size: spec.size, runId, to: `${user}@localhost`, deadline: clock.deadline });
}

/** A phase on a fresh server of this project's: prepare, fill, start, measure, remove. */
export async function startedPhase(
  spec: PhaseSpec,
  opts: PhaseOptions,
  address: string,
  clock: Clock,
): Promise<{ result: PhaseResult; scrypt: ScryptCost | null; pid: number }> {
  const prepared = await prepareProjectServer({
    name: 'bench-pop3',
    listener: opts.tls ? 'pop3s' : 'pop3',
    account: opts.user,
    password: opts.password,
    host: address,
    parentDir: opts.dir,
    nodeArgs: opts.nodeArgs,
    settings: POP3_SETTINGS,
  });
  try {
    const fill = await fillPhase(prepared.mboxPath, spec, opts.user, clock);
    const scrypt = await scryptCost(prepared.passwdPath, opts.user, opts.password);
    console.error(`bench-pop3: starting the server (${spec.label})...`);
    const server = await prepared.start();
    const target: Target = { address, port: server.port, tls: opts.tls, user: opts.user, password: opts.password, auth: opts.auth };
    const measured = await runSessions(spec, target, opts, server.pid, clock);
    const memory = readMemory(server.pid);
    if (measured.errors.length > 0) console.error(`--- server log (last lines) ---\n${await server.logTail()}`);
    return { result: { ...measured, fill, serverPeakRss: memory?.hwm ?? null }, scrypt, pid: server.pid };
  } finally {
    await prepared.remove();
  }
}

/** The sessions after the first: what a mail client polling every few minutes costs. */
export function laterSessions(result: PhaseResult): LoginTiming[] {
  return result.sessions.slice(1);
}

/** True when the phase ran cleanly (targets aside). */
export function clean(result: PhaseResult): boolean {
  const downloadOk = (dl: DownloadResult) => dl.refused === 0 && dl.sizeMismatches === 0 && dl.seqWrong === 0 && dl.uniqueUids === dl.uids && dl.retrieved === dl.listed;
  const downloads = [...(result.download ? [result.download] : []), ...result.laterDownloads];
  return result.errors.length === 0 && result.sessions.length > 0 && downloads.every(downloadOk);
}

function cpuJson(cpu: CpuUse | null): Record<string, number | null> | null {
  return cpu ? { seconds: round(cpu.seconds, 3), server: round(cpu.server, 3), client: round(cpu.client, 3), others: round(cpu.others, 3), cores: cpu.cores } : null;
}

/** The phase as the JSON line after the report gives it. */
export function phaseJson(result: PhaseResult): Record<string, unknown> {
  const dl = result.download;
  const rest = laterSessions(result).map((t) => t.statMs);
  return {
    label: result.spec.label,
    fill: result.spec.fill,
    size: result.spec.size,
    fillSeconds: round(result.fill?.seconds, 3),
    mboxBytes: result.fill?.bytes ?? null,
    messages: result.sessions[0]?.messages ?? null,
    octets: result.sessions[0]?.octets ?? null,
    firstMs: round(result.sessions[0]?.statMs),
    laterMedianMs: rest.length ? round(median(rest)) : null,
    laterMaxMs: rest.length ? round(Math.max(...rest)) : null,
    sessions: result.sessions.map((t) => ({
      connectMs: round(t.connectMs),
      greetingMs: round(t.greetingMs),
      userMs: round(t.userMs),
      loginMs: round(t.loginMs),
      statMs: round(t.statMs),
    })),
    download: dl
      ? {
          pipelined: dl.pipelined,
          window: dl.window,
          listMs: round(dl.listMs),
          uidlMs: round(dl.uidlMs),
          uids: dl.uids,
          uniqueUids: dl.uniqueUids,
          retrieved: dl.retrieved,
          refused: dl.refused,
          retrSeconds: round(dl.retrSeconds, 3),
          cpu: cpuJson(dl.cpu),
          msgPerSec: round(retrRate(dl), 0),
          mbPerSec: round(dl.messageOctets / MB / dl.retrSeconds),
          messageOctets: dl.messageOctets,
          wireBytes: dl.wireBytes,
          sizeMismatches: dl.sizeMismatches,
          bareLf: dl.bareLf,
          seqChecked: dl.seqChecked,
          seqWrong: dl.seqWrong,
          unexpectedSizes: dl.unexpectedSizes,
        }
      : null,
    laterDownloads: result.laterDownloads.map((later) => ({ msgPerSec: round(retrRate(later), 0), retrieved: later.retrieved, cpu: cpuJson(later.cpu) })),
    cpu: cpuJson(result.cpu),
    serverPeakRssMiB: result.serverPeakRss === null ? null : round(result.serverPeakRss / MiB, 1),
    errors: result.errors,
  };
}
