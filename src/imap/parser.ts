// Reading the arguments of an IMAP command (RFC 3501 9, the formal syntax;
// RFC 9051 9 for IMAP4rev2's additions).
//
// The command reader (wire/command-reader.ts) hands over a command as lines
// with literals between them. This file walks through them with a cursor,
// one grammar rule per method, so each command's handler reads its
// arguments the way the RFC's ABNF spells them:
//
//     const r = new ArgReader(command);   // "A1 SELECT {5}" literal "INBOX" ""
//     const name = r.sp().astring();      // "INBOX", whether atom, quoted or literal
//     r.end();
//
// Every method throws ParseError with a message for the client's BAD reply;
// nothing here allocates more than the command already holds (the reader's
// limits bound that), and lists may nest at most MAX_DEPTH deep.

import { MemoryLiteral } from '../wire/command-reader.ts';
import type { LiteralSink } from '../wire/command-reader.ts';
// The month names live in one place, with the rest of mail's dates; only
// IMAP's own date grammar (RFC 3501 9 date, date-time) is spelled out here.
import { monthIndex } from '../mime/date.ts';

export class ParseError extends Error {}

/** A literal as the parser hands it over: small ones as bytes, large ones (APPEND) as the sink they were read into. */
export type LiteralValue = LiteralSink;

/** `(` ... `)` nesting allowed in one command (search keys, fetch items). */
export const MAX_DEPTH = 16;

/** RFC 3501 9: atom-specials are ( ) { SP CTL % * " \ ]; an ATOM-CHAR is any other CHAR. */
const ATOM_CHAR = /[^(){ \x00-\x1f\x7f%*"\\\]]/;
/** ASTRING-CHAR: ATOM-CHAR or "]". */
const ASTRING_CHAR = /[^(){ \x00-\x1f\x7f%*"\\]/;
/** list-char: ATOM-CHAR, the wildcards % and *, or "]". */
const LIST_CHAR = /[^(){ \x00-\x1f\x7f"\\]/;

/** `$` in a sequence set (RFC 5182): the result the last SEARCH saved. */
export const SAVED_RESULT = -1;

/** One range of a sequence set; `Infinity` stands for `*` (the largest number in use), SAVED_RESULT for `$`. */
export interface SeqRange {
  from: number;
  to: number;
}

/** A parsed command: its lines and literals, as the command reader returned them. */
export interface RawCommand {
  lines: string[];
  literals: LiteralSink[];
}

export class ArgReader {
  private readonly lines: string[];
  private readonly literals: LiteralSink[];
  /** Which line, and where in it, the cursor is. */
  private line = 0;
  private at = 0;

  constructor(command: RawCommand) {
    this.lines = command.lines;
    this.literals = command.literals;
  }

  private get text(): string {
    return this.lines[this.line];
  }

  /** The next character, or '' at the end of the current line. */
  peek(): string {
    return this.text[this.at] ?? '';
  }

  /** True at the end of the command. */
  atEnd(): boolean {
    return this.at >= this.text.length && this.line === this.lines.length - 1;
  }

  /** Nothing may follow. */
  end(): void {
    if (!this.atEnd()) throw new ParseError(`unexpected ${JSON.stringify(this.rest().slice(0, 30))} at the end of the command`);
  }

  /** What is left of the current line (for messages). */
  rest(): string {
    return this.text.slice(this.at);
  }

  /** One space (RFC 3501 9: SP). */
  sp(): this {
    if (this.peek() !== ' ') throw new ParseError('expected a space');
    this.at++;
    return this;
  }

  /** Consume `char` if it is next. */
  accept(char: string): boolean {
    if (this.peek() !== char) return false;
    this.at++;
    return true;
  }

  expect(char: string): this {
    if (!this.accept(char)) throw new ParseError(`expected ${JSON.stringify(char)}`);
    return this;
  }

  /** A run of characters matching `allowed` (one character class); `what` names it in the error. */
  token(allowed: RegExp, what: string): string {
    const start = this.at;
    while (this.at < this.text.length && allowed.test(this.text[this.at])) this.at++;
    if (this.at === start) throw new ParseError(`expected ${what}`);
    return this.text.slice(start, this.at);
  }

  /** atom (RFC 3501 9): command names, flags' names, fetch items. */
  atom(): string {
    return this.token(ATOM_CHAR, 'an atom');
  }

  /** An atom, upper-cased: keywords compared without case. */
  keyword(): string {
    return this.atom().toUpperCase();
  }

  /** The tag: any ASTRING-CHAR but "+" (RFC 3501 9). */
  tag(): string {
    const tag = this.token(ASTRING_CHAR, 'a tag');
    if (tag.includes('+')) throw new ParseError('a tag cannot contain "+"');
    return tag;
  }

  /** number (RFC 3501 9): 32-bit unsigned. */
  number(): number {
    const digits = this.token(/\d/, 'a number');
    const n = Number(digits);
    if (digits.length > 10 || n > 0xffffffff) throw new ParseError('number out of range');
    return n;
  }

  /** nz-number: a number above zero. */
  nzNumber(): number {
    const n = this.number();
    if (n === 0) throw new ParseError('expected a number above zero');
    return n;
  }

  /** A 63-bit number (RFC 7162 mod-sequence-value). */
  bigNumber(): bigint {
    const digits = this.token(/\d/, 'a number');
    if (digits.length > 19) throw new ParseError('number out of range');
    return BigInt(digits);
  }

  /** quoted (RFC 3501 9): "...", with \" and \\ as the only escapes. */
  quoted(): string {
    this.expect('"');
    let out = '';
    for (;;) {
      const c = this.text[this.at++];
      if (c === undefined) throw new ParseError('unterminated quoted string');
      if (c === '"') return out;
      if (c === '\\') {
        const next = this.text[this.at++];
        if (next !== '"' && next !== '\\') throw new ParseError('bad escape in quoted string');
        out += next;
      } else if (c === '\r' || c === '\n') {
        throw new ParseError('line break in quoted string');
      } else {
        out += c;
      }
    }
  }

  /** True if a literal `{n}` / `{n+}` starts here. */
  private atLiteral(): boolean {
    return this.peek() === '{' || (this.peek() === '~' && this.text[this.at + 1] === '{');
  }

  /**
   * A literal: the `{n}` marker ends the line, its bytes are the next
   * literal, and the command goes on with the next line.
   */
  literal(): LiteralSink {
    const marker = /^~?\{(\d+)\+?\}$/.exec(this.rest());
    if (!marker || this.line >= this.literals.length) throw new ParseError('malformed literal');
    const value = this.literals[this.line];
    this.line++;
    this.at = 0;
    return value;
  }

  /** string (RFC 3501 9): quoted or literal; a literal comes back as text (UTF-8). */
  string(): string {
    if (this.atLiteral()) return literalText(this.literal());
    return this.quoted();
  }

  /** astring: atom (with "]"), quoted or literal. */
  astring(): string {
    if (this.peek() === '"' || this.atLiteral()) return this.string();
    return this.token(ASTRING_CHAR, 'a string');
  }

  /** nstring: a string or NIL (null). */
  nstring(): string | null {
    if (this.peek() !== '"' && !this.atLiteral()) {
      if (this.keyword() !== 'NIL') throw new ParseError('expected a string or NIL');
      return null;
    }
    return this.string();
  }

  /** list-mailbox (RFC 3501 9): like astring, with the wildcards % and *. */
  listMailbox(): string {
    if (this.peek() === '"' || this.atLiteral()) return this.string();
    return this.token(LIST_CHAR, 'a mailbox pattern');
  }

  /**
   * A parenthesised list of items read by `item` (flag lists, fetch items,
   * search groups). `depth` is the caller's nesting, checked against MAX_DEPTH.
   */
  list<T>(item: (reader: this) => T, depth = 1): T[] {
    if (depth > MAX_DEPTH) throw new ParseError('too deeply nested');
    this.expect('(');
    const items: T[] = [];
    if (this.accept(')')) return items;
    for (;;) {
      items.push(item(this));
      if (this.accept(')')) return items;
      this.sp();
    }
  }

  /** flag-list: `(\Seen $Forwarded)`, as given (case kept; flags compare without case later). */
  flagList(): string[] {
    return this.list((r) => r.flag());
  }

  /** flag (RFC 3501 9): \Answered ... or a keyword (an atom); `\*` only where PERMANENTFLAGS lists it. */
  flag(): string {
    if (this.accept('\\')) return '\\' + this.atom();
    return this.atom();
  }

  /**
   * sequence-set (RFC 3501 9): `1:3,5,7:*`. Ranges are returned as given
   * (`*` as Infinity, and `3:1` as 1..3); the session resolves them
   * against its message numbers or UIDs.
   */
  sequenceSet(): SeqRange[] {
    if (this.accept('$')) return [{ from: SAVED_RESULT, to: SAVED_RESULT }];
    const ranges: SeqRange[] = [];
    do {
      const from = this.seqNumber();
      const to = this.accept(':') ? this.seqNumber() : from;
      ranges.push({ from: Math.min(from, to), to: Math.max(from, to) });
    } while (this.accept(','));
    return ranges;
  }

  private seqNumber(): number {
    if (this.accept('*')) return Infinity;
    return this.nzNumber();
  }

  /** date (RFC 3501 9): `1-Feb-1994`, optionally in quotes; a UTC midnight Date. */
  date(): Date {
    const quoted = this.accept('"');
    const text = this.token(/[0-9A-Za-z-]/, 'a date');
    if (quoted) this.expect('"');
    const match = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(text);
    const month = match ? monthIndex(match[2]) : -1;
    if (!match || month < 0) throw new ParseError('expected a date like 1-Feb-1994');
    const date = new Date(Date.UTC(Number(match[3]), month, Number(match[1])));
    if (date.getUTCDate() !== Number(match[1])) throw new ParseError('no such day');
    return date;
  }

  /** date-time (RFC 3501 9): `"17-Jul-1996 02:44:25 -0700"`. */
  dateTime(): Date {
    const text = this.quoted();
    const match = /^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(text);
    const month = match ? monthIndex(match[2]) : -1;
    if (!match || month < 0) throw new ParseError('expected a date-time like "17-Jul-1996 02:44:25 -0700"');
    const [day, year, hours, minutes, seconds, zoneHours, zoneMinutes] = [1, 3, 4, 5, 6, 8, 9].map((i) => Number(match[i]));
    const zone = (match[7] === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes);
    if (new Date(Date.UTC(year, month, day)).getUTCDate() !== day || hours > 23 || minutes > 59 || seconds > 60 || zoneMinutes > 59) {
      throw new ParseError('no such date-time');
    }
    const utc = Date.UTC(year, month, day, hours, minutes, seconds) - zone * 60_000;
    return new Date(utc);
  }
}

/** A literal's bytes as text (names, search strings, passwords): UTF-8. */
export function literalText(literal: LiteralSink): string {
  if (!(literal instanceof MemoryLiteral)) throw new ParseError('literal too large for this argument');
  return literal.bytes().toString('utf8');
}
