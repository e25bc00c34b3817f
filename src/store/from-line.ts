// The "From " separator line that starts each message in an mbox file.
//
// RFC 4155 section 2: each message begins with a line
//   From <envelope sender> <date in asctime format>
// e.g. "From alice@example.org Sun Nov 22 03:05:51 2026". The sender is the
// SMTP envelope sender (MAIL FROM), or "MAILER-DAEMON" for the null sender
// "<>" of bounces, and must be a single token since readers split the line
// at spaces. The date is C's asctime() layout, with the day of the month
// padded by a space ("Nov  2"); we write it in UTC, as RFC 4155 asks.

import { DAY_NAMES, MONTH_NAMES } from '../mime/date.ts';

/** The sender written for the null envelope sender (bounces). */
export const NULL_SENDER = 'MAILER-DAEMON';

/** C asctime() layout in UTC, without the trailing newline. */
export function asctime(date: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const day = String(date.getUTCDate()).padStart(2, ' ');
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return `${DAY_NAMES[date.getUTCDay()]} ${MONTH_NAMES[date.getUTCMonth()]} ${day} ${time} ${date.getUTCFullYear()}`;
}

/** The separator line for a message, including its final LF. */
export function formatFromLine(envelopeFrom: string, date: Date): string {
  // Whitespace would split the sender token (and a LF would end the line).
  const sender = envelopeFrom === '' ? NULL_SENDER : envelopeFrom.replace(/\s/g, '_');
  return `From ${sender} ${asctime(date)}\n`;
}

/**
 * The envelope sender of a separator line (with or without its LF): the
 * first token after "From ". Returned as written, so a bounce reads back as
 * "MAILER-DAEMON".
 */
export function parseFromLineSender(line: string): string {
  const rest = line.startsWith('From ') ? line.slice(5) : line;
  const space = rest.search(/[ \n]/);
  return space === -1 ? rest : rest.slice(0, space);
}

// "Www Mmm dd hh:mm[:ss] [ZONE ]yyyy[ +hhmm]": asctime as we write it, and
// the variants other mbox writers use (procmail and mutt write local time,
// some add a zone name or an offset). Searched for anywhere after "From ",
// so a sender that someone else wrote with spaces in it does not matter.
const ASCTIME = / (?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +)?(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) +(\d{1,2}):(\d\d)(?::(\d\d))? +(?:[A-Z]{3,4} +)?(\d{4})(?: +([+-])(\d\d)(\d\d))?/;

// The decimal number in line[from, to), a space allowed where the day of
// the month is padded; -1 if anything else is there.
function digits(line: string, from: number, to: number): number {
  let n = 0;
  for (let k = from; k < to; k++) {
    const d = line.charCodeAt(k) - 48;
    if (d === 32 - 48 && k === from) continue;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const MONTH_INDEX = new Map<string, number>(MONTH_NAMES.map((name, i) => [name, i]));

// formatFromLine's own layout, "Www Mmm dd hh:mm:ss yyyy" as the last 24
// characters, read by position: the search below costs ten times more, and
// this runs for every message of a scan. Null if the line is not so.
function parseOwnDate(line: string): number | null {
  const at = line.length - 24;
  if (at < 5) return null;
  const month = MONTH_INDEX.get(line.slice(at + 4, at + 7));
  if (month === undefined || line[at + 3] !== ' ' || line[at + 7] !== ' ' || line[at + 10] !== ' ' || line[at + 13] !== ':' || line[at + 16] !== ':' || line[at + 19] !== ' ') return null;
  const day = digits(line, at + 8, at + 10);
  const hours = digits(line, at + 11, at + 13);
  const minutes = digits(line, at + 14, at + 16);
  const seconds = digits(line, at + 17, at + 19);
  const year = digits(line, at + 20, at + 24);
  if (day < 1 || day > 31 || hours < 0 || hours > 23 || minutes < 0 || minutes > 59 || seconds < 0 || seconds > 60 || year < 1970) return null;
  return Date.UTC(year, month, day, hours, minutes, seconds) / 1000;
}

/**
 * The date of a separator line, in seconds since the epoch: a message's
 * IMAP internal date (RFC 3501 2.3.3), as Dovecot's mbox storage takes it.
 * Without a zone the time is UTC (RFC 4155 asks writers for UTC). Null if
 * the line holds no date we can read (or one before 1970).
 */
export function parseFromLineDate(line: string): number | null {
  const own = parseOwnDate(line);
  if (own !== null) return own;
  const match = ASCTIME.exec(line);
  if (!match) return null;
  const [, month, day, hours, minutes, secs, year, sign, offsetHours, offsetMinutes] = match;
  const monthIndex = MONTH_NAMES.indexOf(month as (typeof MONTH_NAMES)[number]);
  const ms = Date.UTC(Number(year), monthIndex, Number(day), Number(hours), Number(minutes), Number(secs ?? 0));
  if (!Number.isFinite(ms) || Number(day) < 1 || Number(day) > 31 || Number(hours) > 23 || Number(minutes) > 59) return null;
  const offset = sign ? (sign === '-' ? -1 : 1) * (Number(offsetHours) * 60 + Number(offsetMinutes)) : 0;
  const seconds = Math.floor(ms / 1000) - offset * 60;
  return seconds >= 0 ? seconds : null; // IMAP dates before 1970 are no use to anyone
}
