// How the shared connection hands replies to the socket: the replies to a
// pipelined group of commands (RFC 2920 3.1; RFC 2449 6.6 for POP3) wait
// while more commands are already buffered, and go out together when the
// session is about to wait for the client, or once enough of them gathered.
// Checked on the server's side of a real loopback socket (bytes handed to it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { Socket } from 'node:net';
import { Connection } from '../../src/wire/connection.ts';

/** A connected pair: the server's socket wrapped in a Connection, and the client's socket. */
async function pair(): Promise<{ conn: Connection; server: Socket; client: Socket; close(): void }> {
  const listener = createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve));
  const client = connect(port, '127.0.0.1');
  const server = await accepted;
  const conn = new Connection(server, { maxLineBytes: 512, idleTimeoutMs: 10_000 });
  return {
    conn,
    server,
    client,
    close() {
      client.destroy();
      conn.destroy();
      listener.close();
    },
  };
}

function received(client: Socket, bytes: number): Promise<string> {
  let text = '';
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.length >= bytes) {
        client.off('data', onData);
        resolve(text);
      }
    };
    client.on('data', onData);
  });
}

test('replies to pipelined commands wait until the last buffered command is read, then leave together', async () => {
  const { conn, server, client, close } = await pair();
  try {
    client.write('ONE\r\nTWO\r\nTHREE\r\n');
    const answers = received(client, 'one\r\ntwo\r\nthree\r\n'.length);
    assert.deepEqual(await conn.readLine(), { kind: 'line', text: 'ONE' });
    conn.send('one\r\n');
    assert.deepEqual(await conn.readLine(), { kind: 'line', text: 'TWO' });
    conn.send(Buffer.from('two\r\n'));
    assert.deepEqual(await conn.readLine(), { kind: 'line', text: 'THREE' });
    conn.send('three\r\n');
    assert.equal(server.bytesWritten, 0, 'nothing written while commands were waiting');
    const fourth = conn.readLine(); // nothing buffered: the replies go out now
    assert.equal(await answers, 'one\r\ntwo\r\nthree\r\n');
    client.write('FOUR\r\n');
    assert.deepEqual(await fourth, { kind: 'line', text: 'FOUR' });
  } finally {
    close();
  }
});

test('text replies to a pipelined group go to the socket in one write call; with a buffer among them, corked', async () => {
  const { conn, server, client, close } = await pair();
  try {
    const writes: string[] = [];
    const write = server.write.bind(server);
    server.write = ((data: string | Buffer, ...rest: never[]) => {
      writes.push(typeof data === 'string' ? 'string' : 'buffer');
      return write(data, ...rest);
    }) as typeof server.write;
    client.write('A\r\nB\r\nC\r\n');
    const answers = received(client, 'a\r\nb\r\nc\r\n'.length);
    for (const reply of ['a\r\n', 'b\r\n', 'c\r\n']) {
      assert.equal((await conn.readLine()).kind, 'line');
      conn.send(reply);
    }
    const next = conn.readLine(); // nothing buffered: the replies go out now
    assert.equal(await answers, 'a\r\nb\r\nc\r\n');
    assert.deepEqual(writes, ['string'], 'one write for the three replies');

    client.write('D\r\nE\r\n');
    assert.equal((await next).kind, 'line');
    const mixed = received(client, 'd\r\ne\r\n'.length);
    conn.send('d\r\n');
    assert.equal((await conn.readLine()).kind, 'line');
    conn.send(Buffer.from('e\r\n'));
    const last = conn.readLine();
    assert.equal(await mixed, 'd\r\ne\r\n', 'the same bytes, in order');
    assert.deepEqual(writes.slice(1), ['string', 'buffer'], 'each part written (corked) when a buffer is among them');
    client.write('F\r\n');
    await last;
  } finally {
    close();
  }
});

test('a long pipelined run of replies is sent as it grows, not held until the end', async () => {
  const { conn, server, client, close } = await pair();
  try {
    const commands = 200;
    const reply = Buffer.alloc(2000, 'x');
    client.write('RETR\r\n'.repeat(commands));
    const all = received(client, commands * reply.length);
    for (let i = 0; i < commands; i++) {
      assert.equal((await conn.readLine()).kind, 'line');
      conn.send(reply);
    }
    assert.ok(server.bytesWritten > 0 && server.bytesWritten < commands * reply.length, `${server.bytesWritten} bytes written before the last command`);
    void conn.readLine();
    assert.equal((await all).length, commands * reply.length);
  } finally {
    close();
  }
});

test('bytes held as text (Latin1Text: one character per byte) reach the client byte for byte, alone, after a UTF-8 reply in one group, and past 16 KiB', async () => {
  const { conn, client, close } = await pair();
  try {
    const eightBit = 'caf\xe9 \xff\x00 \x80\r\n'; // (as UTF-8 these would be other bytes)
    const large = `${'\xe9'.repeat(40_000)}\r\n`; // (beyond the 16 KiB Node writes straight from its stack)
    const utf8 = 'caf\u00e9\r\n';
    const expected = Buffer.concat([Buffer.from(eightBit, 'latin1'), Buffer.from(utf8, 'utf8'), Buffer.from(eightBit, 'latin1'), Buffer.from(large, 'latin1')]);
    const bytes: Buffer[] = [];
    const all = new Promise<void>((resolve) => {
      let length = 0;
      client.on('data', (chunk: Buffer) => {
        bytes.push(chunk);
        length += chunk.length;
        if (length >= expected.length) resolve();
      });
    });
    client.write('ONE\r\n');
    assert.equal((await conn.readLine()).kind, 'line');
    conn.send({ latin1: eightBit });
    const second = conn.readLine(); // nothing buffered: the reply goes out alone
    client.write('TWO\r\nTHREE\r\n');
    assert.equal((await second).kind, 'line');
    conn.send(utf8);
    assert.equal((await conn.readLine()).kind, 'line'); // THREE was buffered: the UTF-8 reply waits for the group
    conn.send({ latin1: eightBit });
    conn.send({ latin1: large });
    void conn.readLine(); // nothing more buffered: the group goes out (a string and two texts, corked)
    await all;
    assert.deepEqual(Buffer.concat(bytes), expected);
  } finally {
    close();
  }
});
