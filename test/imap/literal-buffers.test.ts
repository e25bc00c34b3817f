// A large literal on its way out (fetch-data.ts serialize, crlf.ts, the
// store's reader, the connection's writes): a 10 MiB BODY[] read from a real
// mbox file and sent over a real loopback socket goes through a few pooled
// buffers used again and again (src/buffer-pool.ts), arrives byte for byte,
// and a client that stops reading holds the server back (it does not read
// the mbox ahead of what the socket takes).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { Connection } from '../../src/wire/connection.ts';
import { BufferPool } from '../../src/buffer-pool.ts';
import { fetchPieces, serialize } from '../../src/imap/fetch-data.ts';
import type { FetchSource } from '../../src/imap/fetch-data.ts';
import type { FetchItem } from '../../src/imap/fetch-items.ts';
import { READ_CHUNK_BYTES } from '../../src/store/file-io.ts';
import { scanForIndex } from '../../src/store/mbox-index-scan.ts';
import { readMessage } from '../../src/store/message-reader.ts';
import { scratchDir } from '../store/helpers.ts';

const MiB = 1024 * 1024;

/** An mbox holding one message of about `size` bytes; its bytes as IMAP sends them (CRLF, unquoted). */
async function bigMbox(size: number): Promise<{ name: string; wire: Buffer }> {
  const lines = ['Subject: big', 'Message-ID: <big@example.org>', ''];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const line = i % 3000 === 0 ? `From the desk of line ${i}` : i % 3001 === 0 ? '' : `${i} ${'words and more words '.repeat(i % 5)}`;
    lines.push(line);
    length += line.length + 2;
  }
  const stored = lines.map((line) => (line.startsWith('From ') ? `>${line}` : line)).join('\n'); // mboxrd (store/mboxrd.ts)
  const name = path.join(await scratchDir('literal-buffers'), 'INBOX');
  await fs.writeFile(name, `From sender@example.org Mon Nov  2 03:05:51 2026\n${stored}\n`);
  return { name, wire: Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1') };
}

/** A Connection on the server's end of a loopback socket, and the client's end. */
async function pair(): Promise<{ conn: Connection; client: Socket; close(): void }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const accepted = once(listener, 'connection');
  const client = connect((listener.address() as { port: number }).port, '127.0.0.1');
  const [server] = (await accepted) as [Socket];
  const conn = new Connection(server, { maxLineBytes: 512, idleTimeoutMs: 30_000 });
  return { conn, client, close: () => (client.destroy(), conn.destroy(), listener.close()) };
}

interface Sent {
  readPool: BufferPool;
  literalPool: BufferPool;
  /** Bytes the server has read from the mbox so far. */
  read: () => number;
  /** Resolves once the response has been handed to the socket. */
  done: Promise<void>;
}

/** `FETCH 1 (BODY.PEEK[]<partial>)` as the IMAP session streams it: each piece sent, waiting for the client between pieces. */
async function sendFetch(conn: Connection, file: fs.FileHandle, partial: { start: number; length: number } | null = null): Promise<Sent> {
  const [m] = (await scanForIndex(file, 0)).messages;
  const readPool = new BufferPool(READ_CHUNK_BYTES, 2);
  const literalPool = new BufferPool(256 * 1024);
  let read = 0;
  const source: FetchSource = {
    seq: 1,
    uid: 1,
    size: m.size,
    internalDate: new Date(),
    flags: [],
    modseq: 1,
    read: async function* () {
      for await (const chunk of readMessage(file, m, readPool)) {
        read += chunk.length;
        yield chunk;
      }
    },
  };
  const items: FetchItem[] = [{ kind: 'section', binary: false, peek: true, section: { part: [], text: '', fields: [] }, partial }];
  const responses = async function* () {
    yield await fetchPieces(source, items);
  };
  const done = (async () => {
    for await (const piece of serialize(responses(), 64 * 1024, literalPool)) await conn.sendAndDrain(piece);
    conn.flush();
  })();
  return { readPool, literalPool, read: () => read, done };
}

/** What the client receives, hashed as it comes, until `total` bytes. */
function receive(client: Socket, total: number): { bytes: () => number; hash: Promise<string> } {
  const hash = createHash('sha256');
  let bytes = 0;
  return {
    bytes: () => bytes,
    hash: new Promise((resolve) => {
      client.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
        if (bytes >= total) resolve(hash.digest('hex'));
      });
    }),
  };
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

test('BODY[] of a 10 MiB message arrives byte for byte through one read buffer and a few literal buffers', async () => {
  const { name, wire } = await bigMbox(10 * MiB);
  const file = await fs.open(name, 'r');
  const { conn, client, close } = await pair();
  try {
    const expected = Buffer.concat([Buffer.from(`* 1 FETCH (BODY[] {${wire.length}}\r\n`), wire, Buffer.from(')\r\n')]);
    const received = receive(client, expected.length);
    const sent = await sendFetch(conn, file);
    await sent.done;
    assert.equal(await received.hash, sha256(expected));
    assert.equal(received.bytes(), expected.length);
    assert.equal(sent.readPool.allocated, 1, 'the mbox is read into one buffer, again and again');
    assert.ok(sent.literalPool.allocated <= 3, `${sent.literalPool.allocated} literal buffers for ${wire.length} bytes`);
  } finally {
    close();
    await file.close();
  }
});

test('a partial BODY[]<start.length> of it: the same reuse, the right octets', async () => {
  const { name, wire } = await bigMbox(10 * MiB);
  const file = await fs.open(name, 'r');
  const { conn, client, close } = await pair();
  try {
    const start = 3 * MiB + 17;
    const part = wire.subarray(start, start + 5 * MiB);
    const expected = Buffer.concat([Buffer.from(`* 1 FETCH (BODY[]<${start}> {${part.length}}\r\n`), part, Buffer.from(')\r\n')]);
    const received = receive(client, expected.length);
    const sent = await sendFetch(conn, file, { start, length: 5 * MiB });
    await sent.done;
    assert.equal(await received.hash, sha256(expected));
    assert.equal(sent.readPool.allocated, 1);
    assert.ok(sent.literalPool.allocated <= 3, `${sent.literalPool.allocated} literal buffers`);
  } finally {
    close();
    await file.close();
  }
});

test('a client that stops reading stops the server reading the mbox; the buffers stay few; then all of it arrives', async () => {
  const { name, wire } = await bigMbox(40 * MiB); // more than the loopback socket buffers hold
  const file = await fs.open(name, 'r');
  const { conn, client, close } = await pair();
  try {
    client.pause();
    const expected = Buffer.concat([Buffer.from(`* 1 FETCH (BODY[] {${wire.length}}\r\n`), wire, Buffer.from(')\r\n')]);
    const sent = await sendFetch(conn, file);
    // Wait until the server is stuck on the socket: what it read stops growing.
    let before = -1;
    while (sent.read() !== before) {
      before = sent.read();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.ok(sent.read() < wire.length / 2, `the server read ${sent.read()} bytes ahead of a client that read none`);
    assert.equal(sent.readPool.allocated, 1);
    assert.ok(sent.literalPool.allocated <= 3, `${sent.literalPool.allocated} literal buffers while the socket was full`);
    const received = receive(client, expected.length);
    client.resume();
    await sent.done;
    assert.equal(await received.hash, sha256(expected));
    assert.ok(sent.literalPool.allocated <= 3, `${sent.literalPool.allocated} literal buffers`);
  } finally {
    close();
    await file.close();
  }
});
