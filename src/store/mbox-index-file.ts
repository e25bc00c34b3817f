// The side index's file format (described in mbox-index.ts): one header
// line, then one line per message. Text, so an admin can read it with less,
// and strict, so a damaged file is noticed and rebuilt rather than believed.

import type { IndexedMessage, MailboxIndex } from './mbox-index.ts';

const FORMAT = 'jjordan-index 1';
const HEADER = /^jjordan-index 1 uidvalidity=(\d{1,15}) uidnext=(\d{1,15}) size=(\d{1,15}) mtime=(\S+) tail=([0-9a-f]{16}) count=(\d{1,9})$/;
const SPACE = 0x20;

/** The index as text (the format in the header of mbox-index.ts). */
export function formatIndex(index: MailboxIndex): string {
  const lines = [
    `${FORMAT} uidvalidity=${index.uidValidity} uidnext=${index.uidNext} size=${index.mboxSize}` +
      ` mtime=${index.mboxMtimeMs ?? 0} tail=${index.tailHash} count=${index.messages.length}`,
  ];
  for (const m of index.messages) {
    // A line break in the flags would cut the file's lines apart.
    if (/[\r\n]/.test(m.flags)) throw new Error(`flags of UID ${m.uid} contain a line break`);
    const flags = m.flags === '' ? '' : ' ' + m.flags;
    lines.push(`${m.uid} ${m.offset} ${m.length} ${m.contentOffset} ${m.size} ${m.fingerprint}${flags}`);
  }
  return lines.join('\n') + '\n';
}

/** Parses and checks an index file; null if it is not a complete, consistent index. */
export function parseIndex(text: string): MailboxIndex | null {
  const headerEnd = text.indexOf('\n');
  const header = headerEnd === -1 ? null : HEADER.exec(text.slice(0, headerEnd));
  if (!header) return null;
  const [uidValidity, uidNext, mboxSize] = [header[1], header[2], header[3]].map(Number);
  const mboxMtimeMs = Number(header[4]);
  if (uidValidity === 0 || !Number.isFinite(mboxMtimeMs)) return null; // RFC 3501 9: nz-number
  const messages: IndexedMessage[] = [];
  let previousUid = 0;
  let previousEnd = 0;
  for (let at = headerEnd + 1; at < text.length; ) {
    const end = text.indexOf('\n', at);
    const m = end === -1 ? null : parseMessageLine(text, at, end); // no LF: the file was cut
    if (!m || m.uid <= previousUid || m.uid >= uidNext || m.offset < previousEnd) return null;
    if (m.contentOffset < m.offset || m.contentOffset > m.offset + m.length || m.offset + m.length > mboxSize) return null;
    messages.push(m);
    previousUid = m.uid;
    previousEnd = m.offset + m.length;
    at = end + 1;
  }
  if (messages.length !== Number(header[6])) return null;
  return { uidValidity, uidNext, mboxSize, tailHash: header[5], mboxMtimeMs, messages };
}

// "uid offset length contentOffset size fingerprint[ flags]" in text[at, end).
// Parsed by hand, in place: this runs for every message on every load, and
// splitting the file into lines and fields would double the fast path.
function parseMessageLine(text: string, at: number, end: number): IndexedMessage | null {
  const numbers = [0, 0, 0, 0, 0];
  for (let field = 0; field < 5; field++) {
    const start = at;
    let n = 0;
    for (; at < end && text.charCodeAt(at) !== SPACE; at++) {
      const digit = text.charCodeAt(at) - 48;
      if (digit < 0 || digit > 9) return null;
      n = n * 10 + digit;
    }
    if (at === start || at === end || at - start > 15) return null;
    numbers[field] = n;
    at++; // the space
  }
  if (end - at < 16 || !isLowerHex(text, at, at + 16)) return null;
  const fingerprint = text.slice(at, at + 16);
  at += 16;
  if (at < end && text.charCodeAt(at) !== SPACE) return null;
  const [uid, offset, length, contentOffset, size] = numbers;
  return { uid, offset, length, contentOffset, size, flags: at < end ? text.slice(at + 1, end) : '', fingerprint };
}

function isLowerHex(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}
