// mboxrd quoting: how a message body can safely contain lines that start
// with "From ".
//
// In an mbox file (RFC 4155) a line beginning "From " starts a new message,
// so a body line like "From the desk of..." must be disguised before it is
// stored. The mboxrd convention makes the disguise reversible: on writing,
// every line matching /^>*From / gets one more ">"; on reading, every line
// matching /^>+From / loses one. (The older mboxo variant only quoted lines
// with no ">" yet, so ">From " in a body could not be told apart from a
// quoted "From " and came back changed.)
//
// Both directions stream: a message goes through in chunks split at any
// byte, and a line of a million ">" is never held back. The trick: one ">"
// more or less anywhere in a run of ">" gives the same bytes, so the ">" is
// added (or removed) right before "From ", and the run passes through as it
// arrives. Each chunk is searched for "From " (rare in mail, so one search a
// chunk); a hit counts when only ">"s stand between it and the line start.
// Only an undecided line end is held back for the next chunk: part of
// "From", and for the unquoter the ">" it may have to remove (5 bytes).
//
// Input and output use LF line endings (the store's canonical form).

const LF = 0x0a;
const GT = 0x3e;
const FROM_ = Buffer.from('From ');
const FROM = FROM_.subarray(0, 4); // what an undecided line can end with
const ONE_GT = Buffer.from('>');
const EMPTY = Buffer.alloc(0);

class MboxrdTransform {
  readonly #quote: boolean; // add a ">" (writing), or remove one (reading)
  #held = EMPTY; // the undecided end of the last chunk, copied
  #lineOpen = true; // before #held (or the next chunk): a line start, then only ">"s

  constructor(quote: boolean) {
    this.#quote = quote;
  }

  /**
   * Transforms one chunk. The result may share memory with `chunk`: when no
   * line changes it is a view of `chunk`, uncopied (most chunks).
   */
  push(chunk: Buffer): Buffer {
    if (chunk.length === 0) return chunk;
    const data = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const pieces: Buffer[] = [];
    let copied = 0; // data before this is in `pieces`
    for (let at = data.indexOf(FROM_); at !== -1; at = data.indexOf(FROM_, at + FROM_.length)) {
      const gts = this.#gtsBeforeAtLineStart(data, at);
      if (gts < 0 || (!this.#quote && gts === 0)) continue; // mboxrd leaves a bare "From " alone on reading
      // Quoting adds a ">" before "From "; unquoting skips the ">" before it.
      pieces.push(data.subarray(copied, this.#quote ? at : at - 1));
      if (this.#quote) pieces.push(ONE_GT);
      copied = at;
    }
    // The last line may still become a From line: keep the partial "From"
    // (the last byte says how long it can be) and the unquoter's last ">".
    let partial = FROM.indexOf(data[data.length - 1]) + 1; // 0 unless F, r, o or m
    if (partial > 0 && !data.subarray(data.length - partial).equals(FROM.subarray(0, partial))) partial = 0;
    const gts = this.#gtsBeforeAtLineStart(data, data.length - partial);
    this.#lineOpen = gts >= 0;
    const hold = this.#lineOpen ? partial + (!this.#quote && gts > 0 ? 1 : 0) : 0;
    pieces.push(data.subarray(copied, data.length - hold));
    // A copy: the caller may reuse `chunk`'s memory.
    this.#held = hold === 0 ? EMPTY : Buffer.from(data.subarray(data.length - hold));
    return pieces.length === 1 ? pieces[0] : Buffer.concat(pieces);
  }

  /** Flushes what is held back at the end of the message, and resets. */
  end(): Buffer {
    const rest = this.#held; // an unfinished "From" line is not a From line
    this.#held = EMPTY;
    this.#lineOpen = true;
    return rest;
  }

  // How many ">" stand right before `at`, if only they separate it from a
  // line start; -1 if something else does.
  #gtsBeforeAtLineStart(data: Buffer, at: number): number {
    let start = at;
    while (start > 0 && data[start - 1] === GT) start--;
    const atLineStart = start === 0 ? this.#lineOpen : data[start - 1] === LF;
    return atLineStart ? at - start : -1;
  }
}

/** Adds one ">" to every line matching /^>*From / (writing into an mbox). */
export class MboxrdQuoter extends MboxrdTransform {
  constructor() {
    super(true);
  }
}

/** Removes one ">" from every line matching /^>+From / (reading an mbox). */
export class MboxrdUnquoter extends MboxrdTransform {
  constructor() {
    super(false);
  }
}

/** Quotes a whole message held in memory. */
export function quoteMboxrd(message: Buffer): Buffer {
  const quoter = new MboxrdQuoter();
  return Buffer.concat([quoter.push(message), quoter.end()]);
}

/** Unquotes a whole message held in memory. */
export function unquoteMboxrd(stored: Buffer): Buffer {
  const unquoter = new MboxrdUnquoter();
  return Buffer.concat([unquoter.push(stored), unquoter.end()]);
}

/**
 * Unquotes a whole message held as text, one character per byte
 * (message-reader.ts readSmallText). The same search as the streaming
 * unquoter's: each ">From " found, and where only ">"s stand between it and
 * the line start, the first of them is dropped. (A regular expression says
 * it in one line, /(^|\n)>(>*From )/g, but costs four times as much: it
 * tries a match at every line.)
 */
export function unquoteMboxrdText(stored: string): string {
  let unquoted = '';
  let copiedTo = 0;
  for (let at = stored.indexOf('>From '); at >= 0; at = stored.indexOf('>From ', at + 6)) {
    let lineStart = at;
    while (lineStart > 0 && stored.charCodeAt(lineStart - 1) === GT) lineStart--;
    if (lineStart > 0 && stored.charCodeAt(lineStart - 1) !== LF) continue; // text before the ">"s: not a quoted line
    unquoted += stored.slice(copiedTo, lineStart);
    copiedTo = lineStart + 1; // (the first ">" left out)
  }
  return copiedTo === 0 ? stored : unquoted + stored.slice(copiedTo);
}
