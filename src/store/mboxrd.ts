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
// Both directions are streaming transforms with bounded memory: a message is
// pushed through in chunks of any size, a line start may be split across
// chunks, and a line of a million ">" is never held back. The trick: one
// extra ">" anywhere in a run of ">" gives the same bytes, so the quoter
// passes the run through as it arrives and adds its ">" right before the
// "From ". The unquoter likewise drops the first ">" of the run and gives it
// back if the line turns out not to be a quoted From line. At most the four
// bytes of a partial "From" are ever held back, and they are always the
// same four bytes, so only their count is remembered.
//
// Input and output use LF line endings (the store's canonical form).

const LF = 0x0a;
const GT = 0x3e;
const FROM_ = Buffer.from('From ');
const ONE_GT = Buffer.from('>');

// Where we are within the current line.
//  lineStart: nothing of the line seen yet.
//  gtRun:     only ">" seen so far (for the quoter this is the same as
//             lineStart, since "From " needs a quote with or without ">").
//  matching:  the line so far is the run of ">" plus the first `matched`
//             bytes of "From "; those "From" bytes are held back.
//  body:      the line can no longer be a From line; copy until LF.
type LineState = 'lineStart' | 'gtRun' | 'matching' | 'body';

// Collects output pieces: slices of the input chunk plus small constants.
// Returns a single piece as it is, uncopied.
function joinPieces(pieces: Buffer[], chunk?: Buffer): Buffer {
  if (pieces.length === 1) return pieces[0];
  if (pieces.length === 0) return chunk ? chunk.subarray(0, 0) : Buffer.alloc(0);
  return Buffer.concat(pieces);
}

/** The start of the next line (after `from`) that begins with "F" or ">", or -1. */
function nextCandidateLine(chunk: Buffer, from: number): number {
  const f = chunk.indexOf('\nF', from);
  const gt = chunk.indexOf('\n>', from);
  const first = f === -1 ? gt : gt === -1 ? f : Math.min(f, gt);
  return first === -1 ? -1 : first + 1;
}

/** Adds one ">" to every line matching /^>*From / (writing into an mbox). */
export class MboxrdQuoter {
  #state: LineState = 'lineStart';
  #matched = 0; // bytes of "From " matched and held back

  /**
   * Transforms one chunk. The result may share memory with `chunk`: when no
   * line needs a quote it is `chunk` itself, uncopied (most chunks).
   */
  push(chunk: Buffer): Buffer {
    const pieces: Buffer[] = [];
    let copyFrom = 0; // start of the input not yet added to `pieces`
    // A partial "From" held back from the previous chunk: it comes before chunk[0].
    let carried = this.#state === 'matching' ? this.#matched : 0;
    let matchStart = -1; // where the current match began, if in this chunk
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'body') {
        // Only a line starting with "F" or ">" can need a quote: jump to the
        // next one (two searches a chunk for most mail, not one per line).
        const next = nextCandidateLine(chunk, i);
        if (next === -1) {
          if (chunk[chunk.length - 1] === LF) this.#state = 'lineStart';
          break; // the rest of the chunk is ordinary text
        }
        this.#state = 'lineStart';
        i = next;
        continue;
      }
      const byte = chunk[i];
      if (this.#state === 'lineStart' || this.#state === 'gtRun') {
        if (byte === GT) {
          i++; // passes through unchanged: see the header comment
        } else if (byte === FROM_[0]) {
          this.#state = 'matching';
          this.#matched = 1;
          matchStart = i++;
        } else {
          this.#state = byte === LF ? 'lineStart' : 'body';
          i++;
        }
        continue;
      }
      // state 'matching'
      if (byte === FROM_[this.#matched]) {
        this.#matched++;
        i++;
        if (this.#matched === FROM_.length) {
          // The quote goes right before "From ".
          if (matchStart >= 0) {
            pieces.push(chunk.subarray(copyFrom, matchStart), ONE_GT);
            copyFrom = matchStart;
          } else {
            pieces.push(ONE_GT, FROM_.subarray(0, carried));
            carried = 0;
          }
          this.#state = 'body';
        }
      } else {
        // Not a From line after all. Bytes matched in this chunk are still in
        // it and get copied; a prefix held from the last chunk is released.
        if (matchStart < 0 && carried > 0) {
          pieces.push(FROM_.subarray(0, carried));
          carried = 0;
        }
        this.#state = byte === LF ? 'lineStart' : 'body';
        i++;
      }
      matchStart = this.#state === 'matching' ? matchStart : -1;
    }
    // Still undecided at the end: hold back the matched bytes of this chunk
    // (all of them, if the match began in an earlier chunk).
    const holdFrom = this.#state === 'matching' ? (matchStart >= 0 ? matchStart : copyFrom) : chunk.length;
    pieces.push(chunk.subarray(copyFrom, holdFrom));
    return joinPieces(pieces.filter((piece) => piece.length > 0), chunk);
  }

  /** Flushes what is held back at the end of the message, and resets. */
  end(): Buffer {
    const rest = this.#state === 'matching' ? FROM_.subarray(0, this.#matched) : Buffer.alloc(0);
    this.#state = 'lineStart';
    this.#matched = 0;
    return Buffer.from(rest);
  }
}

/** Removes one ">" from every line matching /^>+From / (reading an mbox). */
export class MboxrdUnquoter {
  #state: LineState = 'lineStart';
  #matched = 0; // bytes of "From " matched and held back (after a held ">")

  /** Transforms one chunk. The result may share memory with `chunk`. */
  push(chunk: Buffer): Buffer {
    const pieces: Buffer[] = [];
    let copyFrom = 0;
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'body') {
        const nl = chunk.indexOf(LF, i);
        if (nl === -1) break;
        this.#state = 'lineStart';
        i = nl + 1;
        continue;
      }
      const byte = chunk[i];
      if (this.#state === 'lineStart') {
        if (byte === GT) {
          // Hold back the first ">": it is the one a quoted line loses.
          pieces.push(chunk.subarray(copyFrom, i));
          this.#state = 'gtRun';
          copyFrom = ++i;
        } else {
          // An unquoted "From " here is left alone: mboxrd never writes one
          // inside a message, and a reader should not invent changes.
          this.#state = byte === LF ? 'lineStart' : 'body';
          i++;
        }
        continue;
      }
      if (this.#state === 'gtRun') {
        if (byte === GT) {
          i++; // further ">" pass through
        } else if (byte === FROM_[0]) {
          pieces.push(chunk.subarray(copyFrom, i));
          this.#state = 'matching';
          this.#matched = 1;
          copyFrom = ++i;
        } else {
          // Not a From line: give back the held ">" before the copied text.
          pieces.push(ONE_GT, chunk.subarray(copyFrom, i));
          copyFrom = i;
          this.#state = byte === LF ? 'lineStart' : 'body';
          i++;
        }
        continue;
      }
      // state 'matching'
      if (byte === FROM_[this.#matched]) {
        this.#matched++;
        copyFrom = ++i;
        if (this.#matched === FROM_.length) {
          pieces.push(FROM_); // the held ">" is dropped: this is the unquoting
          this.#state = 'body';
        }
      } else {
        pieces.push(ONE_GT, FROM_.subarray(0, this.#matched));
        this.#state = byte === LF ? 'lineStart' : 'body';
        i++;
      }
    }
    pieces.push(chunk.subarray(copyFrom));
    return joinPieces(pieces);
  }

  /** Flushes what is held back at the end of the message, and resets. */
  end(): Buffer {
    let rest = Buffer.alloc(0);
    if (this.#state === 'gtRun') rest = Buffer.from(ONE_GT);
    if (this.#state === 'matching') rest = Buffer.concat([ONE_GT, FROM_.subarray(0, this.#matched)]);
    this.#state = 'lineStart';
    this.#matched = 0;
    return rest;
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
