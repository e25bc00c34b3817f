// The IMAP commands of the selected state that act on messages as a whole
// (RFC 3501 6.4): NOOP and CHECK (a chance for updates), CLOSE and UNSELECT
// (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), COPY and MOVE (RFC 6851),
// with COPYUID (RFC 4315). FETCH, STORE and SEARCH have files of their own.
//
// When the client may be told of expunges (RFC 3501 7.4.1): at the end of
// NOOP, CHECK, EXPUNGE, COPY and MOVE, and of every UID command; never
// during FETCH, STORE or SEARCH, which keep sequence numbers stable.

import { no, ok } from './response.ts';
import type { ImapResponse } from './response.ts';
import { storeCall } from './errors.ts';
import { openFolder } from './mailbox-commands.ts';
import { readMailboxName } from './mailbox-names.ts';
import type { Selected } from './selected.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';
import { pendingUpdates } from './extensions.ts';

const answer = (reply: ImapResponse): ImapOutcome => ({ reply });

/**
 * NOOP (RFC 3501 6.1.2) and CHECK (6.4.1): nothing, then the updates. (What
 * other programs changed, mutt or procmail, is known already: the session
 * looks at the selected mailbox before every command, session.ts.)
 */
export function noop(session: ImapView, { tag, verb, args }: ImapRequest): ImapOutcome {
  args.end();
  return answer(ok(tag, `${verb} completed`, undefined, pendingUpdates(session.state, true)));
}

/** CLOSE (RFC 3501 6.4.2): expunge silently (unless read-only), then leave the mailbox. UNSELECT (RFC 3691): only leave. */
export async function close(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  args.end();
  const selected = session.state.selected!;
  if (verb === 'CLOSE' && !selected.readOnly) {
    const removed = await storeCall(tag, false, () => selected.mailbox.expunge(deletedUids(selected, null)));
    if ('reply' in removed) return answer(removed.reply);
  }
  await selected.close();
  return { change: { phase: 'authenticated', selected: null }, reply: ok(tag, `${verb} completed`) };
}

/** The UIDs of the messages marked \Deleted (in `only`, when given). */
function deletedUids(selected: Selected, only: ReadonlySet<number> | null): number[] {
  const uids: number[] = [];
  for (let seq = 1; seq <= selected.exists; seq++) {
    const uid = selected.uidAt(seq);
    if (only && !only.has(uid)) continue;
    if (selected.message(uid)?.flags.includes('\\Deleted')) uids.push(uid);
  }
  return uids;
}

/** EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE set (RFC 4315 2.1). */
export async function expunge(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const byUid = verb === 'UID EXPUNGE';
  const selected = session.state.selected!;
  const only = byUid ? new Set(selected.resolve(args.sp().sequenceSet(), true)) : null;
  args.end();
  if (selected.readOnly) return answer(no(tag, 'The mailbox is read-only (EXAMINE)', 'READ-ONLY'));
  const removed = await storeCall(tag, false, () => selected.mailbox.expunge(deletedUids(selected, only)));
  if ('reply' in removed) return answer(removed.reply);
  return answer(ok(tag, `${verb} completed`, undefined, pendingUpdates(session.state, true)));
}

/**
 * COPY and MOVE (RFC 3501 6.4.7, RFC 6851): the messages are appended to the
 * target, durably, with their flags and dates; COPYUID tells the client the
 * new UIDs (RFC 4315 3). MOVE then expunges them here; a crash in between
 * leaves them in both folders, never in neither (RFC 6851 3.3 allows that).
 */
export async function copyOrMove(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const byUid = verb.startsWith('UID ');
  const move = verb.endsWith('MOVE');
  const selected = session.state.selected!;
  const uids = selected.resolve(args.sp().sequenceSet(), byUid);
  const name = readMailboxName(args.sp(), session.state);
  args.end();
  if (move && selected.readOnly) return answer(no(tag, 'The mailbox is read-only (EXAMINE)', 'READ-ONLY'));
  const records = uids.map((uid) => selected.message(uid));
  if (records.some((record) => record === undefined)) return answer(no(tag, 'Some of the messages no longer exist', 'EXPUNGEISSUED'));
  if (uids.length === 0) return answer(ok(tag, `${verb} completed`, undefined, pendingUpdates(session.state, byUid, byUid)));
  const target = await storeCall(tag, true, () => openFolder(session, name));
  if ('reply' in target) return answer(target.reply);
  let copied: number[];
  const uidValidity = target.ok.uidValidity;
  try {
    const items = records.map((record) => ({
      content: () => selected.mailbox.read(record!.uid, record),
      flags: record!.flags,
      internalDate: new Date(record!.internalDate * 1000),
    }));
    const appended = await storeCall(tag, true, () => target.ok.append(items));
    if ('reply' in appended) return answer(appended.reply);
    copied = appended.ok;
  } finally {
    await target.ok.close();
  }
  const copyUid = `COPYUID ${uidValidity} ${compactSet(uids)} ${compactSet(copied)}`;
  if (!move) return answer(ok(tag, `${verb} completed`, copyUid, pendingUpdates(session.state, byUid, byUid)));
  const removed = await storeCall(tag, false, () => selected.mailbox.expunge(uids));
  if ('reply' in removed) return answer(removed.reply);
  // RFC 6851 4.3: COPYUID goes in an untagged OK before the EXPUNGE responses.
  return answer(ok(tag, `${verb} completed`, undefined, [`OK [${copyUid}] Moved`, ...pendingUpdates(session.state, true)]));
}

/** UIDs as a compact sequence set: 1,2,3,7 -> 1:3,7 (RFC 4315 COPYUID takes sets). */
export function compactSet(uids: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < uids.length; ) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j] + 1) j++;
    parts.push(j > i ? `${uids[i]}:${uids[j]}` : String(uids[i]));
    i = j + 1;
  }
  return parts.join(',');
}
