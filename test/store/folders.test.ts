// An account's folders (store/folders.ts): LIST, CREATE (with parents and
// the trailing-"/" form), DELETE (INBOX and folders with children refused),
// RENAME (with subfolders; INBOX's messages move and INBOX stays, empty,
// keeping its UIDVALIDITY), case-fold collisions, subscriptions, and the
// default folders made once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  createFolder,
  deleteFolder,
  ensureDefaultFolders,
  FolderExistsError,
  FolderHasChildrenError,
  folderPath,
  InvalidMailboxNameError,
  listFolders,
  NoSuchFolderError,
  renameFolder,
  setSubscribed,
  subscriptions,
} from '../../src/store/folders.ts';
import { openMailbox } from '../../src/store/mailbox.ts';
import type { MailboxChange } from '../../src/store/mailbox.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';
import { indexPathFor, loadIndex } from '../../src/store/mbox-index.ts';
import { contentOf, scratchDir, withoutStamps } from './helpers.ts';

const dir = await scratchDir('folders');
let counter = 0;
async function freshAccount(): Promise<string> {
  const account = path.join(dir, `user${counter++}`);
  await fs.mkdir(account);
  return account;
}

async function deliver(mbox: string, subjects: string[]): Promise<void> {
  const appender = new MboxAppender();
  for (const s of subjects) await appender.append(mbox, { envelopeFrom: 'a@b', date: new Date(), content: contentOf(`Subject: ${s}\nMessage-ID: <${s}@x>\n\n${s}\n`) });
}

const names = async (account: string) => (await listFolders(account)).map((f) => f.name);

test('create: parents are made as empty folders; LIST shows selectable, children and special use', async () => {
  const account = await freshAccount();
  await ensureDefaultFolders(account);
  await createFolder(account, 'Archive/2024/Q1');
  await createFolder(account, 'Lists/');
  const list = await listFolders(account);
  const byName = new Map(list.map((f) => [f.name, f]));
  assert.deepEqual(list.map((f) => f.name), ['INBOX', 'Archive', 'Archive/2024', 'Archive/2024/Q1', 'Drafts', 'Junk', 'Lists', 'Sent', 'Trash']);
  assert.deepEqual(byName.get('Archive'), { name: 'Archive', selectable: true, hasChildren: true, specialUse: '\\Archive' });
  assert.deepEqual(byName.get('Archive/2024'), { name: 'Archive/2024', selectable: true, hasChildren: true, specialUse: null });
  assert.deepEqual(byName.get('Archive/2024/Q1'), { name: 'Archive/2024/Q1', selectable: true, hasChildren: false, specialUse: null });
  assert.deepEqual(byName.get('Lists'), { name: 'Lists', selectable: false, hasChildren: false, specialUse: null }, 'CREATE "Lists/": a folder for subfolders only');
  assert.equal(byName.get('Sent')!.specialUse, '\\Sent');
  // The files mutt opens, and the Thunderbird directories.
  assert.equal((await fs.stat(path.join(account, 'Archive.sbd', '2024.sbd', 'Q1'))).size, 0);
  assert.equal((await fs.stat(path.join(account, 'Archive.sbd', '2024'))).mode & 0o777, 0o600);
  assert.ok((await fs.stat(path.join(account, 'Lists.sbd'))).isDirectory());
  // A folder for subfolders only becomes selectable when created as a folder.
  await createFolder(account, 'Lists');
  assert.equal((await listFolders(account)).find((f) => f.name === 'Lists')!.selectable, true);
});

test('create refuses what exists, INBOX, and a sibling that differs only in case', async () => {
  const account = await freshAccount();
  await createFolder(account, 'Work');
  await assert.rejects(createFolder(account, 'Work'), FolderExistsError);
  await assert.rejects(createFolder(account, 'inbox'), FolderExistsError);
  await assert.rejects(createFolder(account, 'WORK'), FolderExistsError);
  await assert.rejects(createFolder(account, 'work/sub'), FolderExistsError, 'a parent that differs only in case');
  await createFolder(account, 'Work/Straße');
  await assert.rejects(createFolder(account, 'Work/STRASSE'), FolderExistsError);
  await assert.rejects(createFolder(account, '../escape'), InvalidMailboxNameError);
  await assert.rejects(createFolder(account, 'x.lock'), InvalidMailboxNameError);
  assert.deepEqual(await names(account), ['INBOX', 'Work', 'Work/Straße']);
});

test('LIST ignores the store\'s files, locks, links and names no client could make', async () => {
  const account = await freshAccount();
  await createFolder(account, 'Real');
  await deliver(folderPath(account, 'Real'), ['one']);
  await loadIndex(folderPath(account, 'Real'));
  await fs.writeFile(path.join(account, 'Real.lock'), '');
  await fs.writeFile(path.join(account, 'inbox'), ''); // another spelling of INBOX by another program
  await fs.symlink('/etc', path.join(account, 'Link'));
  await fs.symlink('/etc', path.join(account, 'Dir.sbd'));
  await fs.mkdir(path.join(account, 'plain-dir'));
  assert.deepEqual(await names(account), ['INBOX', 'Real']);
});

test('delete: refuses INBOX and folders with children; removes the mbox and its index; sessions hear "gone"', async () => {
  const account = await freshAccount();
  await createFolder(account, 'Old/Child');
  await assert.rejects(deleteFolder(account, 'INBOX'), InvalidMailboxNameError);
  await assert.rejects(deleteFolder(account, 'Old'), FolderHasChildrenError);
  await assert.rejects(deleteFolder(account, 'Nothing'), NoSuchFolderError);
  const child = folderPath(account, 'Old/Child');
  await deliver(child, ['a', 'b']);
  const box = await openMailbox(child);
  await box.setFlags([1], 'add', ['\\Seen']);
  const gone = new Promise((resolve) => box.once('gone', resolve));
  await deleteFolder(account, 'Old/Child');
  await gone;
  assert.ok(box.gone);
  await box.close();
  assert.deepEqual(withoutStamps(await fs.readdir(path.join(account, 'Old.sbd')).catch(() => [])), []);
  await deleteFolder(account, 'Old');
  assert.deepEqual(withoutStamps(await fs.readdir(account)).filter((f) => !f.startsWith('.folders')).sort(), []);
  assert.deepEqual(await names(account), ['INBOX']);
  // A folder made again under the name starts empty.
  await createFolder(account, 'Old');
  const again = await openMailbox(folderPath(account, 'Old'));
  assert.equal(again.snapshot().uids.length, 0);
  await again.close();
});

test('rename moves the mbox, its index and journals, and its subfolders; UIDs and flags stay', async () => {
  const account = await freshAccount();
  await createFolder(account, 'Projects/2024');
  const from = folderPath(account, 'Projects');
  await deliver(from, ['p1', 'p2']);
  await deliver(folderPath(account, 'Projects/2024'), ['q1']);
  const box = await openMailbox(from);
  await box.setFlags([2], 'add', ['\\Flagged']); // in the flag journal only
  const uidValidity = box.uidValidity;
  await box.close();
  await setSubscribed(account, 'Projects', true);
  await setSubscribed(account, 'Projects/2024', true);
  await setSubscribed(account, 'Other', true);
  await renameFolder(account, 'Projects', 'Done/Projects');
  assert.deepEqual(await names(account), ['INBOX', 'Done', 'Done/Projects', 'Done/Projects/2024']);
  const moved = await openMailbox(folderPath(account, 'Done/Projects'));
  assert.equal(moved.uidValidity, uidValidity);
  assert.deepEqual([...moved.snapshot().uids], [1, 2]);
  assert.deepEqual(moved.message(2)!.flags, ['\\Flagged']);
  await moved.close();
  assert.equal((await loadIndex(folderPath(account, 'Done/Projects/2024'))).messages.length, 1);
  assert.deepEqual([...(await subscriptions(account))].sort(), ['Done/Projects', 'Done/Projects/2024', 'Other']);
  await assert.rejects(renameFolder(account, 'Nothing', 'X'), NoSuchFolderError);
  await assert.rejects(renameFolder(account, 'Done', 'Done/Inside'), InvalidMailboxNameError);
  await assert.rejects(renameFolder(account, 'Done', 'INBOX'), FolderExistsError);
  await createFolder(account, 'Taken');
  await assert.rejects(renameFolder(account, 'Done', 'taken'), FolderExistsError, 'differs only in case');
});

test('renaming INBOX moves its messages and leaves it empty, with its UIDVALIDITY and no UID reused', async () => {
  const account = await freshAccount();
  const inbox = folderPath(account, 'INBOX');
  await deliver(inbox, ['m1', 'm2', 'm3']);
  await createFolder(account, 'INBOX/Kept'); // INBOX's subfolders are not moved (RFC 3501 6.3.5)
  const session = await openMailbox(inbox);
  const before = { uidValidity: session.uidValidity, uidNext: session.uidNext };
  const emptied = new Promise<MailboxChange>((resolve) => session.once('changed', resolve));
  await renameFolder(account, 'inbox', 'Old Mail');
  assert.deepEqual((await emptied).expunged, [1, 2, 3]);
  assert.equal(session.uidValidity, before.uidValidity);
  await deliver(inbox, ['new']);
  await session.refresh();
  assert.deepEqual([...session.snapshot().uids], [before.uidNext]);
  await session.close();
  const old = await openMailbox(folderPath(account, 'Old Mail'));
  assert.deepEqual([...old.snapshot().uids], [1, 2, 3]);
  await old.close();
  assert.deepEqual(await names(account), ['INBOX', 'INBOX/Kept', 'Old Mail']);
  await fs.access(indexPathFor(inbox));
});

test('subscriptions: any valid name; DELETE keeps the name (RFC 3501 6.3.9)', async () => {
  const account = await freshAccount();
  assert.deepEqual([...(await subscriptions(account))], []);
  await setSubscribed(account, 'inbox', true);
  await setSubscribed(account, 'Not/There', true);
  await createFolder(account, 'Gone');
  await setSubscribed(account, 'Gone', true);
  await deleteFolder(account, 'Gone');
  assert.deepEqual([...(await subscriptions(account))].sort(), ['Gone', 'INBOX', 'Not/There']);
  await setSubscribed(account, 'Gone', false);
  assert.deepEqual([...(await subscriptions(account))].sort(), ['INBOX', 'Not/There']);
  await assert.rejects(setSubscribed(account, '../x', true), InvalidMailboxNameError);
});

test('default folders are made and subscribed at the first login only', async () => {
  const account = path.join(dir, `fresh${counter++}`); // not even the directory yet
  await ensureDefaultFolders(account);
  assert.deepEqual(await names(account), ['INBOX', 'Archive', 'Drafts', 'Junk', 'Sent', 'Trash']);
  assert.deepEqual([...(await subscriptions(account))].sort(), ['Archive', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
  await deleteFolder(account, 'Junk');
  await ensureDefaultFolders(account);
  assert.ok(!(await names(account)).includes('Junk'), 'not made again');
});
