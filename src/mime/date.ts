// Dates in mail: the one place with the day and month names.
//
// - RFC 5322 3.3 date-time, written (`formatMessageDate`) and read back
//   tolerantly (`parseMessageDate`), including the obsolete forms of RFC 5322
//   4.3: two- and three-digit years, named zones (EST, PDT...), military
//   zones, comments, missing seconds or day of week.
// - RFC 3501 9 (formal syntax) date-time for INTERNALDATE and APPEND,
//   `"17-Jul-1996 02:44:25 -0700"`, both ways, and the plain `date` of
//   SEARCH BEFORE/ON/SINCE and SENTBEFORE/SENTON/SENTSINCE (`1-Feb-1994`).
//
// SEARCH compares calendar days, "disregarding time and timezone" (RFC 3501
// 6.4.4), so the parsed forms keep the zone offset: `messageDay` gives the
// day as the sender wrote it. Days are counted from 1970-01-01 (day 0).

export const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
export const MONTH_NAMES = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;

/** A date read from a header: the instant, and the zone it was written in. */
export interface MessageDate {
  /** Milliseconds since the epoch (UTC). */
  time: number;
  /** The writer's offset from UTC in minutes (`-0700` is -420). */
  offsetMinutes: number;
}

const two = (n: number) => String(n).padStart(2, '0');

function formatOffset(offsetMinutes: number): string {
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
}

/** RFC 5322 3.3 date-time, in UTC: `Sun, 22 Nov 2026 03:05:51 +0000`. */
export function formatMessageDate(date: Date): string {
  return (
    `${DAY_NAMES[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTH_NAMES[date.getUTCMonth()]} ${date.getUTCFullYear()} ` +
    `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`
  );
}

// RFC 5322 4.3 obs-zone: the US zones; "UT" and "GMT" are +0000.
const NAMED_ZONES: Record<string, number> = {
  UT: 0, UTC: 0, GMT: 0, Z: 0,
  EST: -5 * 60, EDT: -4 * 60, CST: -6 * 60, CDT: -5 * 60,
  MST: -7 * 60, MDT: -6 * 60, PST: -8 * 60, PDT: -7 * 60,
};

/** The month (0 for January) a name starts with, in any case (`jul`, `JUL`, `July`), or -1. */
export function monthIndex(word: string): number {
  const prefix = word.slice(0, 3).toLowerCase();
  return MONTH_NAMES.findIndex((m) => m.toLowerCase() === prefix);
}

// RFC 5322 4.3: a two-digit year below 50 is 20xx, otherwise 19xx; a
// three-digit year has 1900 added.
function fullYear(digits: string): number {
  const n = Number(digits);
  if (digits.length === 2) return n < 50 ? 2000 + n : 1900 + n;
  if (digits.length === 3) return 1900 + n;
  return n;
}

/**
 * Reads an RFC 5322 date-time as mailers really write it, or returns null.
 * The order of the parts is not enforced (some mailers put the month
 * first); what is needed is a day, a month name and a year. A missing time
 * is midnight, missing seconds are 0, a missing or unknown zone is +0000
 * (RFC 5322 4.3: unknown military zones mean "-0000", no information).
 */
export function parseMessageDate(text: string): MessageDate | null {
  // Comments (RFC 5322 3.2.2) may hold anything, including a zone name.
  let clean = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) clean += ch;
  }
  let day = -1, month = -1, year = -1;
  let hour = 0, minute = 0, second = 0;
  let offset: number | null = null;
  for (const token of clean.split(/[\s,]+/)) {
    if (token === '') continue;
    let m: RegExpExecArray | null;
    if ((m = /^(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?$/.exec(token))) {
      hour = Number(m[1]);
      minute = Number(m[2]);
      second = m[3] === undefined ? 0 : Number(m[3]);
    } else if ((m = /^([+-])(\d{2}):?(\d{2})$/.exec(token)) && offset === null) {
      const value = Number(m[2]) * 60 + Number(m[3]);
      offset = m[1] === '-' ? -value : value;
    } else if (/^\d+$/.test(token)) {
      // The first small number is the day, the next the year.
      if (day < 0 && token.length <= 2 && Number(token) >= 1 && Number(token) <= 31) day = Number(token);
      else if (year < 0) year = fullYear(token);
    } else if ((m = /^(\d{1,2})-([A-Za-z]{3})-(\d{2,4})$/.exec(token))) {
      day = Number(m[1]); // "17-Jul-1996", as some programs write it
      month = monthIndex(m[2]);
      year = fullYear(m[3]);
    } else if (/^[A-Za-z]+\.?$/.test(token)) {
      const word = token.replace('.', '');
      const upper = word.toUpperCase();
      if (month < 0 && word.length >= 3 && monthIndex(word) >= 0) month = monthIndex(word);
      else if (offset === null && upper in NAMED_ZONES) offset = NAMED_ZONES[upper];
      // Day names and military zones (which RFC 5322 4.3 says to treat
      // as -0000) carry nothing we need.
    }
  }
  if (day < 0 || month < 0 || year < 0 || hour > 23 || minute > 59 || second > 60) return null;
  const offsetMinutes = offset ?? 0;
  const local = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is not a date.
  if (new Date(local).getUTCDate() !== day) return null;
  return { time: local - offsetMinutes * MS_PER_MINUTE, offsetMinutes };
}

/** The calendar day (days since 1970-01-01) of a date in the zone it was written in. */
export function messageDay(date: MessageDate): number {
  return Math.floor((date.time + date.offsetMinutes * MS_PER_MINUTE) / MS_PER_DAY);
}

/** The calendar day of an instant in a zone (`offsetMinutes` east of UTC). */
export function dayInZone(time: number, offsetMinutes = 0): number {
  return Math.floor((time + offsetMinutes * MS_PER_MINUTE) / MS_PER_DAY);
}

/**
 * RFC 3501 date-time, without the quotes: `17-Jul-1996 02:44:25 -0700`
 * (the day padded with a space: date-day-fixed). Written in the zone given.
 */
export function formatImapDateTime(date: Date, offsetMinutes = 0): string {
  const local = new Date(date.getTime() + offsetMinutes * MS_PER_MINUTE);
  const day = String(local.getUTCDate()).padStart(2, ' ');
  return (
    `${day}-${MONTH_NAMES[local.getUTCMonth()]}-${local.getUTCFullYear()} ` +
    `${two(local.getUTCHours())}:${two(local.getUTCMinutes())}:${two(local.getUTCSeconds())} ${formatOffset(offsetMinutes)}`
  );
}

/** Reads an RFC 3501 date-time (quotes optional), or returns null. */
export function parseImapDateTime(text: string): MessageDate | null {
  const m = /^"?\s?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"?$/.exec(text);
  if (!m) return null;
  const month = monthIndex(m[2]);
  const [day, hour, minute, second] = [m[1], m[4], m[5], m[6]].map(Number);
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return null;
  const local = Date.UTC(Number(m[3]), month, day, hour, minute, Math.min(second, 59));
  if (new Date(local).getUTCDate() !== day) return null;
  const offsetMinutes = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  return { time: local - offsetMinutes * MS_PER_MINUTE, offsetMinutes };
}

/** Reads a SEARCH date (`1-Feb-1994`, quotes optional) as a calendar day, or null. */
export function parseImapDate(text: string): number | null {
  const m = /^"?(\d{1,2})-([A-Za-z]{3})-(\d{4})"?$/.exec(text);
  if (!m) return null;
  const month = monthIndex(m[2]);
  const day = Number(m[1]);
  if (month < 0) return null;
  const time = Date.UTC(Number(m[3]), month, day);
  if (new Date(time).getUTCDate() !== day) return null;
  return time / MS_PER_DAY;
}
