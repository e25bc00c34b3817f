// A separate process taking the mbox dot-lock, for dotlock.test.ts: lock
// files are shared between processes, and the in-process mutex must not
// hide what happens between two of them.
//
//   node lock-child.ts hold MBOX STALE_MS HOLD_MS LOG
//     takes the lock once, prints "locked", holds it HOLD_MS, then exits;
//   node lock-child.ts race STALE_MS HOLD_MS LOG
//     for each stdin line "ROUND MBOX AT_MS": waits until the clock reads
//     AT_MS (so every racer starts together), takes the lock of MBOX, holds
//     it HOLD_MS, and prints "done ROUND".
// Each holder appends "ROUND enter PID" and "ROUND exit PID" to LOG (O_APPEND:
// the lines land in the order they happened).

import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { withMailboxLock } from '../../../src/store/dotlock.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function holdOnce(round: string, mbox: string, staleMs: number, holdMs: number, log: string): Promise<void> {
  await withMailboxLock(
    mbox,
    async () => {
      appendFileSync(log, `${round} enter ${process.pid}\n`);
      if (round === 'hold') process.stdout.write('locked\n');
      await sleep(holdMs);
      appendFileSync(log, `${round} exit ${process.pid}\n`);
    },
    { staleMs, timeoutMs: 30_000 },
  );
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'hold') {
  const [mbox, staleMs, holdMs, log] = args;
  await holdOnce('hold', mbox, Number(staleMs), Number(holdMs), log);
} else if (mode === 'race') {
  const [staleMs, holdMs, log] = args;
  for await (const line of createInterface({ input: process.stdin })) {
    const [round, mbox, at] = line.split(' ');
    while (Date.now() < Number(at)); // spin: all racers leave the line together
    await holdOnce(round, mbox, Number(staleMs), Number(holdMs), log);
    process.stdout.write(`done ${round}\n`);
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
