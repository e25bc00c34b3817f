// FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8): the messages' data, streamed
// to the client with back-pressure, one untagged FETCH response per message
// (fetch-data.ts builds them), then the tagged OK.
//
// A body fetch that is not a PEEK sets \Seen (RFC 3501 6.4.5); the new
// flags are then part of that message's response, as RFC 3501 asks.

import { ok, no } from './response.ts';
import { storeErrorResponse } from './errors.ts';
import { readFetchItems, readFetchModifiers } from './fetch-items.ts';
import type { FetchItem } from './fetch-items.ts';
import { fetchPieces, serialize, UnknownEncodingError } from './fetch-data.ts';
import type { FetchSource, ResponsePiece } from './fetch-data.ts';
import { batchResponses, isBatchable, responsesAtOnce } from './fetch-batch.ts';
import { indexResponses, isIndexOnly } from './fetch-index-items.ts';
import type { Selected } from './selected.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';
import { condstore, enabling, pendingUpdates, rev2 } from './extensions.ts';

/** Does this item read the body, and so set \Seen (RFC 3501 6.4.5)? */
function setsSeen(item: FetchItem): boolean {
  return (item.kind === 'section' && !item.peek) || (item.kind === 'rfc822' && item.which !== 'HEADER');
}

export async function fetch(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const byUid = verb === 'UID FETCH';
  const selected = session.state.selected!;
  const uids = selected.resolve(args.sp().sequenceSet(), byUid);
  let items = readFetchItems(args.sp());
  const { changedSince } = readFetchModifiers(args);
  args.end();
  // RFC 3501 6.4.8: UID FETCH always answers with the UID.
  if (byUid && !items.some((item) => item.kind === 'uid')) items = [{ kind: 'uid' }, ...items];
  // RFC 7162 3.1: MODSEQ and CHANGEDSINCE are CONDSTORE enabling commands; once on,
  // every FETCH response with FLAGS carries MODSEQ, and CHANGEDSINCE implies it.
  const enable = items.some((item) => item.kind === 'modseq') || changedSince !== null ? enabling(session.state, 'CONDSTORE') : {};
  const withModseq = condstore({ ...session.state, ...enable });
  const hasItem = (kind: FetchItem['kind']) => items.some((item) => item.kind === kind);
  if (withModseq && !hasItem('modseq') && (hasItem('flags') || changedSince !== null)) items = [...items, { kind: 'modseq' }];
  const rev2Flags = rev2(session.state);

  let wanted = uids.filter((uid) => !selected.isGhost(uid));
  const expungeIssued = wanted.length < uids.length; // (messages CHANGEDSINCE leaves out are not expunged)
  if (changedSince !== null) wanted = changedSinceFilter(selected, wanted, changedSince);
  let flagsAdded = new Set<number>();
  if (!selected.readOnly && items.some(setsSeen)) flagsAdded = await markSeen(selected, wanted);

  const done = () => {
    const updates = pendingUpdates({ ...session.state, ...enable }, byUid, byUid); // (in the form the FETCH may have just enabled)
    if (expungeIssued) return { reply: { ...no(tag, 'Some of the requested messages no longer exist', 'EXPUNGEISSUED'), untagged: updates } };
    return { reply: ok(tag, `${verb} completed`, undefined, updates) };
  };
  // A few small messages (a client opening one): answered at once, with the tagged reply, without a stream.
  if (flagsAdded.size === 0 && isBatchable(items)) {
    let lines: string[] | null;
    try {
      lines = responsesAtOnce(selected, wanted, items, rev2Flags);
    } catch (error) {
      const reply = storeErrorResponse(tag, error);
      if (!reply) throw error;
      return { change: enable, reply };
    }
    if (lines !== null) {
      const { reply } = done();
      return { change: enable, reply: { ...reply, untagged: [...lines, ...(reply.untagged ?? [])] } };
    }
  }

  return {
    change: enable,
    next: {
      kind: 'stream',
      body: () =>
        flagsAdded.size === 0 && isIndexOnly(items)
          ? indexResponses(selected, wanted, items, rev2Flags)
          : flagsAdded.size === 0 && isBatchable(items)
          ? batchResponses(selected, wanted, items, rev2Flags, (uid) => serialize(responses(selected, [uid], items, flagsAdded, withModseq, rev2Flags)))
          : serialize(responses(selected, wanted, items, flagsAdded, withModseq, rev2Flags)),
      then: done,
      onError: (error, sentSome) => {
        // Before a byte went out we can still answer; after, the response is cut and only hanging up is honest.
        if (sentSome) return { next: { kind: 'close' } };
        if (error instanceof UnknownEncodingError) return { reply: no(tag, error.message, 'UNKNOWN-CTE') }; // RFC 3516 4.3
        const reply = storeErrorResponse(tag, error);
        if (!reply) throw error;
        return { reply };
      },
    },
  };
}

/** RFC 7162 3.1.4.1 CHANGEDSINCE: only the messages whose mod-sequence is above it (read from the index's columns). */
function changedSinceFilter(selected: Selected, uids: readonly number[], changedSince: bigint): number[] {
  const rows = selected.mailbox.rows();
  const above = Number(changedSince); // mod-sequences here stay far below 2^53
  return uids.filter((uid) => {
    const k = rows.find(uid);
    return k >= 0 && rows.modseqAt(k) > above;
  });
}

/** Sets \Seen on the messages that lack it; returns their UIDs (their responses will carry FLAGS). */
async function markSeen(selected: Selected, uids: readonly number[]): Promise<Set<number>> {
  const unseen = uids.filter((uid) => !selected.message(uid)?.flags.includes('\\Seen'));
  if (unseen.length === 0) return new Set();
  const changes = await selected.mailbox.setFlags(unseen, 'add', ['\\Seen']);
  return new Set(changes.map((change) => change.uid));
}

/** One response per message, read as they are sent. */
async function* responses(
  selected: Selected,
  uids: readonly number[],
  items: readonly FetchItem[],
  flagsAdded: ReadonlySet<number>,
  withModseq: boolean,
  rev2: boolean,
): AsyncIterable<ResponsePiece[]> {
  let withFlags: readonly FetchItem[] = items.some((item) => item.kind === 'flags') ? items : [...items, { kind: 'flags' }];
  if (withModseq && !withFlags.some((item) => item.kind === 'modseq')) withFlags = [...withFlags, { kind: 'modseq' }];
  for (const uid of uids) {
    const record = selected.message(uid);
    if (!record) continue; // expunged since the command began: nothing to say of it now
    const source: FetchSource = {
      seq: selected.seqOf(uid),
      uid,
      size: record.size,
      internalDate: new Date(record.internalDate * 1000),
      flags: selected.flagsOf(record, rev2),
      modseq: record.modseq,
      read: () => selected.mailbox.read(uid, record),
    };
    yield await fetchPieces(source, flagsAdded.has(uid) ? withFlags : items);
  }
}
