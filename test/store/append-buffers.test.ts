// The appender's write buffers when many mailboxes receive mail at once:
// every writer loop ends after almost every batch, so each one must find a
// spare buffer to reuse. A buffer allocated afresh per batch is external
// memory that drives V8's full collector (issue 11: ten mailboxes cost
// three times the garbage collection of one). Counted by watching
// Buffer.allocUnsafe for buffers of the appender's size.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFile } from 'node:fs/promises';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { contentOf, scratchDir } from './helpers.ts';

const MAILBOXES = 10;
const BIG = 64 * 1024; // anything this large is a write buffer, not a message piece

test('ten mailboxes written together reuse their write buffers round after round', async () => {
  const dir = await scratchDir('append-buffers');
  const appender = new MboxAppender();
  const boxes = Array.from({ length: MAILBOXES }, (_, i) => path.join(dir, `user${i}`, 'INBOX'));
  const round = (n: number) =>
    Promise.all(boxes.map((box) => appender.append(box, { envelopeFrom: 'a@example.org', date: new Date(0), content: contentOf(`Subject: ${n}\n\nround ${n}\n`) })));

  await round(1); // the first round allocates one buffer per mailbox

  const allocUnsafe = Buffer.allocUnsafe;
  let allocated = 0;
  Buffer.allocUnsafe = (size: number) => {
    if (size >= BIG) allocated++;
    return allocUnsafe(size);
  };
  try {
    for (let n = 2; n <= 4; n++) await round(n);
  } finally {
    Buffer.allocUnsafe = allocUnsafe;
  }
  assert.equal(allocated, 0);
  for (const box of boxes) {
    const text = await readFile(box, 'utf8');
    assert.equal(text.match(/^From /gm)?.length, 4);
    assert.match(text, /round 1\n\nFrom [^\n]*\nSubject: 2\n\nround 2\n\n[^]*round 4\n\n$/);
  }
});
