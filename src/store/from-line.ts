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
