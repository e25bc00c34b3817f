// Fills a maildrop for bench-pop3.ts: N messages of S bytes appended to an
// mbox file before the run, through the project's own MboxAppender (so the
// file is exactly what deliveries write: "From sender asctime" line, the
// message with mboxrd quoting, a blank line; dot-locked, fsynced).
//
// The appender takes everything queued as one batch with one write buffer
// and one fsync, so the messages are queued in large groups; 50,000 small
// messages take well under a second this way.
//
// The messages: each is exactly `size` octets as POP3 counts them (CRLF line
// endings; the store keeps LF), so every LIST size can be checked against
// --size. A header with a unique Message-ID and "X-Bench-Seq: n" (so a RETR
// can be checked to return message n), then printable lines of 76
// characters, some starting with "." (byte-stuffed on the way out). Every
// tenth message has a body line starting with "From ", which the store must
// quote (">From ") and POP3 must give back unquoted.

import { performance } from 'node:perf_hooks';
import { stat } from 'node:fs/promises';
import { MboxAppender } from '../../src/store/mbox-append.ts';

const LINE_LENGTH = 76;
/** Messages handed to the appender at once: one batch, one fsync each. */
const GROUP = 5000;
const FROM_LINE_EVERY = 10;

export interface FillResult {
  messages: number;
  /** How much the mbox file grew. */
  bytes: number;
  seconds: number;
}

export class FillError extends Error {}

/** The header of message `seq` (1-based), LF line endings. */
function header(runId: string, to: string, seq: number, count: number, date: string): string {
  const n = String(seq).padStart(8, '0');
  return (
    `From: bench-pop3 <bench@bench-pop3.invalid>\n` +
    `To: <${to}>\n` +
    `Subject: bench-pop3 message ${n} of ${String(count).padStart(8, '0')}\n` +
    `Date: ${date}\n` +
    `Message-ID: <${runId}.${n}@bench-pop3.invalid>\n` +
    `X-Bench-Seq: ${n}\n` +
    `MIME-Version: 1.0\n` +
    `Content-Type: text/plain; charset=us-ascii\n` +
    `\n`
  );
}

/** Octets of an LF text once its line endings are CRLF (what POP3 counts). */
function crlfOctets(text: string): number {
  let lines = 0;
  for (let at = text.indexOf('\n'); at >= 0; at = text.indexOf('\n', at + 1)) lines++;
  return text.length + lines;
}

/**
 * Printable lines (LF endings) of `octets` octets once their endings are
 * CRLF. Each line starts one character further along the alphabet, so now
 * and then one starts with "."; with `fromLine`, the first line starts with
 * "From " instead.
 */
function bodyText(octets: number, fromLine: boolean): string {
  let alphabet = '';
  for (let i = 0; i < 95 * 2; i++) alphabet += String.fromCharCode(0x20 + (i % 95));
  const lines: string[] = [];
  let left = octets;
  for (let line = 0; left > 0; line++) {
    let length = Math.min(LINE_LENGTH, left - 2); // room for CRLF
    if (left - (length + 2) === 1) length--; // never leave 1 octet: a line needs 2 (CRLF)
    // The first character is never a space: a line of spaces only is "blank".
    const start = 1 + (line % 94);
    let text = alphabet.slice(start, start + length);
    if (fromLine && line === 0 && text.length >= 5) text = ('From here on: a body line an mbox must quote' + text).slice(0, text.length);
    lines.push(text);
    left -= text.length + 2;
  }
  return lines.join('\n') + '\n';
}

export interface FillOptions {
  mboxPath: string;
  count: number;
  /** Octets per message as POP3 counts them (CRLF). */
  size: number;
  /** Unique per run, in every Message-ID. */
  runId: string;
  to: string;
  /** Date.now() value after which filling gives up. */
  deadline: number;
}

/** Appends the messages; resolves when they are all on disk. */
export async function fillMbox(opts: FillOptions): Promise<FillResult> {
  const date = new Date().toUTCString().replace('GMT', '+0000');
  const headerOctets = crlfOctets(header(opts.runId, opts.to, 1, opts.count, date));
  const bodyOctets = opts.size - headerOctets;
  if (bodyOctets < 2) throw new FillError(`--size ${opts.size} is too small: the header alone is ${headerOctets} octets`);
  const plainBody = Buffer.from(bodyText(bodyOctets, false), 'latin1');
  const fromBody = Buffer.from(bodyText(bodyOctets, true), 'latin1');

  const sizeBefore = await stat(opts.mboxPath).then((s) => s.size, () => 0);
  const appender = new MboxAppender({ lockTimeoutMs: 30_000 });
  const started = performance.now();
  const now = new Date();
  for (let first = 1; first <= opts.count; first += GROUP) {
    if (Date.now() > opts.deadline) throw new FillError(`timed out filling ${opts.mboxPath} (${first - 1} of ${opts.count} written)`);
    const last = Math.min(opts.count, first + GROUP - 1);
    const appends: Promise<unknown>[] = [];
    for (let seq = first; seq <= last; seq++) {
      const head = Buffer.from(header(opts.runId, opts.to, seq, opts.count, date), 'latin1');
      const body = seq % FROM_LINE_EVERY === 0 ? fromBody : plainBody;
      appends.push(
        appender.append(opts.mboxPath, {
          envelopeFrom: 'bench@bench-pop3.invalid',
          date: now,
          content: async function* () {
            yield head;
            yield body;
          },
        }),
      );
    }
    await Promise.all(appends);
  }
  const seconds = (performance.now() - started) / 1000;
  const sizeAfter = (await stat(opts.mboxPath)).size;
  return { messages: opts.count, bytes: sizeAfter - sizeBefore, seconds };
}
