// STORE and UID STORE (RFC 3501 6.4.6, 6.4.8): set, add or remove flags.
//
//     STORE 2:4 +FLAGS (\Deleted)          -> * 2 FETCH (FLAGS (\Deleted \Seen)) ...
//     UID STORE 7 FLAGS.SILENT (\Seen)     -> no FETCH back, just OK
//     STORE 1 (UNCHANGEDSINCE 12) +FLAGS ( \Flagged )   (RFC 7162 3.1.3)
//
// Flags live in the side index and its journal; the mbox itself is never
// rewritten for them (store/mailbox-state.ts).

import { ParseError } from './parser.ts';
import { no, ok } from './response.ts';
import { storeCall } from './errors.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';
import { condstore, enabling, pendingUpdates, rev2 } from './extensions.ts';

const OPERATIONS: Record<string, 'set' | 'add' | 'remove'> = { FLAGS: 'set', '+FLAGS': 'add', '-FLAGS': 'remove' };

export async function store(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const byUid = verb === 'UID STORE';
  const selected = session.state.selected!;
  const uids = selected.resolve(args.sp().sequenceSet(), byUid);
  args.sp();
  let unchangedSince: number | undefined;
  if (args.peek() === '(') {
    args.list((r) => {
      if (r.keyword() !== 'UNCHANGEDSINCE') throw new ParseError('the only STORE modifier is UNCHANGEDSINCE');
      unchangedSince = Number(r.sp().bigNumber());
    });
    args.sp();
  }
  const item = args.token(/[A-Za-z.+-]/, 'FLAGS, +FLAGS or -FLAGS').toUpperCase();
  const silent = item.endsWith('.SILENT');
  const operation = OPERATIONS[silent ? item.slice(0, -'.SILENT'.length) : item];
  if (!operation) throw new ParseError(`unknown STORE item ${item}`);
  args.sp();
  // RFC 3501 9: the flags in parentheses, or one or more flags without them.
  let flags: string[];
  if (args.peek() === '(') flags = args.flagList();
  else {
    flags = [args.flag()];
    while (!args.atEnd()) flags.push(args.sp().flag());
  }
  args.end();
  if (selected.readOnly) return { reply: no(tag, 'The mailbox is read-only (EXAMINE)', 'READ-ONLY') };
  // RFC 7162 3.1: UNCHANGEDSINCE is a CONDSTORE enabling command.
  const enable = unchangedSince !== undefined ? enabling(session.state, 'CONDSTORE') : {};
  const withModseq = condstore({ ...session.state, ...enable });

  const existing = uids.filter((uid) => !selected.isGhost(uid));
  // RFC 7162 3.1.3: messages changed since the client looked are left alone and named in MODIFIED.
  const modified = unchangedSince === undefined ? [] : existing.filter((uid) => (selected.message(uid)?.modseq ?? 0) > unchangedSince!);
  const done = await storeCall(tag, false, () => selected.mailbox.setFlags(existing, operation, flags, { unchangedSince }));
  if ('reply' in done) return { reply: done.reply };

  const untagged: string[] = [];
  if (!silent) {
    for (const uid of existing) {
      const record = selected.message(uid);
      if (!record) continue;
      const items = [...(byUid || withModseq ? [`UID ${uid}`] : []), `FLAGS (${selected.flagsOf(record, rev2(session.state)).join(' ')})`, ...(withModseq ? [`MODSEQ (${record.modseq})`] : [])];
      untagged.push(`${selected.seqOf(uid)} FETCH (${items.join(' ')})`);
    }
  }
  untagged.push(...pendingUpdates({ ...session.state, ...enable }, byUid, byUid));
  const ghosts = existing.length < uids.length;
  if (modified.length > 0) {
    return { change: enable, reply: ok(tag, 'Conditional STORE failed for some messages', `MODIFIED ${modified.map((uid) => (byUid ? uid : selected.seqOf(uid))).join(',')}`, untagged) };
  }
  if (ghosts) return { change: enable, reply: { ...no(tag, 'Some of the messages no longer exist', 'EXPUNGEISSUED'), untagged } };
  return { change: enable, reply: ok(tag, `${verb} completed`, undefined, untagged) };
}
