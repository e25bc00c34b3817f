// A body in flight: in memory while small, in a temporary file past the
// per-body limit or when the process-wide memory budget is spent; the
// budget is given back when a body moves to its file or is discarded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { MemoryBudget } from '../../src/store/memory-budget.ts';
import { SpooledBody } from '../../src/store/spooled-body.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('spool');
let counter = 0;
const freshTmp = () => path.join(dir, `tmp${counter++}`);
const KiB = 1024;

async function bytesOf(body: SpooledBody): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of body.read()) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

// Writes `data` in pieces of `piece` bytes.
async function fill(body: SpooledBody, data: Buffer, piece = 1000): Promise<void> {
  for (let i = 0; i < data.length; i += piece) await body.write(data.subarray(i, i + piece));
  await body.finish();
}

const pattern = (n: number, seed = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 251));

test('a small body stays in memory; past the per-body limit it moves to a file', async () => {
  const tmp = freshTmp();
  const small = new SpooledBody(tmp, 64 * KiB);
  await fill(small, pattern(10 * KiB));
  assert.equal(small.inFile, false);
  assert.deepEqual(await bytesOf(small), pattern(10 * KiB));

  const big = new SpooledBody(tmp, 64 * KiB);
  await fill(big, pattern(300 * KiB, 1));
  assert.equal(big.inFile, true);
  assert.equal((await fs.readdir(tmp)).length, 1);
  assert.deepEqual(await bytesOf(big), pattern(300 * KiB, 1));
  await big.discard();
  assert.deepEqual(await fs.readdir(tmp), []);
});

test('with a small budget, concurrent bodies beyond it go to files, and the budget is never exceeded', async () => {
  const tmp = freshTmp();
  const budget = new MemoryBudget(256 * KiB); // room for four 64 KiB blocks
  let peak = 0;
  const bodies = Array.from({ length: 10 }, () => new SpooledBody(tmp, 64 * KiB, { budget }));
  const data = bodies.map((_, i) => pattern(50 * KiB, i)); // each under the per-body limit
  // Interleave the writes as concurrent sessions would.
  for (let offset = 0; offset < 50 * KiB; offset += 5 * KiB) {
    await Promise.all(bodies.map((body, i) => body.write(data[i].subarray(offset, offset + 5 * KiB))));
    peak = Math.max(peak, budget.usedBytes);
  }
  for (const body of bodies) await body.finish();
  assert.ok(peak <= budget.totalBytes, `peak ${peak}`);
  assert.deepEqual(bodies.map((b) => b.inFile), [false, false, false, false, true, true, true, true, true, true]);
  assert.equal(budget.usedBytes, 4 * 64 * KiB);
  for (let i = 0; i < bodies.length; i++) assert.deepEqual(await bytesOf(bodies[i]), data[i], `body ${i}`);
  for (const body of bodies) await body.discard();
  assert.equal(budget.usedBytes, 0);
  assert.deepEqual(await fs.readdir(tmp), []);
});

test('a body that spills to its file mid-way gives its memory back and keeps every byte in order', async () => {
  const tmp = freshTmp();
  const budget = new MemoryBudget(512 * KiB);
  const body = new SpooledBody(tmp, 1024 * KiB, { budget }); // per-body limit above the budget
  const data = pattern(900 * KiB, 3);
  await fill(body, data, 7 * KiB);
  assert.equal(body.inFile, true);
  assert.equal(budget.usedBytes, 0, 'moved to the file: nothing held in memory');
  assert.deepEqual(await bytesOf(body), data);
  await body.discard();
});

test('released memory is reusable: after discards, new bodies stay in memory again', async () => {
  const tmp = freshTmp();
  const budget = new MemoryBudget(128 * KiB);
  const first = [new SpooledBody(tmp, 64 * KiB, { budget }), new SpooledBody(tmp, 64 * KiB, { budget })];
  for (const body of first) await fill(body, pattern(60 * KiB));
  const third = new SpooledBody(tmp, 64 * KiB, { budget });
  await fill(third, pattern(1 * KiB));
  assert.equal(third.inFile, true, 'the budget was spent');
  for (const body of [...first, third]) await body.discard();
  assert.equal(budget.usedBytes, 0);
  const again = new SpooledBody(tmp, 64 * KiB, { budget });
  await fill(again, pattern(60 * KiB));
  assert.equal(again.inFile, false);
  await again.discard();
  assert.equal(budget.usedBytes, 0);
});

test('discard always releases: after a failed spill, twice, or before finish', async () => {
  const budget = new MemoryBudget(64 * KiB);
  // The temporary directory cannot be made (a file is in the way): the spill fails.
  const blocked = path.join(dir, 'not-a-directory');
  await fs.writeFile(blocked, 'x');
  const failing = new SpooledBody(path.join(blocked, 'tmp'), 64 * KiB, { budget });
  await failing.write(pattern(60 * KiB));
  assert.equal(budget.usedBytes, 64 * KiB);
  await assert.rejects(failing.write(pattern(10 * KiB)));
  await failing.discard();
  assert.equal(budget.usedBytes, 0);
  await failing.discard();
  assert.equal(budget.usedBytes, 0);

  const unfinished = new SpooledBody(freshTmp(), 64 * KiB, { budget });
  await unfinished.write(pattern(10 * KiB));
  await unfinished.discard();
  assert.equal(budget.usedBytes, 0);
});

test('MemoryBudget refuses what does not fit and will not release more than it lent', () => {
  const budget = new MemoryBudget(100);
  assert.equal(budget.tryReserve(60), true);
  assert.equal(budget.tryReserve(41), false);
  assert.equal(budget.tryReserve(40), true);
  assert.equal(budget.usedBytes, 100);
  budget.release(100);
  assert.throws(() => budget.release(1));
  assert.throws(() => new MemoryBudget(-1), RangeError);
});
