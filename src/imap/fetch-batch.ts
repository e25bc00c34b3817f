// FETCH of what the index and the message cache answer: UID, FLAGS,
// INTERNALDATE, RFC822.SIZE and MODSEQ from the index's columns (store/
// message-table.ts), ENVELOPE, BODY and BODYSTRUCTURE from the cache
// (cached-items.ts; RFC 3501 6.4.5, 7.4.2; RFC 7162 3.1.4). These are what
// a client asks of every message of a folder to show its list,
// `FETCH 1:* (UID FLAGS)` each time and `FETCH 1:* (ENVELOPE)` or `ALL`
// for messages it has not seen, on folders of tens of thousands of
// messages; so they have a path of their own: messages are taken a thousand
// at a time, with one wait per batch (none per message), the cached values
// of a batch read in one go, and the responses written into texts of about
// 64 KiB, one write each. The first time, the cache lacks the values: the
// store reads the batch's messages in file order, with large reads, and
// the values are worked out and kept (cached-items.ts).
//
// The whole message (BODY[], BODY.PEEK[], RFC822, BINARY[]) also takes this
// path, the way a client reads the message it opens: a message of up to
// 128 KiB (almost all mail) is read, checked and sent without a wait
// (store/message-reader.ts readSmallMessage); a larger one is streamed by
// the general path (`streamOne`).
//
// Index items alone (`FETCH 1:* (UID FLAGS)`) take fetch-index-items.ts,
// written byte by byte. Other items (sections, parts, partials) go through
// fetch-data.ts, one message at a time. The responses are the same bytes
// whichever way they take.

import { formatImapDateTime } from '../mime/date.ts';
import { BODY, BODYSTRUCTURE, ENVELOPE, fetchFill } from './cached-items.ts';
import { crlfText } from './crlf.ts';
import { sectionLabel } from './fetch-items.ts';
import type { FetchItem } from './fetch-items.ts';
import type { Selected } from './selected.ts';
import type { MessageRows } from '../store/mailbox.ts';

const INDEX_ITEMS = new Set<FetchItem['kind']>(['uid', 'flags', 'internaldate', 'size', 'modseq']);
const CACHED_ITEMS: Partial<Record<FetchItem['kind'], number>> = { envelope: ENVELOPE, bodystructure: BODYSTRUCTURE, body: BODY };
const NAMES: Partial<Record<FetchItem['kind'], string>> = { envelope: 'ENVELOPE', bodystructure: 'BODYSTRUCTURE', body: 'BODY' };

/** Can the index and the cache answer these items, with at most the whole message read? */
export function isBatchable(items: readonly FetchItem[]): boolean {
  return items.every((item) => INDEX_ITEMS.has(item.kind) || CACHED_ITEMS[item.kind] !== undefined || wholeMessageLabel(item) !== null);
}

/** `BODY[] {`, `RFC822 {`, `BINARY[] ~{` for an item that is the whole message as sent (RFC 3501 6.4.5, RFC 3516 4.3); else null. */
function wholeMessageLabel(item: FetchItem): string | null {
  if (item.kind === 'rfc822') return item.which === '' ? 'RFC822 {' : null;
  if (item.kind !== 'section' || item.partial || item.section.part.length > 0 || item.section.text !== '') return null;
  return `${sectionLabel(item)} ${item.binary ? '~' : ''}{`;
}

/** Responses are gathered into texts of about this many characters (one write each). */
const TEXT_BYTES = 64 * 1024;
/** Messages whose cached values are fetched at once. */
const BATCH_MESSAGES = 1000;

/**
 * The responses for `uids` (ascending), as buffers to write. A message
 * expunged while the client was reading an earlier batch is left out, as
 * fetch.ts does for the others. `streamOne` sends the response for a
 * message too large to be read in one piece.
 */
export async function* batchResponses(
  selected: Selected,
  uids: readonly number[],
  items: readonly FetchItem[],
  rev2: boolean,
  streamOne: (uid: number) => AsyncIterable<Buffer>,
): AsyncIterable<Buffer> {
  const writer = new ResponseWriter(selected, items, rev2);
  const { kinds } = writer;
  const fill = kinds.length > 0 ? fetchFill(kinds) : null;
  let text = '';
  for (let first = 0; first < uids.length; ) {
    const batch = uids.slice(first, (first += fill ? BATCH_MESSAGES : uids.length));
    const values = fill ? await selected.mailbox.cachedValues(batch, kinds, fill) : null;
    let rows = selected.mailbox.rows(); // again after each wait: an expunge makes a new table
    for (let j = 0; j < batch.length; j++) {
      const uid = batch[j];
      const k = rows.find(uid);
      if (k < 0 || (values && values[j * kinds.length] === null)) continue; // expunged since the command began
      const response = writer.response(rows, k, uid, values, j);
      if (response === null) {
        // Too large to be read in one piece: streamed on its own.
        if (text.length > 0) yield Buffer.from(text, 'latin1');
        text = '';
        yield* streamOne(uid);
        rows = selected.mailbox.rows();
        continue;
      }
      text += `* ${response}\r\n`;
      if (text.length >= TEXT_BYTES) {
        yield Buffer.from(text, 'latin1'); // byte strings: an ENVELOPE may hold 8-bit bytes in a literal
        text = '';
        rows = selected.mailbox.rows();
      }
    }
  }
  if (text.length > 0) yield Buffer.from(text, 'latin1');
}

/** At most this many messages, and of message text this many bytes, are answered at once, without a stream (a client opening a message). */
const AT_ONCE_MESSAGES = 8;
const AT_ONCE_BYTES = 128 * 1024;

/**
 * The responses for a few messages at once, as untagged lines (without
 * "* " and CRLF), when nothing needs a wait: no cached item, every message
 * small enough to be read in one piece. Else null: the stream answers.
 * Throws as Mailbox.readSmall does (before anything is sent).
 */
export function responsesAtOnce(selected: Selected, uids: readonly number[], items: readonly FetchItem[], rev2: boolean): string[] | null {
  if (uids.length > AT_ONCE_MESSAGES) return null;
  const writer = new ResponseWriter(selected, items, rev2);
  if (writer.kinds.length > 0) return null;
  const rows = selected.mailbox.rows();
  // The whole answer is made in memory before a byte goes out: beyond one message's worth, the stream sends it piece by piece.
  if (writer.readsMessage) {
    let bytes = 0;
    for (const uid of uids) {
      const k = rows.find(uid);
      if (k >= 0) bytes += rows.sizeAt(k);
    }
    if (bytes > AT_ONCE_BYTES) return null;
  }
  const lines: string[] = [];
  for (const uid of uids) {
    const k = rows.find(uid);
    if (k < 0) continue; // expunged since the command began
    const response = writer.response(rows, k, uid, null, 0);
    if (response === null) return null;
    lines.push(response);
  }
  return lines;
}

// One message's response, "n FETCH (...)", from the index's columns, the
// cached values and the message itself.
class ResponseWriter {
  readonly kinds: number[];
  readonly #selected: Selected;
  readonly #items: readonly FetchItem[];
  readonly #rev2: boolean;
  readonly #slotOf: number[];
  readonly #labels: (string | null)[];
  readonly readsMessage: boolean;
  readonly #flagTexts = new Map<number, string>(); // flag set number -> "FLAGS (\Seen \Flagged)"

  constructor(selected: Selected, items: readonly FetchItem[], rev2: boolean) {
    this.#selected = selected;
    this.#items = items;
    this.#rev2 = rev2;
    this.kinds = cachedKinds(items);
    this.#slotOf = items.map((item) => this.kinds.indexOf(CACHED_ITEMS[item.kind] ?? -1));
    this.#labels = items.map(wholeMessageLabel);
    this.readsMessage = this.#labels.some((label) => label !== null);
  }

  /**
   * The response of the message at row `k`, its cached values in
   * values[j * kinds.length + ...]; null if it is too large to be read in
   * one piece. Throws if the mbox changed (before a byte of it is sent).
   */
  response(rows: MessageRows, k: number, uid: number, values: readonly (string | null)[] | null, j: number): string | null {
    const selected = this.#selected;
    const items = this.#items;
    let message = '';
    if (this.readsMessage) {
      const content = selected.mailbox.readSmall(uid);
      if (content === null) return null;
      message = crlfText(content);
      if (message.length !== rows.sizeAt(k)) throw new Error(`a literal of ${message.length} octets where ${rows.sizeAt(k)} were announced`);
    }
    let response = `${selected.seqOf(uid)} FETCH (`;
    for (let i = 0; i < items.length; i++) {
      if (i > 0) response += ' ';
      switch (items[i].kind) {
        case 'uid':
          response += `UID ${uid}`;
          break;
        case 'flags': {
          const id = rows.flagIdAt(k);
          // \Recent belongs to this session, not to the flag set (RFC 3501 2.3.2; gone in IMAP4rev2).
          if (!this.#rev2 && selected.isRecent(uid)) {
            response += `FLAGS (${[rows.flags.text(id), '\\Recent'].filter((t) => t !== '').join(' ')})`;
            break;
          }
          let flags = this.#flagTexts.get(id);
          if (flags === undefined) this.#flagTexts.set(id, (flags = `FLAGS (${rows.flags.text(id)})`));
          response += flags;
          break;
        }
        case 'internaldate':
          response += `INTERNALDATE "${formatImapDateTime(new Date(rows.internalDateAt(k) * 1000))}"`;
          break;
        case 'size':
          response += `RFC822.SIZE ${rows.sizeAt(k)}`;
          break;
        case 'modseq':
          response += `MODSEQ (${rows.modseqAt(k)})`;
          break;
        default: {
          const label = this.#labels[i];
          if (label !== null) response += `${label}${message.length}}\r\n${message}`;
          else response += `${NAMES[items[i].kind]} ${values![j * this.kinds.length + this.#slotOf[i]]}`;
        }
      }
    }
    return `${response})`;
  }
}

/** The cache kinds the items need; BODY and BODYSTRUCTURE come from one parse, so both when either is asked. */
function cachedKinds(items: readonly FetchItem[]): number[] {
  const kinds = new Set<number>();
  for (const item of items) {
    const kind = CACHED_ITEMS[item.kind];
    if (kind === undefined) continue;
    kinds.add(kind);
    if (kind === BODY || kind === BODYSTRUCTURE) [BODY, BODYSTRUCTURE].forEach((k) => kinds.add(k));
  }
  return [...kinds];
}
