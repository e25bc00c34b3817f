// How much memory a message in flight holds: a small body sits in a small
// buffer (16 KiB), not in a block of the largest size (256 KiB); a large one
// fills whole blocks that come from a pool and go back to it, so one large
// message after another makes no new buffers. The budget is still charged
// in whole blocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { MemoryBudget } from '../../src/store/memory-budget.ts';
import { SpooledBody, wholeBlocks } from '../../src/store/spooled-body.ts';
import { scratchDir } from './helpers.ts';

const KiB = 1024;
const dir = await scratchDir('spool-sizing');

async function parts(body: SpooledBody): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const part of body.read()) out.push(part);
  return out;
}

// Bytes asked of Buffer.allocUnsafe while `run` runs.
async function allocUnsafeBytesDuring(run: () => Promise<void>): Promise<number> {
  const realAllocUnsafe = Buffer.allocUnsafe;
  let allocated = 0;
  Buffer.allocUnsafe = ((size: number) => {
    allocated += size;
    return realAllocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;
  try {
    await run();
  } finally {
    Buffer.allocUnsafe = realAllocUnsafe;
  }
  return allocated;
}

test('a 5 KiB body is held in a buffer of about its size, and the budget is charged a whole block', async () => {
  const budget = new MemoryBudget(4 * 1024 * KiB);
  const body = new SpooledBody(path.join(dir, 'a'), 2 * 1024 * KiB, { budget });
  const data = Buffer.alloc(5 * KiB, 'x');
  await body.write(data);
  await body.finish();
  const [part, ...rest] = await parts(body);
  assert.deepEqual(rest, []);
  assert.deepEqual(part, data);
  // A small first buffer may be a slice of Node's shared pool (Buffer.poolSize), never a block of its own.
  assert.ok(part.buffer.byteLength <= Buffer.poolSize, `held ${part.buffer.byteLength} bytes for 5 KiB`);
  assert.equal(budget.usedBytes, 256 * KiB, 'the reservation is per block, as before');
  await body.discard();
  assert.equal(budget.usedBytes, 0);
});

test('a body that outgrows its small buffer keeps every byte in order across whole blocks', async () => {
  const body = new SpooledBody(path.join(dir, 'b'), 2 * 1024 * KiB);
  const data = Buffer.from(Array.from({ length: 700 * KiB }, (_, i) => (i * 13) % 251));
  for (let i = 0; i < data.length; i += 3001) await body.write(data.subarray(i, i + 3001));
  await body.finish();
  const read = await parts(body);
  assert.deepEqual(Buffer.concat(read), data);
  assert.deepEqual(read.slice(0, -1).map((p) => p.length), [256 * KiB, 256 * KiB], 'full blocks are whole');
  await body.discard();
});

test('a large body fills whole blocks from the pool and gives them back: a second 1 MiB body makes no new buffers', async () => {
  const data = Buffer.from(Array.from({ length: 1024 * KiB }, (_, i) => (i * 7) % 253));
  const poolMadeBefore = wholeBlocks.allocated;
  const allocated = await allocUnsafeBytesDuring(async () => {
    for (const name of ['c1', 'c2']) {
      const body = new SpooledBody(path.join(dir, name), 2 * 1024 * KiB);
      for (let i = 0; i < data.length; i += 64 * KiB) await body.write(data.subarray(i, i + 64 * KiB));
      await body.finish();
      assert.deepEqual(Buffer.concat(await parts(body)), data);
      await body.discard();
    }
  });
  // Its first 64 KiB do not fit the small buffer: whole blocks from the start, four per body.
  assert.equal(allocated, 0);
  assert.ok(wholeBlocks.allocated - poolMadeBefore <= 4, `${wholeBlocks.allocated - poolMadeBefore} whole blocks made for two bodies`);
});

test('a pooled block goes to another body only after discard(): a live body\'s bytes are never overwritten', async () => {
  const a = new SpooledBody(path.join(dir, 'd'), 2 * 1024 * KiB);
  const b = new SpooledBody(path.join(dir, 'e'), 2 * 1024 * KiB);
  const first = Buffer.alloc(600 * KiB, 'a');
  const second = Buffer.alloc(600 * KiB, 'b');
  await a.write(first);
  await b.write(second);
  const secondParts = await parts(b);
  await a.discard();
  const third = new SpooledBody(path.join(dir, 'f'), 2 * 1024 * KiB);
  await third.write(Buffer.alloc(600 * KiB, 'c')); // takes a's blocks back from the pool
  assert.deepEqual(Buffer.concat(secondParts), second, 'b\'s views still hold b\'s bytes');
  assert.deepEqual(Buffer.concat(await parts(third)), Buffer.alloc(600 * KiB, 'c'));
  await b.discard();
  await third.discard();
});

test('a body in its file is read through one pooled block, read into again for each chunk: reading 3 MiB twice makes no new buffers', async () => {
  const body = new SpooledBody(path.join(dir, 'g'), 1024 * KiB); // past 1 MiB it moves to its file
  const data = Buffer.from(Array.from({ length: 3 * 1024 * KiB }, (_, i) => (i * 31) % 255));
  for (let i = 0; i < data.length; i += 100 * KiB) await body.write(data.subarray(i, i + 100 * KiB));
  await body.finish();
  assert.equal(body.inFile, true);
  await parts(body); // the pool's block for reading exists from now on
  const poolMadeBefore = wholeBlocks.allocated;
  const copies: Buffer[] = [];
  const memories = new Set<ArrayBufferLike>();
  const allocated = await allocUnsafeBytesDuring(async () => {
    for await (const chunk of body.read()) {
      copies.push(Buffer.from(chunk)); // a consumer copies what it keeps
      memories.add(chunk.buffer);
    }
  });
  assert.deepEqual(Buffer.concat(copies), data);
  assert.equal(memories.size, 1, 'every chunk in the same memory');
  assert.equal(allocated, 0);
  assert.equal(wholeBlocks.allocated, poolMadeBefore);
  await body.discard();
});
