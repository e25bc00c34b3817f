// Interoperability: a mailbox we write must be readable by other mbox tools.
// Python's `mailbox.mbox` is the reader at hand; the test is skipped when
// python3 is not installed.
//
// Python splits messages at "From " lines like we do, but does not undo
// mboxrd quoting on reading (it treats the file as mboxo), so a body line
// "From x" comes back as ">From x". What must hold: the right number of
// messages, each with its own headers, and body "From " lines never
// splitting a message.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { quoteMboxrd } from '../../src/store/mboxrd.ts';
import { contentOf, scratchDir } from './helpers.ts';

const python = spawnSync('python3', ['-c', 'import mailbox'], { encoding: 'utf8' });
const havePython = python.status === 0;

// Prints, as JSON, the From-line remainder, Subject and body of each message.
const DUMP_MBOX = `
import json, mailbox, sys
box = mailbox.mbox(sys.argv[1], create=False)
out = [{"from": m.get_from(), "subject": m["Subject"], "body": m.get_payload()} for m in box]
print(json.dumps(out))
`;

test('Python mailbox.mbox reads what we append', { skip: !havePython && 'python3 not available' }, async () => {
  const dir = await scratchDir('python');
  const mbox = path.join(dir, 'INBOX');
  const appender = new MboxAppender();
  const date = new Date(Date.UTC(2026, 10, 22, 3, 5, 51));
  const bodies = [
    'Hello.\nFrom the desk of the editor:\nFrom here on, all is well.\n',
    '>From an already quoted line\n\nFrom \nlast line',
    'plain\n',
  ];
  const senders = ['alice@example.org', '', 'bob@example.org'];
  await Promise.all(
    bodies.map((body, i) =>
      appender.append(mbox, {
        envelopeFrom: senders[i],
        date,
        content: contentOf(`Subject: message ${i}\nTo: x@example.org\n\n${body}`),
      }),
    ),
  );

  const run = spawnSync('python3', ['-c', DUMP_MBOX, mbox], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const messages = JSON.parse(run.stdout) as { from: string; subject: string; body: string }[];
  assert.equal(messages.length, 3);
  messages.sort((a, b) => a.subject.localeCompare(b.subject)); // batch order is not call order
  for (let i = 0; i < 3; i++) {
    assert.equal(messages[i].subject, `message ${i}`);
    assert.equal(messages[i].from, `${senders[i] || 'MAILER-DAEMON'} Sun Nov 22 03:05:51 2026`);
    // Python shows the stored (quoted) form; our final LF is added if missing.
    const stored = quoteMboxrd(Buffer.from(bodies[i].endsWith('\n') ? bodies[i] : bodies[i] + '\n')).toString();
    assert.equal(messages[i].body, stored);
  }
});
