// DELETE and RENAME interrupted at every step (store/folder-changes.ts):
// the next call into folders.ts for the account completes the operation,
// and the account is consistent: the folder wholly at its new name (mbox,
// index with its UIDVALIDITY, flag journal, subfolders) or wholly gone, no
// mail lost, INBOX emptied but never reusing a UID. The steps are
// interrupted in this process by a hook that throws, and once by killing a
// child process (SIGKILL: no cleanup runs, its dot-lock stays behind).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { intentPath } from '../../src/store/folder-changes.ts';
import { createFolder, deleteFolder, folderPath, listFolders, renameFolder, setSubscribed, subscriptions } from '../../src/store/folders.ts';
import type { FolderHooks } from '../../src/store/folders.ts';
import { openMailbox } from '../../src/store/mailbox.ts';
import { dropIdleMailboxes } from '../../src/store/mailbox-registry.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { loadIndex } from '../../src/store/mbox-index.ts';
import { contentOf, scratchDir, withoutStamps } from './helpers.ts';

const dir = await scratchDir('folder-crash');
let counter = 0;
const CHILD = fileURLToPath(new URL('./children/folder-child.ts', import.meta.url));

class Crash extends Error {}

async function deliver(mbox: string, subjects: string[]): Promise<void> {
  const appender = new MboxAppender();
  for (const s of subjects) await appender.append(mbox, { envelopeFrom: 'a@b', date: new Date(), content: contentOf(`Subject: ${s}\nMessage-ID: <${s}@x>\n\n${s}\n`) });
}

// An account with "Projects" (2 messages, one flagged in the journal only)
// and "Projects/2024" (1 message), subscribed, and 3 messages in INBOX.
async function account(): Promise<{ account: string; uidValidity: number; inboxUidValidity: number }> {
  const account = path.join(dir, `user${counter++}`);
  await fs.mkdir(account);
  await createFolder(account, 'Projects/2024');
  await deliver(folderPath(account, 'Projects'), ['p1', 'p2']);
  await deliver(folderPath(account, 'Projects/2024'), ['q1']);
  await deliver(folderPath(account, 'INBOX'), ['i1', 'i2', 'i3']);
  const box = await openMailbox(folderPath(account, 'Projects'));
  await box.setFlags([2], 'add', ['\\Flagged']);
  const uidValidity = box.uidValidity;
  await box.close();
  const inbox = await loadIndex(folderPath(account, 'INBOX'));
  await setSubscribed(account, 'Projects', true);
  await dropIdleMailboxes();
  return { account, uidValidity, inboxUidValidity: inbox.uidValidity };
}

// The steps an operation goes through, in order.
async function stepsOf(run: (account: string, hooks: FolderHooks) => Promise<void>): Promise<string[]> {
  const { account: acct } = await account();
  const steps: string[] = [];
  await run(acct, { afterStep: (step) => void steps.push(step) });
  return steps;
}

async function crashAt(acct: string, step: string, run: (account: string, hooks: FolderHooks) => Promise<void>): Promise<void> {
  await assert.rejects(run(acct, { afterStep: (s) => { if (s === step) throw new Crash(step); } }), Crash);
  await dropIdleMailboxes();
}

async function checkRenamed(acct: string, uidValidity: number, label: string): Promise<void> {
  const names = (await listFolders(acct)).map((f) => f.name); // completes the interrupted rename
  assert.deepEqual(names, ['INBOX', 'Done', 'Done/Projects', 'Done/Projects/2024'], label);
  await assert.rejects(fs.access(intentPath(acct)), { code: 'ENOENT' }, `${label}: intent cleared`);
  const moved = await openMailbox(folderPath(acct, 'Done/Projects'));
  assert.equal(moved.uidValidity, uidValidity, `${label}: same UIDVALIDITY`);
  assert.deepEqual([...moved.snapshot().uids], [1, 2], label);
  assert.deepEqual(moved.message(2)!.flags, ['\\Flagged'], `${label}: the journal moved too`);
  await moved.close();
  assert.equal((await loadIndex(folderPath(acct, 'Done/Projects/2024'))).messages.length, 1, label);
  assert.deepEqual([...(await subscriptions(acct))], ['Done/Projects'], label);
  for (const left of await fs.readdir(acct)) assert.ok(!left.includes('Projects'), `${label}: ${left} left behind`);
}

const rename = (acct: string, hooks: FolderHooks) => renameFolder(acct, 'Projects', 'Done/Projects', hooks);
const remove = (acct: string, hooks: FolderHooks) => deleteFolder(acct, 'Projects/2024', hooks);
const renameInbox = (acct: string, hooks: FolderHooks) => renameFolder(acct, 'INBOX', 'Saved', hooks);

test('RENAME interrupted after any step is completed by the next call', async () => {
  const steps = await stepsOf(rename);
  assert.ok(steps.length >= 6, steps.join(', '));
  for (const step of steps) {
    const { account: acct, uidValidity } = await account();
    await crashAt(acct, step, rename);
    await checkRenamed(acct, uidValidity, `after "${step}"`);
  }
});

test('DELETE interrupted after any step is completed by the next call', async () => {
  const steps = await stepsOf(remove);
  assert.ok(steps.length >= 4, steps.join(', '));
  for (const step of steps) {
    const { account: acct } = await account();
    await crashAt(acct, step, remove);
    assert.deepEqual((await listFolders(acct)).map((f) => [f.name, f.hasChildren]), [['INBOX', false], ['Projects', false]], `after "${step}"`);
    assert.deepEqual(withoutStamps(await fs.readdir(path.join(acct, 'Projects.sbd')).catch(() => [])), [], `after "${step}": nothing left`);
    assert.equal((await loadIndex(folderPath(acct, 'Projects'))).messages.length, 2);
  }
});

test('RENAME of INBOX interrupted after any step: the mail in the new folder, INBOX empty, no UID reused', async () => {
  const steps = await stepsOf(renameInbox);
  for (const step of steps) {
    const { account: acct, inboxUidValidity } = await account();
    await crashAt(acct, step, renameInbox);
    assert.deepEqual((await listFolders(acct)).map((f) => f.name), ['INBOX', 'Projects', 'Projects/2024', 'Saved'], `after "${step}"`);
    const saved = await loadIndex(folderPath(acct, 'Saved'));
    assert.deepEqual(saved.messages.records().map((m) => m.uid), [1, 2, 3], `after "${step}"`);
    assert.equal(saved.uidValidity, inboxUidValidity);
    await deliver(folderPath(acct, 'INBOX'), ['after']);
    const inbox = await loadIndex(folderPath(acct, 'INBOX'));
    assert.equal(inbox.uidValidity, inboxUidValidity, `after "${step}": INBOX keeps its UIDVALIDITY`);
    assert.deepEqual(inbox.messages.records().map((m) => m.uid), [4], `after "${step}": the next UID, not 1`);
  }
});

test('a process killed in the middle of RENAME: the next call breaks its lock and completes it', async () => {
  const { account: acct, uidValidity } = await account();
  const child = spawn(process.execPath, [CHILD, acct, 'mbox', 'rename', 'Projects', 'Done/Projects'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [code, signal] = await once(child, 'exit');
  assert.deepEqual([code, signal], [null, 'SIGKILL']);
  await fs.access(intentPath(acct)); // left behind
  await fs.access(path.join(acct, 'Projects.lock')); // and its dot-lock, with a dead PID in it
  await checkRenamed(acct, uidValidity, 'after a kill');
});
