// IMAP store benchmark: what SELECT, FETCH 1:* (UID FLAGS RFC822.SIZE),
// STORE and IDLE cost the store on a big mailbox, without the network.
//
//   node scripts/bench-imap-store.ts [--messages 50000] [--size 4200] [--handles 1000] [--dir DIR]
//
// It fills an mbox (scripts/lib/mbox-fill.ts; 50,000 x 4,200 octets is
// about 213 MB, the size the IMAP issue measures against Dovecot), then:
//  1. first open: no index yet, so one sequential read of the whole mbox
//     builds it (the first SELECT);
//  2. later open (a later LOGIN + SELECT), median of 5: soon after the last
//     session closed (the registry kept the index in memory: one stat and a
//     lock), and after that was dropped (the index file read and parsed);
//  3. listing: UID, flags and size of every message from the snapshot, as
//     FETCH 1:* (UID FLAGS RFC822.SIZE) needs them, without message bodies:
//     the store's part alone, and with the response lines formatted;
//  4. one flag change (STORE +FLAGS (\Seen) on one message): time, and the
//     bytes written (the flag journal grows; the index is not rewritten);
//  5. a delivery seen by an open mailbox: append + refresh, and the bytes
//     written for it (the journal again, not the index);
//  6. memory: bytes per message of the index in memory, and of N more
//     handles on the open mailbox, each holding its snapshot (IDLE sessions);
//  7. reading messages through the checked read path (message-reader.ts),
//     as RETR and FETCH BODY[] do, in messages per second.
// Targets from the issue: first SELECT <= 1.0 s, later LOGIN+SELECT <=
// 15 ms, FETCH 1:* <= 60 ms, 1,000 IDLE sessions <= 40 MB (the whole
// session; the store's share is printed), STORE without an index rewrite.
// Every loop is bounded; everything happens in a temporary directory,
// removed at the end unless --dir is given.

import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { integer, UsageError } from './lib/args.ts';
import { fillMbox } from './lib/mbox-fill.ts';
import { flagJournalPathFor } from '../src/store/flag-journal.ts';
import { dropIdleMailboxes } from '../src/store/mailbox-registry.ts';
import { openMailbox } from '../src/store/mailbox.ts';
import type { Mailbox, MailboxChange } from '../src/store/mailbox.ts';
import { MboxAppender } from '../src/store/mbox-append.ts';
import { indexPathFor } from '../src/store/mbox-index.ts';
import { mailboxTouched } from '../src/store/mailbox-registry.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : (process.argv[at + 1] ?? '');
}

function liveBytes(): number {
  gc();
  gc();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.size, () => 0);
}

const ms = (t: number) => `${t.toFixed(1)} ms`;
const MB = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

// Wall time, and (for a busy machine, where the wall clock also counts
// other processes) this process's CPU time, in ms.
let lastCpuMs = 0;
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  const result = await fn();
  const used = process.cpuUsage(cpu);
  lastCpuMs = (used.user + used.system) / 1000;
  return [result, performance.now() - start];
}

async function main(): Promise<void> {
  const messages = integer('--messages', option('--messages', '50000'), 1, 1_000_000);
  const size = integer('--size', option('--size', '4200'), 400, 10_000_000);
  const handles = integer('--handles', option('--handles', '1000'), 1, 100_000);
  const given = option('--dir', '');
  const dir = given || (await mkdtemp(path.join(tmpdir(), 'bench-imap-store-')));
  const mbox = path.join(dir, 'bench', 'INBOX');
  try {
    if ((await sizeOf(mbox)) === 0) {
      const fill = await fillMbox({ mboxPath: mbox, count: messages, size, runId: String(process.pid), to: 'bench@localhost', deadline: Date.now() + 600_000 });
      console.log(`filled: ${fill.messages} messages, ${MB(fill.bytes)} in ${fill.seconds.toFixed(1)} s`);
    }
    console.log(`mbox: ${MB(await sizeOf(mbox))}`);

    // 1. First open: builds the index.
    for (const file of [indexPathFor(mbox), flagJournalPathFor(mbox)]) await unlink(file).catch(() => {});
    const before = liveBytes();
    const [first, firstMs] = await timed(() => openMailbox(mbox));
    const count = first.snapshot().uids.length;
    const indexMemory = liveBytes() - before;
    console.log(`first open (index build):        ${ms(firstMs)}, CPU ${ms(lastCpuMs)} (${count} messages, index file ${MB(await sizeOf(indexPathFor(mbox)))})`);
    await first.close();

    // 2. Later opens: from memory (kept after the last close), and from the index file.
    const median = (times: number[]) => times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    const warm: number[] = [];
    const cold: number[] = [];
    const coldCpu: number[] = [];
    for (let i = 0; i < 5; i++) {
      await dropIdleMailboxes();
      const [read, u] = await timed(() => openMailbox(mbox)); // nothing in memory
      cold.push(u);
      coldCpu.push(lastCpuMs);
      await read.close(); // kept in memory a while
      const [kept, t] = await timed(() => openMailbox(mbox));
      warm.push(t);
      await kept.close();
    }
    console.log(`later open, index in memory:     ${ms(median(warm))} median of 5`);
    console.log(`later open, index file read:     ${ms(median(cold))} median of 5 (${cold.map((t) => t.toFixed(1)).join(', ')}), CPU ${ms(median(coldCpu))}`);
    console.log(`(load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} CPUs: wall times include other processes)`);

    // 3. Listing from a snapshot.
    const box = await openMailbox(mbox);
    const bare: number[] = [];
    const formatted: number[] = [];
    for (let round = 0; round < 5; round++) {
      let start = performance.now();
      let octets = 0;
      for (const uid of box.snapshot().uids) {
        const m = box.message(uid)!;
        octets += m.size + m.flags.length + m.uid;
      }
      bare.push(performance.now() - start);
      start = performance.now();
      let lines = 0;
      for (const uid of box.snapshot().uids) {
        const m = box.message(uid)!;
        // What FETCH writes: "* n FETCH (UID u FLAGS (...) RFC822.SIZE s)".
        const line = `* ${++lines} FETCH (UID ${m.uid} FLAGS (${m.flags.join(' ')}) RFC822.SIZE ${m.size})\r\n`;
        octets += line.length;
      }
      formatted.push(performance.now() - start);
      if (octets === 0 && count > 0) throw new Error('nothing listed');
    }
    console.log(`list UID/FLAGS/SIZE of all:      ${ms(median(bare))} (store only), ${ms(median(formatted))} with FETCH lines formatted, medians of 5`);

    // 4. One flag change.
    const indexBefore = await stat(indexPathFor(mbox));
    const journalBefore = await sizeOf(flagJournalPathFor(mbox));
    const target = box.snapshot().uids[Math.floor(count / 2)];
    const [, storeMs] = await timed(() => box.setFlags([target], 'add', ['\\Seen']));
    const indexAfter = await stat(indexPathFor(mbox));
    const written = (await sizeOf(flagJournalPathFor(mbox))) - journalBefore;
    const rewritten = indexAfter.mtimeMs !== indexBefore.mtimeMs || indexAfter.ino !== indexBefore.ino;
    console.log(`one flag change:                 ${ms(storeMs)}, ${written} bytes to the flag journal, index ${rewritten ? 'REWRITTEN' : 'not rewritten'}`);
    const stores = Math.min(count, 200);
    const [, manyMs] = await timed(async () => {
      for (let i = 0; i < stores; i++) await box.setFlags([box.snapshot().uids[i]], 'add', ['$Bench']);
    });
    console.log(`${stores} flag changes, one by one:    ${ms(manyMs / stores)} each`);

    // 5. A delivery noticed by the open mailbox.
    const arrived = new Promise<MailboxChange>((resolve) => box.once('changed', resolve));
    const indexStat = await stat(indexPathFor(mbox));
    const journalSize = await sizeOf(flagJournalPathFor(mbox));
    const [, deliverMs] = await timed(async () => {
      await new MboxAppender().append(mbox, { envelopeFrom: 'a@b', date: new Date(), content: async function* () { yield Buffer.from('Subject: new\n\nnew mail\n'); } });
      mailboxTouched(mbox);
      await arrived;
    });
    const indexRewritten = (await stat(indexPathFor(mbox))).mtimeMs !== indexStat.mtimeMs;
    const journalGrowth = (await sizeOf(flagJournalPathFor(mbox))) - journalSize;
    console.log(`delivery seen by an open mailbox: ${ms(deliverMs)} (append and fsync, refresh: ${journalGrowth} bytes to the journal, index ${indexRewritten ? 'REWRITTEN' : 'not rewritten'})`);

    // 7 (before the handles below). Reading messages through the checked read path (POP3 RETR, IMAP BODY[]).
    const sample = Math.min(count, 5000);
    const [octets, readMs] = await timed(async () => {
      let total = 0;
      const uids = box.snapshot().uids;
      for (let i = 0; i < sample; i++) for await (const chunk of box.read(uids[i])) total += chunk.length;
      return total;
    });
    console.log(`read ${sample} messages (checked):  ${((sample / readMs) * 1000).toFixed(0)} messages/s, ${(octets / 1e6 / (readMs / 1000)).toFixed(0)} MB/s`);

    // 6. Memory.
    const base = liveBytes();
    const more: Mailbox[] = [];
    const views: unknown[] = [];
    for (let i = 0; i < handles; i++) {
      const handle = await openMailbox(mbox);
      handle.on('changed', () => {});
      handle.on('flags', () => {});
      views.push(handle.snapshot());
      more.push(handle);
    }
    const perHandle = (liveBytes() - base) / handles;
    console.log(`index in memory:                 ${(indexMemory / count).toFixed(0)} bytes per message (${MB(indexMemory)} for ${count})`);
    console.log(`${handles} more handles with snapshots: ${(perHandle / 1024).toFixed(2)} KiB each (${MB(perHandle * handles)} in all)`);
    for (const handle of more) await handle.close();
    await box.close();
    if (views.length !== handles) throw new Error('lost a view');
  } finally {
    if (!given) await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err instanceof UsageError ? `usage: ${err.message}` : err);
  process.exitCode = 1;
});
