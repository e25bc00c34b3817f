// The shared loops of file-io.ts. write(2) may write fewer bytes than asked
// (a disk filling up does, before ENOSPC), and read(2) may return fewer
// before the end of the file: the loops are driven here by writers and
// readers that move at most 3 bytes per call, so every pass of the loop
// runs, and every byte must still arrive, in order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { readInto, readIntoSync, readRange, writeAll, writeAllSync } from '../../src/store/file-io.ts';
import type { AsyncReadable, AsyncWritable, ReadSyncCall, WriteSyncCall } from '../../src/store/file-io.ts';
import { scratchDir } from './helpers.ts';

const dir = await scratchDir('file-io');
let counter = 0;
const freshFile = () => path.join(dir, `file${counter++}`);
const MESSAGE = Buffer.from('From: a@example.org\nSubject: short writes\n\nEvery byte, in order.\n', 'latin1');
const AT_MOST = 3;

/** fs.writeSync, but never more than AT_MOST bytes per call; counts its calls. */
function stingyWriteSync(): { write: WriteSyncCall; calls: () => number } {
  let calls = 0;
  const write: WriteSyncCall = (fd, buffer, offset, length, position) => {
    calls++;
    return writeSync(fd, buffer, offset, Math.min(length, AT_MOST), position);
  };
  return { write, calls: () => calls };
}

test('writeAllSync: a writer that takes 3 bytes a call still gets the whole buffer, at the file position', async () => {
  const file = freshFile();
  await fs.writeFile(file, 'start\n');
  const fd = openSync(file, 'a');
  try {
    const stingy = stingyWriteSync();
    writeAllSync(fd, MESSAGE, null, stingy.write);
    assert.equal(stingy.calls(), Math.ceil(MESSAGE.length / AT_MOST));
  } finally {
    closeSync(fd);
  }
  assert.deepEqual(await fs.readFile(file), Buffer.concat([Buffer.from('start\n'), MESSAGE]));
});

test('writeAllSync: with a position, each short write goes on where the last one stopped', async () => {
  const file = freshFile();
  await fs.writeFile(file, Buffer.alloc(10 + MESSAGE.length + 5, '.'));
  const fd = openSync(file, 'r+');
  try {
    writeAllSync(fd, MESSAGE, 10, stingyWriteSync().write);
  } finally {
    closeSync(fd);
  }
  const bytes = await fs.readFile(file);
  assert.equal(bytes.toString('latin1', 0, 10), '..........');
  assert.deepEqual(bytes.subarray(10, 10 + MESSAGE.length), MESSAGE);
  assert.equal(bytes.toString('latin1', 10 + MESSAGE.length), '.....');
});

test('writeAll: a file handle that takes 3 bytes a call still gets the whole buffer', async () => {
  const file = freshFile();
  const handle = await fs.open(file, 'a');
  let calls = 0;
  const stingy: AsyncWritable = {
    write: (buffer, offset, length) => {
      calls++;
      return handle.write(buffer, offset, Math.min(length, AT_MOST));
    },
  };
  try {
    await writeAll(stingy, MESSAGE);
  } finally {
    await handle.close();
  }
  assert.equal(calls, Math.ceil(MESSAGE.length / AT_MOST));
  assert.deepEqual(await fs.readFile(file), MESSAGE);
});

test('writeAll: on a descriptor, and through a real FileHandle', async () => {
  const file = freshFile();
  const fd = openSync(file, 'a');
  try {
    await writeAll(fd, MESSAGE);
  } finally {
    closeSync(fd);
  }
  const handle = await fs.open(file, 'a');
  try {
    await writeAll(handle, MESSAGE);
  } finally {
    await handle.close();
  }
  assert.deepEqual(await fs.readFile(file), Buffer.concat([MESSAGE, MESSAGE]));
});

// A 700 KiB file of a repeating pattern, open for reading.
async function patternedFile(): Promise<{ big: Buffer; handle: fs.FileHandle }> {
  const file = freshFile();
  const big = Buffer.alloc(700 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = i % 251;
  await fs.writeFile(file, big);
  return { big, handle: await fs.open(file, 'r') };
}

test('readRange: the bytes asked for, small and large; a file that ends early is an error', async () => {
  const { big, handle } = await patternedFile();
  try {
    const collect = async (start: number, length: number) => {
      const parts: Buffer[] = [];
      for await (const part of readRange(handle, start, length)) parts.push(part);
      return Buffer.concat(parts);
    };
    assert.deepEqual(await collect(5, 100), big.subarray(5, 105));
    assert.deepEqual(await collect(1000, 600 * 1024), big.subarray(1000, 1000 + 600 * 1024));
    assert.equal((await collect(0, 0)).length, 0);
    await assert.rejects(collect(big.length - 10, 20), /file ends before byte/);
    await assert.rejects(collect(big.length - 10, 300 * 1024), /file ends before byte/);
  } finally {
    await handle.close();
  }
});

test('readRange into a lent buffer: the same bytes, every chunk a view of that one buffer; a file that ends early is still an error', async () => {
  const { big, handle } = await patternedFile();
  const lent = Buffer.alloc(64 * 1024);
  try {
    const collect = async (start: number, length: number) => {
      const copies: Buffer[] = [];
      for await (const part of readRange(handle, start, length, lent)) {
        assert.equal(part.buffer, lent.buffer, 'a view of the lent buffer');
        assert.ok(part.length <= lent.length);
        copies.push(Buffer.from(part)); // (valid only until the next chunk)
      }
      return Buffer.concat(copies);
    };
    assert.deepEqual(await collect(5, 100), big.subarray(5, 105));
    assert.deepEqual(await collect(1000, 100 * 1024), big.subarray(1000, 1000 + 100 * 1024), 'small, but larger than the lent buffer');
    assert.deepEqual(await collect(7, 600 * 1024), big.subarray(7, 7 + 600 * 1024));
    await assert.rejects(collect(big.length - 10, 20), /file ends before byte/);
    await assert.rejects(collect(big.length - 100 * 1024, 200 * 1024), /file ends before byte/);
  } finally {
    await handle.close();
  }
});

test('readIntoSync: a reader that gives 3 bytes a call still fills the buffer; fewer only where the file ends', async () => {
  const file = freshFile();
  await fs.writeFile(file, Buffer.concat([Buffer.from('0123456789'), MESSAGE]));
  let calls = 0;
  const stingy: ReadSyncCall = (fd, buffer, offset, length, position) => {
    calls++;
    return readSync(fd, buffer, offset, Math.min(length, AT_MOST), position);
  };
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(MESSAGE.length + 20);
    assert.equal(readIntoSync(fd, buffer, MESSAGE.length, 10, stingy), MESSAGE.length);
    assert.equal(calls, Math.ceil(MESSAGE.length / AT_MOST));
    assert.deepEqual(buffer.subarray(0, MESSAGE.length), MESSAGE);
    // Past the end: what there is, then 0 ends the loop.
    assert.equal(readIntoSync(fd, buffer, 20, 10 + MESSAGE.length - 5, stingy), 5);
    assert.deepEqual(buffer.subarray(0, 5), MESSAGE.subarray(MESSAGE.length - 5));
    assert.equal(readIntoSync(fd, buffer, 20, 10 + MESSAGE.length + 100), 0);
  } finally {
    closeSync(fd);
  }
});

test('readInto: a handle that gives 3 bytes a call still fills the buffer; also on a descriptor', async () => {
  const file = freshFile();
  await fs.writeFile(file, Buffer.concat([Buffer.from('0123456789'), MESSAGE]));
  const handle = await fs.open(file, 'r');
  let calls = 0;
  const stingy: AsyncReadable = {
    read: (buffer, offset, length, position) => {
      calls++;
      return handle.read(buffer, offset, Math.min(length, AT_MOST), position);
    },
  };
  try {
    const buffer = Buffer.alloc(MESSAGE.length);
    assert.equal(await readInto(stingy, buffer, MESSAGE.length, 10), MESSAGE.length);
    assert.equal(calls, Math.ceil(MESSAGE.length / AT_MOST));
    assert.deepEqual(buffer, MESSAGE);
    const larger = Buffer.alloc(MESSAGE.length + 10);
    assert.equal(await readInto(handle.fd, larger, larger.length, 10), MESSAGE.length, 'the file ends first');
    assert.deepEqual(larger.subarray(0, MESSAGE.length), MESSAGE);
  } finally {
    await handle.close();
  }
});
