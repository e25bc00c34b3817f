// "A crash never leaves half a message in an mbox": a real process appending
// large messages is killed with SIGKILL at many points of its appends (by
// the bytes it has written, and by timers), and after each kill the mbox
// must hold only whole messages, among them every message whose append had
// resolved. The next holder of the lock does the repair: here either the
// index load (a POP3 login) or the next appending process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { journalPathFor } from '../../src/store/append-journal.ts';
import { readRange } from '../../src/store/file-io.ts';
import { indexPathFor, loadIndex } from '../../src/store/mbox-index.ts';
import { unquoteMboxrd } from '../../src/store/mboxrd.ts';
import { crashMessage, storedCrashMessage } from './children/crash-messages.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('crash');
const CHILD = fileURLToPath(new URL('./children/append-child.ts', import.meta.url));
const KILLS = 36;
const ROUNDS_PER_MAILBOX = 6; // then a fresh mailbox, to keep the files small

interface Round {
  resolved: number[]; // ids whose append resolved before the kill
}

// Runs one child until the kill point `k` chooses, then SIGKILLs it.
async function killedAppender(mbox: string, k: number, small: boolean): Promise<Round> {
  const child = spawn(process.execPath, [CHILD, mbox, String(k * 100_000), small ? 'small' : 'large'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const resolved: number[] = [];
  let started = 0;
  let firstStart!: () => void;
  const begun = new Promise<void>((resolve) => (firstStart = resolve));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [what, id] = line.split(' ');
    if (what === 'done') resolved.push(Number(id));
    if (what === 'start' && ++started === 1) firstStart();
  });
  await Promise.race([begun, exited]);
  const sizeNow = () => {
    try {
      return statSync(mbox).size;
    } catch {
      return 0;
    }
  };
  if (k % 2 === 0 && !small) {
    // By bytes: once the mbox has grown by a chosen share of one to two
    // messages (spread over 0 .. 2 MB), wherever the writer then is.
    const target = sizeNow() + Math.floor((((k * 37) % 100) / 100) * 2_000_000);
    for (let polls = 0; sizeNow() < target && polls < 5000; polls++) await new Promise((r) => setTimeout(r, 1));
  } else {
    // By time: 0 to 120 ms after the first append started.
    await new Promise((r) => setTimeout(r, (k * 53) % 120));
  }
  child.kill('SIGKILL');
  await exited;
  return { resolved };
}

// The independent check: the file must be exactly a sequence of whole
// stored messages, each recognised by its Message-ID and compared byte for
// byte with what the child wrote. Returns the ids in file order, or null
// if the file is not (a torn tail, junk).
function wholeMessages(file: Buffer, small: boolean): number[] | null {
  const ids: number[] = [];
  for (let at = 0; at < file.length; ) {
    const id = /Message-ID: <(\d+)@crash\.test>/.exec(file.toString('latin1', at, at + 300))?.[1];
    if (id === undefined) return null;
    const expected = storedCrashMessage(Number(id), small);
    if (!file.subarray(at, at + expected.length).equals(expected)) return null;
    ids.push(Number(id));
    at += expected.length;
  }
  return ids;
}

const readOrEmpty = (file: string) => fs.readFile(file).catch(() => Buffer.alloc(0));

// The store's own view: the index (which repairs first), and each message
// read back by its byte range.
async function indexedMessages(mbox: string, small: boolean): Promise<number[]> {
  const index = await loadIndex(mbox);
  const ids: number[] = [];
  if (index.messages.length === 0) return ids; // maybe killed before the file was made
  const file = await fs.open(mbox, 'r');
  try {
    for (const m of index.messages.records()) {
      const chunks: Buffer[] = [];
      for await (const chunk of readRange(file, m.contentOffset, m.offset + m.length - m.contentOffset)) chunks.push(chunk);
      const content = unquoteMboxrd(Buffer.concat(chunks));
      const id = Number(/Message-ID: <(\d+)@crash\.test>/.exec(content.toString('latin1', 0, 300))?.[1]);
      assert.ok(content.equals(crashMessage(id, small)), `indexed message ${m.uid} (id ${id}) is not whole`);
      ids.push(id);
    }
  } finally {
    await file.close();
  }
  return ids;
}

// Kills `kills` appending processes, a fresh mailbox every few; returns how many left a torn tail.
async function killRounds(name: string, kills: number, small: boolean): Promise<number> {
  let mbox = '';
  let resolvedHere: number[] = [];
  let tornBeforeRepair = 0;
  for (let k = 0; k < kills; k++) {
    if (k % ROUNDS_PER_MAILBOX === 0) {
      mbox = path.join(dir, `${name}${k}`, 'INBOX');
      await fs.mkdir(path.dirname(mbox), { recursive: true });
      resolvedHere = [];
    }
    const round = await killedAppender(mbox, k, small);
    resolvedHere.push(...round.resolved);
    // Left as the kill left it: torn or not (for the record below).
    if (wholeMessages(await readOrEmpty(mbox), small) === null) tornBeforeRepair++;
    // Two rounds in three, a reader comes next; the third, the next appender.
    if (k % 3 === 2 && (k + 1) % ROUNDS_PER_MAILBOX !== 0) continue;
    const indexed = await indexedMessages(mbox, small);
    const onDisk = wholeMessages(await readOrEmpty(mbox), small);
    assert.ok(onDisk, `after kill ${k}: the mbox holds something other than whole messages`);
    assert.deepEqual(indexed, onDisk, `after kill ${k}: the index and the file disagree`);
    assert.equal(new Set(onDisk).size, onDisk.length, `after kill ${k}: a message is there twice`);
    for (const id of resolvedHere) assert.ok(onDisk.includes(id), `after kill ${k}: message ${id} resolved but is missing`);
    if (onDisk.length > 0) for (const file of [journalPathFor(mbox), indexPathFor(mbox)]) await fs.stat(file); // both exist
  }
  console.log(`# ${kills} kills of ${small ? 'small' : 'large'} appends; ${tornBeforeRepair} left a torn message for the next lock holder to cut`);
  return tornBeforeRepair;
}

test(`an appending process killed at ${KILLS} points leaves only whole messages, and every resolved one`, { timeout: 300_000 }, async () => {
  const torn = await killRounds('user', KILLS, false);
  // The kills by bytes land mid-message: the repair was really exercised.
  assert.ok(torn > 0, 'no kill tore a message');
});

// Small batches take the journal's other way (one planned record, append-journal.ts).
// A kill rarely lands inside their single write(2), so torn ones are not required here:
// append-journal.test.ts cuts them from files made torn on purpose.
test('killed while appending small messages (planned batches): only whole messages, and every resolved one', { timeout: 300_000 }, async () => {
  await killRounds('small', 18, true);
});
