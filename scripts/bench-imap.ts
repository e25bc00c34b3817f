// IMAP benchmark: how an IMAP server copes with a big mbox INBOX (50,000
// messages, about 213 MB, one of them 25 MiB), measured over a raw socket
// to each command's tagged OK, with the issue's targets beside each figure.
//
//   node scripts/bench-imap.ts --start-server
//   node scripts/bench-imap.ts --start-server --messages 5000 --idle-sessions 100
//   node scripts/bench-imap.ts --port 10143 --user bench --password bench \
//        --mbox DIR/INBOX --index-dir DIR --pid PID        (any other server)
//
// Phases, in order (--phases picks some; each has a count and a time limit):
//   first-select   the first SELECT of the freshly filled INBOX (index build)
//   later-select   connect+LOGIN+SELECT, median of 20 sessions
//   fetch-sizes    FETCH 1:* (UID FLAGS RFC822.SIZE), median of 5; the
//                  server's read() bytes show whether it read any body
//   random-bodies  100 random UID FETCH n BODY.PEEK[], total; then the same
//                  after 2,000 more, untimed (the code warm)
//   big-body       BODY[] of the 25 MiB message: time, and the server's RSS
//                  growth; again with the client not reading for 2 s
//   store          STORE +FLAGS on one message: time, files changed in the
//                  mailbox's directory, bytes the server wrote
//   idle           --idle-sessions sessions in IDLE: the server's memory
//                  before and after, per session; then one flag change and
//                  how many idlers heard of it
// With --start-server, big-body and idle run on a restarted server (the
// index already built): a garbage-collected heap stays as large as the
// earlier phases made it, and would hide the growth they measure; so do
// envelope-first and search-first, so nothing the process holds helps them.
// Part 2 of the issue (lib/imap-cache-phases.ts):
//   envelope-first FETCH 1:* (ENVELOPE) on a restarted server, the first
//                  time it is asked; envelope-later the same, median of 3
//   search-first   SEARCH FROM "someone" (about 1% of the messages are from
//                  someone@example.net) on a restarted server, the first
//                  time; search-later the same, median of 5
//   search-body    SEARCH BODY of a word in no message: the time, and the
//                  bytes the server read beside the mailbox's size (each
//                  message read at most once?)
//   changedsince   FETCH 1:* (FLAGS) (CHANGEDSINCE m) after 10 changes
//
// With --start-server the mailbox is filled before the server starts, so the
// first SELECT is the first time it sees it. Against another server, --mbox
// names the INBOX file to fill before the first session (it must not exist
// yet or be empty, and the server must not have an index of it); without
// --mbox the mailbox is used as it is and the first SELECT is not fresh.
// --pid (the server's process; its children are counted too) enables the
// memory and I/O figures, --index-dir (the directory of the mbox and its
// index files) the file changes of the STORE phase. The mailbox's page cache
// is warm (it was just written), for every server alike.
//
// Side by side with Dovecot 2.3 (Debian's dovecot-imapd) on the same
// machine, as root; nothing of it belongs in the repository:
//
//   apt-get update && apt-get install -y dovecot-imapd
//   D=/tmp/dcbench; mkdir -p $D/run $D/mail/bench
//   touch $D/mail/bench/INBOX; chown -R nobody:nogroup $D/mail
//   echo 'bench:{PLAIN}bench' > $D/passwd
//   cat > $D/dovecot.conf <<EOF
//   protocols = imap
//   listen = 127.0.0.1
//   base_dir = $D/run
//   state_dir = $D/run
//   log_path = $D/dovecot.log
//   ssl = no
//   disable_plaintext_auth = no
//   mail_location = mbox:$D/mail/%u:INBOX=$D/mail/%u/INBOX
//   passdb {
//     driver = passwd-file
//     args = $D/passwd
//   }
//   userdb {
//     driver = static
//     args = uid=nobody gid=nogroup home=$D/mail/%u
//   }
//   service imap-login {
//     inet_listener imap {
//       address = 127.0.0.1
//       port = 10143
//     }
//     inet_listener imaps {
//       port = 0
//     }
//     process_limit = 64
//     client_limit = 2000
//   }
//   service imap {
//     process_limit = 2000
//     client_limit = 1
//   }
//   service anvil {
//     client_limit = 5000
//   }
//   default_client_limit = 5000
//   mail_max_userip_connections = 2000
//   EOF
//   dovecot -c $D/dovecot.conf
//   node scripts/bench-imap.ts --port 10143 --user bench --password bench \
//     --mbox $D/mail/bench/INBOX --index-dir $D/mail/bench --pid $(cat $D/run/master.pid)
//   doveadm -c $D/dovecot.conf stop; rm -rf $D
//
// Dovecot runs one `imap` process per session, so its memory is the sum of
// PSS over the tree (about 0.6 MiB per idle session). Each process watches
// the mailbox with inotify; past fs.inotify.max_user_instances (128 per
// user by default) it logs a warning and checks every 30 s instead, which
// is why its later idlers hear of a change only after up to 30 s.
//
// Safe by construction: loopback targets only, every loop bounded in count
// and time, only Node's built-in modules (and, to fill the mailbox and run
// this project's server, this project's own code). This file reads the
// options, runs the phases and prints; scripts/lib/ holds the parts: the
// raw-socket client (imap-client.ts), sessions and the shared types
// (imap-session.ts), the phases (imap-phases.ts, imap-store-phase.ts,
// imap-idle.ts), the mailbox (imap-mailbox.ts), /proc figures (proc-tree.ts)
// and this project's server (bench-server.ts).

import { rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { UsageError, failed, integer, loopbackAddress, parseSize } from './lib/args.ts';
import { imapSettings, prepareProjectServer } from './lib/bench-server.ts';
import type { PreparedServer } from './lib/bench-server.ts';
import { CpuMeter, describeCpu } from './lib/cpu-meter.ts';
import type { CpuUse } from './lib/cpu-meter.ts';
import { round } from './lib/format.ts';
import { fillMailbox } from './lib/imap-mailbox.ts';
import type { MailboxFill } from './lib/imap-mailbox.ts';
import { IDLE_PHASE } from './lib/imap-idle.ts';
import { FETCH_PHASES, mib } from './lib/imap-phases.ts';
import { collectClientGarbage } from './lib/client-gc.ts';
import type { BenchContext, Phase, Row } from './lib/imap-session.ts';
import { STORE_PHASE } from './lib/imap-store-phase.ts';
import { CACHE_PHASES } from './lib/imap-cache-phases.ts';
import { journalPathFor } from '../src/store/append-journal.ts';
import { cpuBetween, treeCpu, treeMemory } from './lib/proc-tree.ts';

const PHASES: Phase[] = [...FETCH_PHASES, STORE_PHASE, ...CACHE_PHASES, IDLE_PHASE];

const USAGE = `usage: node scripts/bench-imap.ts [options]
  --start-server        run this project's server on a fresh data dir, the mailbox
                        filled before it starts (fills in port, pid, mbox, index dir)
  --host H              server address, loopback only (default 127.0.0.1)
  --port P              IMAP port (default 2143)
  --user NAME           account (default jjordan)
  --password PW         its password (default secret)
  --mbox FILE           another server's INBOX file, filled before the first session
  --index-dir DIR       another server's directory of the mbox and its index (STORE phase)
  --pid PID             another server's process (with its children): memory and I/O
  --messages N          messages in the mailbox, the big one included (default 50000)
  --size S              average size of the others: 3.55k (default: about 213 MB in all)
  --big-size S          the big message (default 25m; 0: none)
  --idle-sessions N     sessions in IDLE (default 1000)
  --phases LIST         comma-separated, from: ${PHASES.map((p) => p.name).join(', ')} (default all)
  --phase-timeout SEC   bound on each phase (default 300)
  --timeout SEC         bound on the whole run (default 1800)
  --dir DIR             where --start-server makes its data dir (default: the temp dir)
  --node-arg=ARG        extra node option for the started server, repeatable`;

const MAX_MESSAGES = 1_000_000;
/** Other processes busier than this share of the machine make a phase's times suspect. */
const NOISY_SHARE = 0.1;
const MAX_SESSIONS = 10_000;
const MiB = 1024 * 1024;

interface Options {
  host: string;
  port: number;
  user: string;
  password: string;
  startServer: boolean;
  mbox: string | null;
  indexDir: string | null;
  pid: number | null;
  messages: number;
  size: number;
  bigSize: number;
  idleSessions: number;
  phases: Phase[];
  phaseSeconds: number;
  timeoutSeconds: number;
  dir: string;
  nodeArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'start-server': { type: 'boolean', default: false },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '2143' },
      user: { type: 'string', default: 'jjordan' },
      password: { type: 'string', default: 'secret' },
      mbox: { type: 'string' },
      'index-dir': { type: 'string' },
      pid: { type: 'string' },
      messages: { type: 'string', default: '50000' },
      size: { type: 'string', default: '3.55k' },
      'big-size': { type: 'string', default: '25m' },
      'idle-sessions': { type: 'string', default: '1000' },
      phases: { type: 'string', default: PHASES.map((p) => p.name).join(',') },
      'phase-timeout': { type: 'string', default: '300' },
      timeout: { type: 'string', default: '1800' },
      dir: { type: 'string' },
      'node-arg': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const startServer = values['start-server'];
  if (startServer && (values.mbox !== undefined || values['index-dir'] !== undefined || values.pid !== undefined)) {
    throw new UsageError('--start-server picks the mbox, the index dir and the pid itself');
  }
  if (/[\r\n\0"\\]/.test(values.user + values.password)) throw new UsageError('--user and --password cannot hold CR, LF, NUL, " or \\');
  const phases = values.phases.split(',').map((name) => {
    const phase = PHASES.find((p) => p.name === name.trim());
    if (!phase) throw new UsageError(`--phases: no phase ${JSON.stringify(name)}`);
    return phase;
  });
  const bigSize = values['big-size'] === '0' ? 0 : parseSize(values['big-size'], 1024 * MiB);
  return {
    host: values.host,
    port: integer('--port', values.port, 1, 65535),
    user: values.user,
    password: values.password,
    startServer,
    mbox: values.mbox ?? null,
    indexDir: values['index-dir'] ?? null,
    pid: values.pid === undefined ? null : integer('--pid', values.pid, 1, 2 ** 31),
    messages: integer('--messages', values.messages, bigSize > 0 ? 2 : 1, MAX_MESSAGES),
    size: parseSize(values.size, 64 * MiB),
    bigSize,
    idleSessions: integer('--idle-sessions', values['idle-sessions'], 1, MAX_SESSIONS),
    phases,
    phaseSeconds: integer('--phase-timeout', values['phase-timeout'], 1, 24 * 3600),
    timeoutSeconds: integer('--timeout', values.timeout, 1, 24 * 3600),
    dir: values.dir ?? tmpdir(),
    nodeArgs: values['node-arg'],
  };
}

// ---------------------------------------------------------------------------
// Report

function printRow(row: Row): void {
  const verdict = row.target === '' ? '' : `target ${row.target}: ${row.met === null ? 'unknown' : row.met ? 'met' : 'MISSED'}`;
  console.log(`${row.label.padEnd(48)} ${row.figure.padEnd(24)} ${verdict}`);
  for (const note of row.notes) console.log(`    ${note}`);
}

/** "CPU: server 1.20 s, this client 0.31 s, other processes 0.05 s; 2.1 s on 2 cores", and a warning when others were busy. */
function cpuLine(use: CpuUse, server: number | null): string {
  const others = use.others === null ? null : Math.max(0, use.others - (server ?? 0));
  const parts = [`server ${server === null ? '?' : describeCpu(server, use.seconds)}`, `this client ${describeCpu(use.client, use.seconds)}`];
  if (others !== null) parts.push(`other processes ${describeCpu(others, use.seconds)}`);
  let line = `CPU: ${parts.join(', ')}; ${use.seconds.toFixed(1)} s on ${use.cores} cores`;
  if (others !== null && others / (use.seconds * use.cores) > NOISY_SHARE) {
    line += `\n    WARNING: other processes kept ${((100 * others) / (use.seconds * use.cores)).toFixed(0)}% of the machine busy: the times above are suspect`;
  }
  return line;
}

function fillLine(fill: MailboxFill, opts: Options): string {
  return (
    `mailbox: ${fill.messages} messages (average ${(fill.bytes / fill.messages / 1024).toFixed(1)} KiB; ` +
    `${opts.bigSize ? `#${fill.bigSeq} is ${mib(opts.bigSize)}, ` : ''}the others ${(opts.size / 1024).toFixed(2)} KiB on average), ` +
    `${(fill.bytes / 1e6).toFixed(1)} MB of mbox, written in ${fill.seconds.toFixed(1)} s`
  );
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`bench-imap: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const runDeadline = Date.now() + opts.timeoutSeconds * 1000;
  let prepared: PreparedServer | null = null;
  const stop = () => prepared?.remove();
  process.once('SIGINT', () => {
    console.error('bench-imap: interrupted');
    void Promise.resolve(stop()).finally(() => process.exit(130));
  });

  try {
    const address = await loopbackAddress(opts.host);
    const ctx: BenchContext = {
      target: { host: address, port: opts.port, user: opts.user, password: opts.password },
      serverPid: opts.pid,
      indexDir: opts.indexDir,
      runDeadline,
      phaseMs: opts.phaseSeconds * 1000,
      idleSessions: opts.idleSessions,
      restartServer: null,
      mailbox: null,
    };
    const mailbox = { messages: opts.messages, averageSize: opts.size, bigSize: opts.bigSize, deadline: runDeadline };
    let fill: MailboxFill | null = null;
    let description: string;
    if (opts.startServer) {
      prepared = await prepareProjectServer({
        name: 'bench-imap',
        listener: 'imap',
        account: opts.user,
        password: opts.password,
        host: address,
        parentDir: opts.dir,
        nodeArgs: opts.nodeArgs,
        settings: imapSettings(opts.idleSessions),
      });
      fill = await fillMailbox({ ...mailbox, mboxPath: prepared.mboxPath });
      const running = await prepared.start();
      ctx.target.port = running.port;
      ctx.serverPid = running.pid;
      ctx.indexDir = dirname(prepared.mboxPath);
      const server = prepared;
      ctx.restartServer = async () => {
        await server.stop();
        const restarted = await server.start();
        ctx.target.port = restarted.port;
        ctx.serverPid = restarted.pid;
      };
      description = `this project's server (pid ${running.pid}), started by the benchmark on ${address}:${running.port}`;
    } else {
      if (opts.mbox) {
        fill = await fillMailbox({ ...mailbox, mboxPath: opts.mbox });
        // The appender's crash journal (append-journal.ts) is this project's;
        // another server would take the file for a mailbox (Dovecot does).
        await rm(journalPathFor(opts.mbox), { force: true });
      }
      description = `the server on ${address}:${opts.port}${opts.pid ? ` (pid ${opts.pid} and its children)` : ''}`;
    }
    console.log(`bench-imap: ${description}; node ${process.version}`);
    console.log(fill ? fillLine(fill, opts) : 'mailbox: as found (no --mbox): the first SELECT is not a fresh one');

    const results: { phase: string; rows?: Row[]; error?: string }[] = [];
    for (const phase of opts.phases) {
      if (Date.now() >= runDeadline) {
        console.log(`TIMED OUT after ${opts.timeoutSeconds} s (--timeout): ${phase.name} and later phases not run`);
        break;
      }
      if (phase.freshServer && ctx.restartServer) {
        const rssBefore = ctx.serverPid ? treeMemory(ctx.serverPid, false).rss : null;
        await ctx.restartServer();
        console.log(`(${phase.name}: on a restarted server, pid ${ctx.serverPid}; the earlier phases had left it at RSS ${rssBefore === null ? '?' : mib(rssBefore)})`);
      }
      collectClientGarbage(); // (the earlier phases' garbage, not collected inside this one's timed commands)
      const meter = new CpuMeter(null);
      const cpuBefore = ctx.serverPid ? treeCpu(ctx.serverPid) : null;
      try {
        const rows = await phase.run(ctx);
        rows.forEach(printRow);
        console.log(`    ${cpuLine(meter.stop(), ctx.serverPid && cpuBefore ? cpuBetween(cpuBefore, treeCpu(ctx.serverPid)) : null)}`);
        if (ctx.serverPid) console.log(`    server memory now: RSS ${mib(treeMemory(ctx.serverPid, false).rss)}`);
        results.push({ phase: phase.name, rows });
      } catch (err) {
        console.log(`${phase.name}: FAILED: ${(err as Error).message}`);
        results.push({ phase: phase.name, error: (err as Error).message });
      }
    }
    const roundOne = (v: unknown): unknown => (typeof v === 'number' ? round(v) : Array.isArray(v) ? v.map(roundOne) : v);
    const roundAll = (json: Record<string, unknown>) => Object.fromEntries(Object.entries(json).map(([k, v]) => [k, roundOne(v)]));
    console.log(
      JSON.stringify({
        bench: 'imap',
        date: new Date().toISOString(),
        node: process.version,
        server: opts.startServer ? 'started' : 'external',
        mailbox: fill && { messages: fill.messages, bytes: fill.bytes, bigSize: opts.bigSize },
        phases: results.map((r) => ({
          phase: r.phase,
          error: r.error,
          rows: r.rows?.map((row) => ({ label: row.label, target: row.target, met: row.met, ...roundAll(row.json) })),
        })),
      }),
    );
    return results.every((r) => !r.error) ? 0 : 1;
  } catch (err) {
    return failed('bench-imap', err);
  } finally {
    await stop();
  }
}

process.exitCode = await main();
