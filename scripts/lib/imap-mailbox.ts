// The mailbox bench-imap.ts measures: N messages appended to an mbox file
// through this project's own MboxAppender (so the file is exactly what
// deliveries write: a "From " line, the message with mboxrd quoting, a
// blank line), before the server first opens it.
//
// The same options give the same bytes on every run (a seeded generator,
// fixed dates), so this project's server and Dovecot read identical files.
// Variety, so no server meets only its best case:
// - sizes spread around the average (log-normal, sigma 0.6, 600 B at least,
//   20 times the average at most);
// - forty senders, and one of them ("someone@example.net") in about 1% of
//   the messages, for SEARCH FROM "someone" (part 2);
// - every eighth message multipart/alternative (text and HTML), for
//   ENVELOPE and BODYSTRUCTURE;
// - every tenth message has a body line starting "From ", which the mbox
//   must quote;
// - one big message (--big-size, 25 MiB by default; a text part and a
//   base64 attachment) in the middle of the mailbox, for the streaming
//   BODY[] phase. Its body is generated in pieces, never held whole.
//
// Messages are queued in groups: the appender writes each group as one batch
// with one fsync.

import { performance } from 'node:perf_hooks';
import { stat } from 'node:fs/promises';
import { MboxAppender } from '../../src/store/mbox-append.ts';

const GROUP = 2000;
const MIN_SIZE = 600;
const SIGMA = 0.6;
const SENDERS = 40;
const SOMEONE = 'Someone Else <someone@example.net>';
const WORDS = (
  'the of and to in is that for it as with was on be by at this from have or an are not but had which ' +
  'mail server message folder index flag seen answered draft deleted recent inbox archive sent ' +
  'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt labore ' +
  'raspberry board memory disk stream socket literal envelope structure header body part'
).split(' ');
const POOL_LINES = 4096;
const BASE_DATE = Date.UTC(2024, 0, 1);

export interface MailboxSpec {
  mboxPath: string;
  /** Messages in all, the big one included. */
  messages: number;
  /** Average size of the ordinary messages, in octets (LF line ends, as stored). */
  averageSize: number;
  /** The big message's size in octets; 0: none. */
  bigSize: number;
  /** Date.now() value after which filling gives up. */
  deadline: number;
}

export interface MailboxFill {
  messages: number;
  /** How much the mbox grew. */
  bytes: number;
  seconds: number;
  /** Sequence number (1-based, in a mailbox that was empty) of the big message; 0: none. */
  bigSeq: number;
}

/** mulberry32: a small seeded generator, so every run writes the same mailbox. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A pool of printable text lines (LF-terminated) that bodies are cut from. */
function linePool(random: () => number): string[] {
  const lines: string[] = [];
  for (let i = 0; i < POOL_LINES; i++) {
    let line = '';
    const length = 40 + Math.floor(random() * 36);
    while (line.length < length) line += (line ? ' ' : '') + WORDS[Math.floor(random() * WORDS.length)];
    lines.push(line.slice(0, 76) + '\n');
  }
  return lines;
}

function sender(seq: number, random: () => number): string {
  if (random() < 0.01) return SOMEONE;
  const n = seq % SENDERS;
  return `Sender ${n} <sender${n}@example${n % 7}.org>`;
}

/** Text of about `octets` octets from the pool, starting at a random line. */
function text(pool: string[], octets: number, random: () => number, fromLine: boolean): string {
  let body = fromLine ? 'From here on, a line an mbox must quote.\n' : '';
  for (let i = Math.floor(random() * pool.length); body.length < octets; i = (i + 1) % pool.length) body += pool[i];
  return body;
}

function message(seq: number, size: number, pool: string[], random: () => number): Buffer {
  const date = new Date(BASE_DATE + seq * 60_000).toUTCString().replace('GMT', '+0000');
  const id = String(seq).padStart(8, '0');
  let head =
    `From: ${sender(seq, random)}\n` +
    `To: Bench <bench@example.com>\n` +
    `Subject: bench-imap message ${id}: ${WORDS[seq % WORDS.length]} ${WORDS[(seq * 7) % WORDS.length]}\n` +
    `Date: ${date}\n` +
    `Message-ID: <${id}.bench-imap@example.com>\n` +
    `X-Bench-Seq: ${id}\n` +
    `MIME-Version: 1.0\n`;
  const left = Math.max(100, size - head.length - 40);
  const fromLine = seq % 10 === 0;
  if (seq % 8 !== 0) return Buffer.from(head + 'Content-Type: text/plain; charset=us-ascii\n\n' + text(pool, left, random, fromLine), 'latin1');
  const boundary = `=_alt_${id}`;
  const plain = text(pool, Math.floor(left / 2), random, fromLine);
  head += `Content-Type: multipart/alternative; boundary="${boundary}"\n\n`;
  return Buffer.from(
    head +
      `--${boundary}\nContent-Type: text/plain; charset=us-ascii\n\n${plain}\n` +
      `--${boundary}\nContent-Type: text/html; charset=us-ascii\n\n<html><body><p>${text(pool, Math.floor(left / 2) - 60, random, false)}</p></body></html>\n` +
      `--${boundary}--\n`,
    'latin1',
  );
}

/** The big message, in pieces of about 1 MiB: a short text part and a base64 attachment. */
async function* bigMessage(seq: number, size: number): AsyncIterable<Buffer> {
  const id = String(seq).padStart(8, '0');
  const boundary = `=_mixed_${id}`;
  const head =
    `From: ${SOMEONE}\nTo: Bench <bench@example.com>\nSubject: bench-imap big message ${id}\n` +
    `Date: ${new Date(BASE_DATE + seq * 60_000).toUTCString().replace('GMT', '+0000')}\n` +
    `Message-ID: <${id}.big.bench-imap@example.com>\nX-Bench-Seq: ${id}\nMIME-Version: 1.0\n` +
    `Content-Type: multipart/mixed; boundary="${boundary}"\n\n` +
    `--${boundary}\nContent-Type: text/plain; charset=us-ascii\n\nThe attachment is the big one.\n\n` +
    `--${boundary}\nContent-Type: application/octet-stream; name="big.bin"\n` +
    `Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="big.bin"\n\n`;
  const tail = `\n--${boundary}--\n`;
  yield Buffer.from(head, 'latin1');
  const random = seededRandom(seq);
  const line = () => {
    const bytes = Buffer.alloc(57);
    for (let i = 0; i < 57; i++) bytes[i] = Math.floor(random() * 256);
    return bytes.toString('base64') + '\n'; // 77 octets
  };
  let left = size - head.length - tail.length;
  while (left > 0) {
    let piece = '';
    while (piece.length < 1024 * 1024 && left - piece.length >= 77) piece += line();
    if (piece.length === 0) piece = 'A'.repeat(Math.max(0, left - 1)) + '\n';
    left -= piece.length;
    yield Buffer.from(piece, 'latin1');
  }
  yield Buffer.from(tail, 'latin1');
}

/** Appends the messages; resolves when they are all on disk. */
export async function fillMailbox(spec: MailboxSpec): Promise<MailboxFill> {
  const random = seededRandom(0x1a2b3c);
  const pool = linePool(random);
  const mu = Math.log(spec.averageSize) - (SIGMA * SIGMA) / 2; // log-normal with this mean
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const bigSeq = spec.bigSize > 0 ? Math.max(1, Math.ceil(spec.messages / 2)) : 0;

  const sizeBefore = await stat(spec.mboxPath).then((s) => s.size, () => 0);
  const appender = new MboxAppender({ lockTimeoutMs: 30_000 });
  const started = performance.now();
  for (let first = 1; first <= spec.messages; first += GROUP) {
    if (Date.now() > spec.deadline) throw new Error(`timed out filling ${spec.mboxPath} (${first - 1} of ${spec.messages} written)`);
    const appends: Promise<unknown>[] = [];
    for (let seq = first; seq <= Math.min(spec.messages, first + GROUP - 1); seq++) {
      const date = new Date(BASE_DATE + seq * 60_000);
      const envelopeFrom = `sender${seq % SENDERS}@example.org`;
      if (seq === bigSeq) {
        appends.push(appender.append(spec.mboxPath, { envelopeFrom, date, content: () => bigMessage(seq, spec.bigSize) }));
        continue;
      }
      const size = Math.round(Math.min(spec.averageSize * 20, Math.max(MIN_SIZE, Math.exp(mu + SIGMA * normal()))));
      const bytes = message(seq, size, pool, random);
      appends.push(
        appender.append(spec.mboxPath, {
          envelopeFrom,
          date,
          content: async function* () {
            yield bytes;
          },
        }),
      );
    }
    await Promise.all(appends);
  }
  const bytes = (await stat(spec.mboxPath)).size - sizeBefore;
  return { messages: spec.messages, bytes, seconds: (performance.now() - started) / 1000, bigSeq };
}
