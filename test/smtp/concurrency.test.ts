// Many clients at once into one mailbox: the appender batches them under one
// dot-lock and one fsync (group commit), and every message must be there,
// whole, exactly once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { sendMail } from '../helpers/smtp-client.ts';
import { readOrNull, startTestServer } from '../helpers/test-server.ts';

test('100 concurrent deliveries to one mailbox: each stored exactly once and intact', async (t) => {
  const server = await startTestServer({ config: { limits: { maxConnections: 200, maxConnectionsPerIp: 200 } } });
  t.after(() => server.close());
  const count = 100;
  const bodyOf = (i: number) => `token-${i}-${'.'.repeat(i)}\nFrom line ${i} to quote\n${`line of ${i}\n`.repeat(i)}`;
  const results = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      sendMail(server.port, {
        from: `sender${i}@example.org`,
        to: ['jjordan@localhost'],
        data: `Subject: message ${i}\n\n${bodyOf(i)}`,
      }),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.final.code),
    Array(count).fill(250),
  );

  const messages = await server.messages('jjordan');
  assert.equal(messages.length, count);
  const seen = new Map<number, number>();
  for (const { entry, content } of messages) {
    const text = content.toString();
    const match = /\n\ntoken-(\d+)-/.exec(text);
    assert.ok(match, `a message without its token: ${text.slice(0, 200)}`);
    const i = Number(match[1]);
    seen.set(i, (seen.get(i) ?? 0) + 1);
    assert.equal(entry.envelopeFrom, `sender${i}@example.org`, 'the From line belongs to the message');
    assert.equal(text.slice(text.indexOf('\n\n') + 2), bodyOf(i), `message ${i} is intact`);
  }
  assert.deepEqual(
    [...seen.keys()].sort((a, b) => a - b),
    Array.from({ length: count }, (_, i) => i),
  );
  assert.ok([...seen.values()].every((n) => n === 1), 'no message stored twice');
  // The raw file: one separator line per message, everything else quoted.
  const raw = await readFile(server.mboxPath('jjordan'), 'utf8');
  assert.equal(raw.match(/^From /gm)?.length, count);
  assert.equal(await readOrNull(server.mboxPath('jjordan') + '.lock'), null);
});
