// The index journal (store/flag-journal.ts): flag lines applied when newer,
// the recent mark, new-mail lines counted only with their "mbox" line,
// replaying a journal already merged changes nothing, a torn last line is
// cut off, a journal of another UIDVALIDITY is emptied, damage stops the
// reading; and the flag sets themselves (store/flags.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { appendFlagJournal, applyFlagJournal, flagJournalPathFor, formatAppended, formatEntries, isJournalSmall } from '../../src/store/flag-journal.ts';
import { FlagPool, InvalidFlagError, MAX_KEYWORDS } from '../../src/store/flags.ts';
import { emptyIndex } from '../../src/store/mbox-index.ts';
import type { MailboxIndex } from '../../src/store/mbox-index.ts';
import { plainIndex, scratchDir } from './helpers.ts';

const dir = await scratchDir('flag-journal');
let counter = 0;
const freshMbox = () => path.join(dir, `INBOX${counter++}`);
const FP = '0123456789abcdef';

// An index of three messages (UIDs 1, 2, 5) at mod-sequence 10.
function threeMessages(): MailboxIndex {
  const index = { ...emptyIndex(777), uidNext: 6, mboxSize: 300, highestModseq: 10 };
  [1, 2, 5].forEach((uid, k) => index.messages.push({ uid, offset: k * 100, length: 99, contentOffset: k * 100 + 30, size: 80, fingerprint: FP, internalDate: 1000, modseq: 10, flagId: 0 }));
  return index;
}

async function journal(mbox: string, text: string): Promise<void> {
  await fs.writeFile(flagJournalPathFor(mbox), text);
}

test('flag lines apply when newer; the recent mark moves forward only', async () => {
  const mbox = freshMbox();
  const index = threeMessages();
  await journal(mbox, 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\n2 12 \\Flagged $Work\n1 9 \\Deleted\n3 13 \\Seen\nrecent 4\nrecent 2\n');
  const bytes = await applyFlagJournal(mbox, index);
  assert.equal(bytes, (await fs.stat(flagJournalPathFor(mbox))).size);
  assert.deepEqual(index.messages.records().map((m) => [m.uid, m.flags, m.modseq]), [[1, ['\\Seen'], 11], [2, ['\\Flagged', '$Work'], 12], [5, [], 10]]);
  assert.equal(index.highestModseq, 13, 'a line for a UID since expunged still moves HIGHESTMODSEQ');
  assert.equal(index.recentUid, 4);
  // Applied again (a crash before the journal was emptied): nothing changes.
  const once = plainIndex(index);
  await applyFlagJournal(mbox, index);
  assert.deepEqual(plainIndex(index), once);
});

test('new-mail lines count only with the "mbox" line after them, and only if they follow on', async () => {
  const mbox = freshMbox();
  const grown = threeMessages();
  grown.messages.push({ uid: 6, offset: 300, length: 50, contentOffset: 330, size: 40, fingerprint: FP, internalDate: 2000, modseq: 11, flagId: grown.messages.flags.idOf(['\\Seen']) });
  Object.assign(grown, { mboxSize: 351, uidNext: 7, highestModseq: 11, mboxMtimeMs: 1234.5, tailHash: 'aaaaaaaaaaaaaaaa' });
  const lines = formatAppended(grown, 3);
  assert.equal(lines, `+3 6 300 50 330 40 ${FP} 2000 11 - \\Seen\nmbox size=351 mtime=1234.5 tail=aaaaaaaaaaaaaaaa uidnext=7 modseq=11\n`);
  await journal(mbox, `jjordan-flags 1 uidvalidity=777\n${lines}6 12 \\Answered\n`);
  const index = threeMessages();
  await applyFlagJournal(mbox, index);
  assert.deepEqual(index.messages.records().map((m) => [m.uid, m.flags]), [[1, []], [2, []], [5, []], [6, ['\\Answered']]]);
  assert.deepEqual([index.mboxSize, index.uidNext, index.highestModseq, index.mboxMtimeMs, index.tailHash], [351, 7, 12, 1234.5, 'aaaaaaaaaaaaaaaa']);
  // Without its "mbox" line (cut by a crash): the message is not believed.
  await journal(mbox, `jjordan-flags 1 uidvalidity=777\n${lines.split('\n')[0]}\n`);
  const cut = threeMessages();
  await applyFlagJournal(mbox, cut);
  assert.deepEqual([cut.messages.length, cut.mboxSize, cut.uidNext], [3, 300, 6]);
  // Applied to an index that holds it already (merged): nothing doubles, and later lines are not believed.
  await journal(mbox, `jjordan-flags 1 uidvalidity=777\n${lines}`);
  await applyFlagJournal(mbox, grown);
  assert.equal(grown.messages.length, 4);
});

test('a new-mail line carries the message\'s CRC ("+3"); the older "+ " form without one is still read', async () => {
  const mbox = freshMbox();
  const grown = threeMessages();
  grown.messages.push({ uid: 6, offset: 300, length: 50, contentOffset: 330, size: 40, fingerprint: FP, internalDate: 2000, modseq: 11, flagId: 0, crc: 0x0bad1dea });
  Object.assign(grown, { mboxSize: 351, uidNext: 7, highestModseq: 11, mboxMtimeMs: 1234.5, tailHash: 'aaaaaaaaaaaaaaaa' });
  const mboxLine = 'mbox size=351 mtime=1234.5 tail=aaaaaaaaaaaaaaaa uidnext=7 modseq=11\n';
  assert.equal(formatAppended(grown, 3), `+3 6 300 50 330 40 ${FP} 2000 11 0bad1dea\n${mboxLine}`);
  const applied = async (text: string) => {
    await journal(mbox, `jjordan-flags 1 uidvalidity=777\n${text}`);
    const index = threeMessages();
    await applyFlagJournal(mbox, index);
    return index.messages.length === 4 ? [index.messages.crcAt(3), index.messages.records()[3].flags] : 'not applied';
  };
  assert.deepEqual(await applied(formatAppended(grown, 3)), [0x0bad1dea, []]);
  assert.deepEqual(await applied(`+ 6 300 50 330 40 ${FP} 2000 11 \\Seen\n${mboxLine}`), [-1, ['\\Seen']], 'the older form');
  assert.deepEqual(await applied(`+3 6 300 50 330 40 ${FP} 2000 11 - $Label\n${mboxLine}`), [-1, ['$Label']]);
  assert.equal(await applied(`+3 6 300 50 330 40 ${FP} 2000 11 \\Seen\n${mboxLine}`), 'not applied', 'a "+3" line without its CRC is damage');
});

test('a torn last line is cut off the file; another UIDVALIDITY empties it; damage stops the reading', async () => {
  const mbox = freshMbox();
  await journal(mbox, 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\n2 12 \\Fla');
  const index = threeMessages();
  assert.equal(await applyFlagJournal(mbox, index), 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\n'.length);
  assert.equal(await fs.readFile(flagJournalPathFor(mbox), 'utf8'), 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\n');
  assert.deepEqual(index.messages.records().map((m) => m.flags), [['\\Seen'], [], []]);

  await journal(mbox, 'jjordan-flags 1 uidvalidity=666\n1 11 \\Seen\n');
  const other = threeMessages();
  assert.equal(await applyFlagJournal(mbox, other), 0);
  assert.deepEqual(other.messages.records().map((m) => m.flags), [[], [], []]);
  assert.equal((await fs.stat(flagJournalPathFor(mbox))).size, 0);

  await journal(mbox, 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\ngarbage here\n2 12 \\Seen\n');
  const damaged = threeMessages();
  await applyFlagJournal(mbox, damaged);
  assert.deepEqual(damaged.messages.records().map((m) => m.flags), [['\\Seen'], [], []]);
});

test('appending starts a journal with its header, and a failed write leaves no half line', async () => {
  const mbox = freshMbox();
  const size = await appendFlagJournal(mbox, 777, formatEntries([{ uid: 1, modseq: 11, flags: '\\Seen' }, { uid: 2, modseq: 11, flags: '' }]));
  const text = await fs.readFile(flagJournalPathFor(mbox), 'utf8');
  assert.equal(text, 'jjordan-flags 1 uidvalidity=777\n1 11 \\Seen\n2 11\n');
  assert.equal(size, text.length);
  assert.equal((await fs.stat(flagJournalPathFor(mbox))).mode & 0o777, 0o600);
  assert.equal(await appendFlagJournal(mbox, 777, 'recent 3\n', true), size + 'recent 3\n'.length);
  assert.ok(isJournalSmall(16 * 1024, 0) && !isJournalSmall(16 * 1024 + 1, 0) && isJournalSmall(16 * 1024 + 16_000, 1000));
});

test('flag sets: canonical order and spelling, keywords without case, validity, limits', () => {
  const pool = new FlagPool();
  const a = pool.idOf(['$Label1', '\\seen', '\\ANSWERED', '\\Seen']);
  assert.deepEqual(pool.list(a), ['\\Answered', '\\Seen', '$Label1']);
  assert.equal(pool.text(a), '\\Answered \\Seen $Label1');
  assert.equal(pool.idOf(['\\Seen', '$label1', '\\Answered']), a, 'same set, one id; the keyword keeps its first spelling');
  assert.ok(Object.isFrozen(pool.list(a)), 'shared, so frozen');
  assert.equal(pool.idOf([]), 0);
  assert.deepEqual(pool.list(pool.apply(a, 'remove', ['$LABEL1', '\\answered'])), ['\\Seen']);
  assert.deepEqual(pool.list(pool.apply(0, 'add', ['zeta', 'Alpha'])), ['Alpha', 'zeta']);
  assert.deepEqual(pool.list(pool.apply(a, 'set', ['\\Draft'])), ['\\Draft']);
  for (const bad of ['\\Recent', '\\Unknown', 'two words', 'paren(', 'quote"', 'star*', 'pct%', 'brace{', 'bracket]', 'ünïcode', '', 'x'.repeat(101)]) {
    assert.throws(() => pool.idOf([bad]), InvalidFlagError, JSON.stringify(bad));
  }
  assert.throws(() => pool.apply(a, 'remove', ['\\Recent']), InvalidFlagError);
  assert.deepEqual(pool.list(pool.idOfText('\\Seen bad(one \\Bogus ok')), ['\\Seen', 'ok'], 'read tolerantly from a file');
  const many = new FlagPool();
  for (let i = 0; i < MAX_KEYWORDS; i++) many.idOf([`k${i}`]);
  assert.throws(() => many.idOf(['one-too-many']), /too many keywords/);
  assert.equal(many.keywords().length, MAX_KEYWORDS);
});
