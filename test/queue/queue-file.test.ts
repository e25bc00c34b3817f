import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareQueueFile, writeQueueFile, parseQueueEnvelope, queueDir } from '../../src/queue/queue-file.ts';
import type { QueueEnvelope } from '../../src/queue/queue-file.ts';

const envelope: QueueEnvelope = {
  id: 'ABC123',
  from: 'jjordan@example.org',
  to: ['friend@example.net', 'other@example.com'],
  arrived: new Date('2026-11-22T03:05:51.123Z'),
  auth: 'jjordan',
  body: '8bitmime',
  smtputf8: false,
};

async function* chunks(...parts: string[]) {
  for (const part of parts) yield Buffer.from(part);
}

test('a queue file round-trips its envelope and message', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'queue-'));
  try {
    const path = await writeQueueFile(dataDir, envelope, () => chunks('Subject: hi\n\n', 'body ünïcode\n'));
    assert.equal(path, join(queueDir(dataDir), 'ABC123.msg'));
    const bytes = await readFile(path);
    const { envelope: parsed, bodyOffset } = parseQueueEnvelope(bytes);
    assert.deepEqual(parsed, envelope);
    assert.equal(bytes.subarray(bodyOffset).toString(), 'Subject: hi\n\nbody ünïcode\n');
    assert.deepEqual(await readdir(join(queueDir(dataDir), 'tmp')), [], 'nothing left in tmp');
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a failure while writing leaves no queue file behind', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'queue-'));
  try {
    async function* failing() {
      yield Buffer.from('Subject: half\n');
      throw new Error('client vanished');
    }
    await assert.rejects(writeQueueFile(dataDir, envelope, failing), /client vanished/);
    assert.deepEqual((await readdir(queueDir(dataDir))).filter((n) => n !== 'tmp'), []);
    assert.deepEqual(await readdir(join(queueDir(dataDir), 'tmp')), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('addresses with spaces round-trip (a quoted local part, RFC 5321 4.1.2); line ends, bad ids and unknown keys are refused', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'queue-'));
  try {
    const spaced = { ...envelope, from: '"ana maria"@example.org', to: ['"john smith"@example.net', '" lead"@example.com'] };
    const path = await writeQueueFile(dataDir, spaced, () => chunks('x\n'));
    assert.deepEqual(parseQueueEnvelope(await readFile(path)).envelope, spaced);
    await assert.rejects(writeQueueFile(dataDir, { ...envelope, id: 'B1', to: ['a\nto evil@example.net'] }, () => chunks('x\n')), /line ends/);
    await assert.rejects(writeQueueFile(dataDir, { ...envelope, id: 'B2', from: 'a\r@example.net' }, () => chunks('x\n')), /line ends/);
    await assert.rejects(writeQueueFile(dataDir, { ...envelope, id: '../x' }, () => chunks('x\n')));
    assert.deepEqual(await readdir(join(queueDir(dataDir), 'tmp')), []);
    assert.throws(() => parseQueueEnvelope(Buffer.from('jjordan-queue 1\nid A\nto a@b\nevil 1\n\nbody')), /unknown key/);
    assert.throws(() => parseQueueEnvelope(Buffer.from('jjordan-queue 9\nid A\n\n')), /unknown format/);
    assert.throws(() => parseQueueEnvelope(Buffer.from('jjordan-queue 1\nid A\n\n')), /missing/);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a prepared queue file is invisible until committed; discarded, it leaves nothing', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'queue-'));
  try {
    const visible = async () => (await readdir(queueDir(dataDir))).filter((n) => n.endsWith('.msg'));
    const kept = await prepareQueueFile(dataDir, envelope, () => chunks('Subject: kept\n\n'));
    assert.deepEqual(await visible(), [], 'the relay sees nothing before commit');
    assert.deepEqual(await readdir(join(queueDir(dataDir), 'tmp')), ['ABC123.msg']);
    assert.equal(await kept.commit(), join(queueDir(dataDir), 'ABC123.msg'));
    assert.deepEqual(await visible(), ['ABC123.msg']);

    const dropped = await prepareQueueFile(dataDir, { ...envelope, id: 'DEF456' }, () => chunks('Subject: dropped\n\n'));
    await dropped.discard();
    assert.deepEqual(await visible(), ['ABC123.msg']);
    assert.deepEqual(await readdir(join(queueDir(dataDir), 'tmp')), []);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
