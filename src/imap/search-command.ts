// SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8): the numbers of the
// messages that match (search.ts evaluates the keys), as sequence numbers
// or, for UID SEARCH, as UIDs.

import { no, ok } from './response.ts';
import { readSearchProgram } from './search-keys.ts';
import { matches } from './search.ts';
import type { SearchCandidate, SearchContext } from './search.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';

/** RFC 3501 6.4.4: US-ASCII must be supported; we take UTF-8 too (IMAP4rev2 requires it). */
const CHARSETS = ['UTF-8', 'US-ASCII'];

export async function search(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const byUid = verb === 'UID SEARCH';
  const selected = session.state.selected!;
  const program = readSearchProgram(args.sp());
  args.end();
  if (program.charset !== null && !CHARSETS.includes(program.charset.toUpperCase())) {
    return { reply: no(tag, `Unknown charset ${program.charset}`, `BADCHARSET (${CHARSETS.join(' ')})`) };
  }
  const context: SearchContext = {
    lastSeq: selected.exists,
    lastUid: selected.exists > 0 ? selected.uidAt(selected.exists) : 0,
    saved: new Set(),
  };
  const found: number[] = [];
  for (let seq = 1; seq <= selected.exists; seq++) {
    const uid = selected.uidAt(seq);
    const record = selected.message(uid);
    if (!record) continue; // expunged by someone: it matches nothing
    const candidate: SearchCandidate = {
      seq,
      uid,
      size: record.size,
      internalDate: new Date(record.internalDate * 1000),
      flags: record.flags,
      recent: selected.isRecent(uid),
      modseq: record.modseq,
      read: () => selected.mailbox.read(uid, record),
    };
    if (await matches(program.key, candidate, context)) found.push(byUid ? uid : seq);
  }
  const untagged = [['SEARCH', ...found].join(' '), ...selected.updates(byUid, byUid)];
  return { reply: ok(tag, `${verb} completed`, undefined, untagged) };
}
