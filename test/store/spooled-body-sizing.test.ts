// How much memory a small message in flight holds: its body buffer grows
// with the message, rather than starting at the largest size a block may
// reach (256 KiB). Most mail is a few KiB, and a 256 KiB buffer per message
// made the collector run a full GC every few dozen messages. The budget is
// still charged in whole blocks.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { MemoryBudget } from '../../src/store/memory-budget.ts';
import { SpooledBody } from '../../src/store/spooled-body.ts';
import { scratchDir } from './helpers.ts';

const KiB = 1024;
const dir = await scratchDir('spool-sizing');

async function parts(body: SpooledBody): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const part of body.read()) out.push(part);
  return out;
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

test('a body that grows keeps every byte in order across the growing buffers and whole blocks', async () => {
  const body = new SpooledBody(path.join(dir, 'b'), 2 * 1024 * KiB);
  const data = Buffer.from(Array.from({ length: 700 * KiB }, (_, i) => (i * 13) % 251));
  for (let i = 0; i < data.length; i += 3001) await body.write(data.subarray(i, i + 3001));
  await body.finish();
  const read = await parts(body);
  assert.deepEqual(Buffer.concat(read), data);
  assert.deepEqual(read.slice(0, -1).map((p) => p.length), [256 * KiB, 256 * KiB], 'full blocks are whole');
  await body.discard();
});

test('only the first block grows: a large body\'s later blocks are made whole at once (1 MiB in 64 KiB pieces: 1.2 MiB of buffers, not 1.75)', async () => {
  const body = new SpooledBody(path.join(dir, 'c'), 2 * 1024 * KiB);
  const data = Buffer.from(Array.from({ length: 1024 * KiB }, (_, i) => (i * 7) % 253));
  const realAllocUnsafe = Buffer.allocUnsafe;
  let allocated = 0;
  Buffer.allocUnsafe = ((size: number) => {
    allocated += size;
    return realAllocUnsafe(size);
  }) as typeof Buffer.allocUnsafe;
  try {
    for (let i = 0; i < data.length; i += 64 * KiB) await body.write(data.subarray(i, i + 64 * KiB));
  } finally {
    Buffer.allocUnsafe = realAllocUnsafe;
  }
  await body.finish();
  assert.deepEqual(Buffer.concat(await parts(body)), data);
  // The first block 64 + 128 + 256 KiB as it grows, then three whole blocks of 256 KiB.
  assert.equal(allocated, (64 + 128 + 256 + 3 * 256) * KiB);
  await body.discard();
});
