// SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8): the numbers of the
// messages that match (search-run.ts finds them), as sequence numbers
// or, for UID SEARCH, as UIDs. With RETURN (...) (ESEARCH, RFC 4731), or
// once IMAP4rev2 is enabled (RFC 9051 6.4.4), the answer is an ESEARCH
// response: MIN, MAX, COUNT and ALL as asked; SAVE keeps the result for `$`
// in later commands (SEARCHRES, RFC 5182).

import { no, ok } from './response.ts';
import { readSearchProgram } from './search-keys.ts';
import type { SearchKey } from './search-keys.ts';
import { matchingMessages } from './search-run.ts';
import type { SearchContext } from './search.ts';
import { compactSet } from './message-commands.ts';
import { enabling, pendingUpdates, rev2 } from './extensions.ts';
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
  const usesModseq = mentionsModseq(program.key);
  // RFC 7162 3.1: a SEARCH with MODSEQ switches CONDSTORE on.
  const enable = usesModseq ? enabling(session.state, 'CONDSTORE') : {};
  const state = { ...session.state, ...enable };
  const context: SearchContext = {
    lastSeq: selected.exists,
    lastUid: selected.exists > 0 ? selected.uidAt(selected.exists) : 0,
    saved: selected.saved,
  };
  const found = await matchingMessages(selected, program.key, context);
  const numbers = found.map((m) => (byUid ? m.uid : m.seq));
  // RFC 7162 3.1.5: when MODSEQ was searched, the highest mod-sequence of what matched.
  const highest = usesModseq && found.length > 0 ? found.reduce((max, m) => Math.max(max, m.modseq), 0) : null;

  const options = program.returnOptions ?? (rev2(state) ? ['ALL'] : null);
  const untagged: string[] = [];
  if (options === null) {
    untagged.push(['SEARCH', ...numbers].join(' ') + (highest !== null ? ` (MODSEQ ${highest})` : ''));
  } else {
    const wanted = options.length === 0 ? ['ALL'] : options; // RFC 4731 3.1: RETURN () means ALL
    if (wanted.includes('SAVE')) {
      // RFC 5182 2.1: with MIN or MAX, only those are saved.
      const minMax = wanted.includes('MIN') || wanted.includes('MAX');
      const keep = minMax ? [wanted.includes('MIN') ? found[0] : undefined, wanted.includes('MAX') ? found.at(-1) : undefined] : found;
      selected.saved = new Set(keep.filter((m) => m !== undefined).map((m) => m!.uid));
    }
    // RFC 5182 2.2: SAVE alone asks for no answer.
    if (!(wanted.length === 1 && wanted[0] === 'SAVE')) untagged.push(esearch(tag, byUid, wanted, numbers, highest));
  }
  untagged.push(...pendingUpdates(state, byUid, byUid));
  return { change: enable, reply: ok(tag, `${verb} completed`, undefined, untagged) };
}

/** `* ESEARCH (TAG "a1") UID MIN 2 MAX 9 COUNT 3 ALL 2,5,9` (RFC 4731 3.1). */
function esearch(tag: string, byUid: boolean, options: readonly string[], numbers: readonly number[], highest: number | null): string {
  let line = `ESEARCH (TAG "${tag}")${byUid ? ' UID' : ''}`;
  if (numbers.length > 0 && options.includes('MIN')) line += ` MIN ${numbers[0]}`;
  if (numbers.length > 0 && options.includes('MAX')) line += ` MAX ${numbers[numbers.length - 1]}`;
  if (options.includes('COUNT')) line += ` COUNT ${numbers.length}`;
  if (numbers.length > 0 && options.includes('ALL')) line += ` ALL ${compactSet(numbers)}`;
  if (highest !== null) line += ` MODSEQ ${highest}`;
  return line;
}

function mentionsModseq(key: SearchKey): boolean {
  switch (key.kind) {
    case 'modseq':
      return true;
    case 'and':
      return key.keys.some(mentionsModseq);
    case 'or':
      return mentionsModseq(key.left) || mentionsModseq(key.right);
    case 'not':
      return mentionsModseq(key.key);
    default:
      return false;
  }
}

