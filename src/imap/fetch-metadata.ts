// FETCH of what the index alone answers: UID, FLAGS, INTERNALDATE,
// RFC822.SIZE and MODSEQ (RFC 3501 6.4.5, RFC 7162 3.1.4). It is the
// request every client repeats to learn what changed, `FETCH 1:* (UID
// FLAGS)`, on folders of tens of thousands of messages, so it has a path
// of its own: no message is read and no object is made per message; each
// response is written straight from the index's columns (store/
// message-table.ts) into a text of about 64 KiB, sent as one buffer.
//
// Other items (ENVELOPE, BODY[], ...) go through fetch-data.ts, one
// message at a time.

import { formatImapDateTime } from '../mime/date.ts';
import type { FetchItem } from './fetch-items.ts';
import type { Selected } from './selected.ts';

const METADATA = new Set<FetchItem['kind']>(['uid', 'flags', 'internaldate', 'size', 'modseq']);

/** Can the index alone answer these items? */
export function isMetadataOnly(items: readonly FetchItem[]): boolean {
  return items.every((item) => METADATA.has(item.kind));
}

/** Responses are gathered into texts of about this many characters (one write each). */
const BATCH = 64 * 1024;

/**
 * The responses for `uids` (ascending), in batches; a batch is made
 * without a pause, and a message expunged while the client was reading
 * the previous one is left out, as fetch.ts does for the others.
 */
export async function* metadataResponses(selected: Selected, uids: readonly number[], items: readonly FetchItem[], rev2: boolean): AsyncIterable<string> {
  const flagTexts = new Map<number, string>(); // flag set number -> "(\Seen \Flagged)"
  let text = '';
  let next = 0;
  while (next < uids.length) {
    const rows = selected.mailbox.rows(); // again after each pause: an expunge makes a new table
    for (; next < uids.length && text.length < BATCH; next++) {
      const uid = uids[next];
      const k = rows.find(uid);
      if (k < 0) continue; // expunged since the command began
      const seq = selected.seqOf(uid);
      let response = `* ${seq} FETCH (`;
      for (let i = 0; i < items.length; i++) {
        if (i > 0) response += ' ';
        switch (items[i].kind) {
          case 'uid':
            response += `UID ${uid}`;
            break;
          case 'flags': {
            const id = rows.flagIdAt(k);
            // \Recent belongs to this session, not to the flag set (RFC 3501 2.3.2; gone in IMAP4rev2).
            if (!rev2 && selected.isRecent(uid)) {
              response += `FLAGS (${[rows.flags.text(id), '\\Recent'].filter((t) => t !== '').join(' ')})`;
              break;
            }
            let flags = flagTexts.get(id);
            if (flags === undefined) flagTexts.set(id, (flags = `FLAGS (${rows.flags.text(id)})`));
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
        }
      }
      text += `${response})\r\n`;
    }
    if (text.length > 0) yield text;
    text = '';
  }
}
