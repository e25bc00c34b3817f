// Which messages of the selected mailbox a SEARCH matches (RFC 3501 6.4.4),
// found in up to three passes, each over the messages the one before left
// undecided (search.ts decide):
//  1. the index: flags, sizes, dates, sequence numbers, UIDs, MODSEQ, read
//     from the index's columns without a pause per message;
//  2. the message cache's search text (search-text.ts), for FROM, TO, CC,
//     BCC, SUBJECT and SENT*: a few bytes per message, read many at once;
//     worked out from the headers (read in file order, large reads) where
//     the cache does not have it yet, and kept;
//  3. the messages themselves, in file order and large reads, each read
//     once: its header for HEADER with another field, all of it for BODY
//     and TEXT, whose text is decoded as it streams (mime/text.ts).
// `SEARCH UNSEEN FROM ana` thus looks at the cached text of the unseen
// messages only, and `SEARCH FROM ana` on a folder searched before reads no
// message at all.

import type { MessageContent } from '../store/mailbox.ts';
import { headerOfStream, SEARCH_TEXT, searchFill } from './cached-items.ts';
import { decide, fieldsOf, matchesWithText, searchNeeds } from './search.ts';
import type { SearchCandidate, SearchContext } from './search.ts';
import type { SearchKey } from './search-keys.ts';
import type { Selected } from './selected.ts';

/** A message that matched. */
export interface Found {
  seq: number;
  uid: number;
  modseq: number;
}

/** Messages whose cached text is asked for at once (a few hundred kilobytes). */
const BATCH = 4096;

/** The messages that match `key`, in sequence order (expunged ones, ghosts included, match nothing). */
export async function matchingMessages(selected: Selected, key: SearchKey, context: SearchContext): Promise<Found[]> {
  const needs = searchNeeds(key);
  const matched = new Uint8Array(selected.exists + 1);
  let undecided: number[] = []; // sequence numbers
  const candidate = new Candidates(selected);
  // 1. The index.
  for (let seq = 1; seq <= selected.exists; seq++) {
    const m = candidate.at(seq);
    if (!m) continue;
    const result = decide(key, m, context);
    if (result === null) undecided.push(seq);
    else if (result) matched[seq] = 1;
  }
  // 2. The cached search text.
  if (undecided.length > 0 && needs.searchText) {
    const left: number[] = [];
    for (let first = 0; first < undecided.length; first += BATCH) {
      const seqs = undecided.slice(first, first + BATCH);
      const texts = await selected.mailbox.cachedValues(seqs.map((seq) => selected.uidAt(seq)), [SEARCH_TEXT], searchFill);
      candidate.refresh(); // after the wait
      for (let j = 0; j < seqs.length; j++) {
        const m = texts[j] === null ? undefined : candidate.at(seqs[j]);
        if (!m) continue; // expunged meanwhile
        m.searchText = texts[j];
        const result = decide(key, m, context);
        if (result === null) left.push(seqs[j]);
        else if (result) matched[seqs[j]] = 1;
      }
    }
    undecided = left;
  }
  // 3. The messages.
  if (undecided.length > 0) {
    const withFields = needs.header || needs.searchText || needs.body;
    let next = 0; // the visits come in the order of `undecided`
    await selected.mailbox.readInOrder(undecided.map((seq) => selected.uidAt(seq)), needs.body ? 'message' : 'header', async (uid, content) => {
      while (selected.uidAt(undecided[next]) !== uid) next++;
      const seq = undecided[next];
      candidate.refresh();
      const m = candidate.at(seq);
      if (!m) return;
      if (withFields) m.fields = fieldsOf(await headerOf(selected, uid, content, needs.body));
      const result = needs.body ? await matchesWithText(key, m, context, textSource(selected, uid, content)) : decide(key, m, context);
      if (result) matched[seq] = 1;
    });
  }
  const found: Found[] = [];
  candidate.refresh();
  for (let seq = 1; seq <= selected.exists; seq++) {
    if (matched[seq] === 0) continue;
    const m = candidate.at(seq);
    if (m) found.push({ seq, uid: m.uid, modseq: m.modseq });
  }
  return found;
}

/**
 * The header of a message the store handed out: in hand for a small one;
 * read from its stream when only the header was asked for; for a large
 * message read whole (for BODY, TEXT), read apart: its stream goes to the
 * text search.
 */
async function headerOf(selected: Selected, uid: number, content: MessageContent, whole: boolean): Promise<Buffer> {
  if (content.bytes) return content.bytes;
  return headerOfStream(whole ? selected.mailbox.read(uid) : content.stream);
}

/** The message for BODY and TEXT: what the store handed out, and read again if a second key wants it. */
function textSource(selected: Selected, uid: number, content: MessageContent): () => Iterable<Buffer> | AsyncIterable<Buffer> {
  if (content.bytes) return () => [content.bytes];
  let stream: AsyncIterable<Buffer> | null = content.stream;
  return () => {
    const first = stream;
    stream = null;
    return first ?? selected.mailbox.read(uid);
  };
}

// The candidates, made from the index's columns: one object, filled anew
// for each message (a search of 50,000 messages makes no 50,000 objects),
// and one set of lower-case flags per flag set of the mailbox.
class Candidates {
  readonly #selected: Selected;
  #rows: ReturnType<Selected['mailbox']['rows']>;
  readonly #flagSets = new Map<number, ReadonlySet<string>>();
  readonly #m: SearchCandidate = { seq: 0, uid: 0, size: 0, internalDate: 0, flags: new Set(), recent: false, modseq: 0, searchText: null, fields: null };

  constructor(selected: Selected) {
    this.#selected = selected;
    this.#rows = selected.mailbox.rows();
  }

  /** After a wait: an expunge makes a new table. */
  refresh(): void {
    this.#rows = this.#selected.mailbox.rows();
  }

  /** Message `seq`, or undefined if it is gone (expunged, by anyone). */
  at(seq: number): SearchCandidate | undefined {
    const uid = this.#selected.uidAt(seq);
    if (this.#selected.isGhost(uid)) return undefined;
    const rows = this.#rows;
    const k = rows.find(uid);
    if (k < 0) return undefined;
    const m = this.#m;
    const id = rows.flagIdAt(k);
    let flags = this.#flagSets.get(id);
    if (!flags) this.#flagSets.set(id, (flags = new Set(rows.flags.text(id).toLowerCase().split(' ').filter((f) => f !== ''))));
    m.seq = seq;
    m.uid = uid;
    m.size = rows.sizeAt(k);
    m.internalDate = rows.internalDateAt(k);
    m.flags = flags;
    m.recent = this.#selected.isRecent(uid);
    m.modseq = rows.modseqAt(k);
    m.searchText = null;
    m.fields = null;
    return m;
  }
}
