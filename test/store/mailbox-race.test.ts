// Deliveries (the SMTP path: MboxAppender, then mailboxTouched), IMAP
// appends, flag changes and expunges on one INBOX at the same time, through
// several handles: no message is lost or doubled, expunged ones are gone,
// flags stay with their messages, and the index agrees with the file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { openMailbox } from '../../src/store/mailbox.ts';
import type { Mailbox } from '../../src/store/mailbox.ts';
import { dropIdleMailboxes, mailboxTouched } from '../../src/store/mailbox-registry.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { loadIndex } from '../../src/store/mbox-index.ts';
import { readMessageBuffer, scanMbox } from '../helpers/mbox-read.ts';
import { contentOf, scratchDir } from './helpers.ts';

const dir = await scratchDir('mailbox-race');
const DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));
const text = (name: string) => `Subject: ${name}\nMessage-ID: <${name.replace(/\W/g, '-')}@race>\n\nBody of ${name}.\nFrom the desk of ${name}\n`;

async function subjectsInFile(mbox: string): Promise<string[]> {
  const subjects: string[] = [];
  for await (const entry of scanMbox(mbox)) subjects.push(/Subject: (.*)/.exec((await readMessageBuffer(mbox, entry)).toString())![1]);
  return subjects;
}

async function subjectOf(box: Mailbox, uid: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of box.read(uid)) chunks.push(chunk);
  return /Subject: (.*)/.exec(Buffer.concat(chunks).toString())![1];
}

test('deliveries, appends, flag changes and expunges at once lose and double nothing', { timeout: 60_000 }, async () => {
  const mbox = path.join(dir, 'jjordan', 'INBOX');
  const appender = new MboxAppender();
  const delivered: string[] = [];
  const deliver = async (name: string) => {
    await appender.append(mbox, { envelopeFrom: 'a@example.org', date: DATE, content: contentOf(text(name)) });
    delivered.push(name);
    mailboxTouched(mbox);
  };
  for (let i = 0; i < 20; i++) await deliver(`first ${i}`);
  const a = await openMailbox(mbox);
  const b = await openMailbox(mbox);
  const expunged = new Set<string>();
  const flagged = new Set<string>();
  try {
    for (let round = 0; round < 4; round++) {
      // Pick by subject what to flag and what to expunge, from b's current view.
      const view = [...b.snapshot().uids];
      const subjects = new Map<number, string>();
      for (const uid of view) subjects.set(uid, await subjectOf(b, uid));
      const toExpunge = view.filter((_, k) => k % 3 === round % 3).slice(0, 4);
      const toFlag = view.filter((uid) => !toExpunge.includes(uid)).slice(0, 5);
      const work: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) work.push(deliver(`round ${round} delivery ${i}`));
      work.push(a.append([{ content: contentOf(text(`round ${round} append`)), flags: ['\\Seen'], internalDate: DATE }]).then(() => delivered.push(`round ${round} append`)));
      work.push(a.setFlags(toFlag, 'add', ['\\Flagged']).then((changes) => changes.forEach((c) => flagged.add(subjects.get(c.uid)!))));
      work.push(b.expunge(toExpunge).then((removed) => removed.forEach((uid) => expunged.add(subjects.get(uid)!))));
      await Promise.all(work);
      await a.refresh();
      // Both handles see the same messages, each readable and the right one.
      assert.deepEqual([...a.snapshot().uids], [...b.snapshot().uids]);
      for (const uid of a.snapshot().uids) assert.ok(delivered.includes(await subjectOf(a, uid)));
    }
    const expected = delivered.filter((name) => !expunged.has(name)).sort();
    assert.deepEqual((await subjectsInFile(mbox)).sort(), expected, 'every message once, the expunged ones gone');
    const uids = [...a.snapshot().uids];
    assert.equal(uids.length, expected.length);
    assert.ok(uids.every((uid, k) => k === 0 || uid > uids[k - 1]), 'UIDs ascend');
    for (const uid of uids) {
      const subject = await subjectOf(a, uid);
      assert.equal(a.message(uid)!.flags.includes('\\Flagged'), flagged.has(subject), `flags of ${subject}`);
    }
  } finally {
    await a.close();
    await b.close();
  }
  // The files say the same once read afresh.
  await dropIdleMailboxes();
  const index = await loadIndex(mbox);
  assert.equal(index.messages.length, delivered.length - expunged.size);
  assert.equal(index.messages.records().filter((m) => m.flags.includes('\\Flagged')).length, [...flagged].filter((s) => !expunged.has(s)).length);
});
