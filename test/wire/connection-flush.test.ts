// Input that arrives while the connection writes. A TLS socket holds
// records it has received and hands them over when it is next driven, and
// a write drives it: so the `data` event can fire inside the flush that
// comes right before a wait for input. That input must not be waited for
// (until the idle deadline, which then also marks the connection as timed
// out): the webmail's IMAP client stalled for a minute on exactly this.
//
// The socket here is a stand-in that does, every time, what a TLS socket
// does now and then: deliver the next bytes from inside write().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { Connection } from '../../src/wire/connection.ts';

class DeliversOnWrite extends EventEmitter {
  remoteAddress = '127.0.0.1';
  remotePort = 1;
  writableLength = 0;
  destroyed = false;
  writable = true;
  written: string[] = [];
  private readonly pending: Buffer[];

  constructor(pending: Buffer[]) {
    super();
    this.pending = pending;
  }

  write(data: string | Buffer): boolean {
    this.written.push(String(data));
    const next = this.pending.shift();
    if (next) this.emit('data', next); // synchronously, inside write()
    return true;
  }
  isPaused(): boolean {
    return false;
  }
  pause(): void {}
  resume(): void {}
  end(): void {}
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

test('bytes delivered during the flush before a wait are read at once, and the connection is not timed out', async () => {
  const socket = new DeliversOnWrite([Buffer.from('HELLO')]);
  const conn = new Connection(socket as unknown as Socket, { maxLineBytes: 1000, idleTimeoutMs: 300 });
  // A reply is queued (an IMAP "+ Ready for literal data"), then the literal is read.
  conn.send('+ Ready\r\n');
  const got: Buffer[] = [];
  assert.equal(await conn.readExactly(5, (chunk) => void got.push(chunk)), 'done');
  assert.equal(Buffer.concat(got).toString(), 'HELLO');
  assert.deepEqual(socket.written, ['+ Ready\r\n']);
  // The next command comes a moment later: the connection is still in good standing.
  setTimeout(() => socket.emit('data', Buffer.from('next line\r\n')), 20);
  assert.deepEqual(await conn.readLine(), { kind: 'line', text: 'next line' }, 'not a timeout');
  conn.destroy();
});
