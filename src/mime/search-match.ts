// Case-insensitive substring search over text that arrives in pieces, for
// IMAP SEARCH (RFC 3501 6.4.4: "a case-insensitive substring match").
//
// Case folding: both sides are normalized to NFC and then lower-cased with
// String.prototype.toLowerCase(), Unicode's default (locale-free) lower
// case mapping, with final sigma folded to sigma. That is simpler than Dovecot's i;unicode-casemap (RFC
// 5051: title case after full decomposition): it finds "CAFÉ" in "café"
// whether the é is one code point or e + combining accent, but does not
// match "ß" with "ss". A match may span the pieces: the last characters of
// each piece are kept to be looked at with the next one.

/** The form both needle and text are compared in. */
export function foldForSearch(text: string): string {
  if (!NOT_ASCII.test(text)) return text.toLowerCase(); // (most header text: nothing to normalize, no sigma)
  // toLowerCase() writes a final sigma as "ς" depending on what follows it,
  // which a piece boundary would change; case folding makes it "σ".
  return text.normalize('NFC').toLowerCase().replace(/ς/g, 'σ');
}

const NOT_ASCII = /[^\x00-\x7f]/;

// The last character and the combining marks after it: NFC may still join
// them with what the next piece starts with, so they wait for it.
const OPEN_END = /\P{M}\p{M}*$/u;

export class SubstringMatcher {
  readonly #needle: string;
  #found = false;
  #foldedTail = ''; // the end of the text seen, folded: a match may start there
  #rawTail = ''; // not yet folded (see OPEN_END)

  constructor(needle: string) {
    this.#needle = foldForSearch(needle);
    this.#found = this.#needle === '';
  }

  get found(): boolean {
    return this.#found;
  }

  /** Looks at the next piece of text; true once the needle was found. */
  push(text: string): boolean {
    if (this.#found) return true;
    const all = this.#rawTail + text;
    const open = OPEN_END.exec(all);
    const cut = open ? open.index : all.length;
    this.#rawTail = all.slice(cut);
    return this.#look(all.slice(0, cut));
  }

  /** The text ended: looks at what was held back. */
  end(): boolean {
    if (this.#found) return true;
    const rest = this.#rawTail;
    this.#rawTail = '';
    return this.#look(rest);
  }

  #look(text: string): boolean {
    if (text === '') return this.#found;
    const window = this.#foldedTail + foldForSearch(text);
    if (window.includes(this.#needle)) this.#found = true;
    this.#foldedTail = window.slice(Math.max(0, window.length - (this.#needle.length - 1)));
    return this.#found;
  }
}

/** True when `needle` occurs in the text, case-insensitively (see foldForSearch). */
export async function textContains(texts: AsyncIterable<string> | Iterable<string>, needle: string): Promise<boolean> {
  const matcher = new SubstringMatcher(needle);
  for await (const text of texts) if (matcher.push(text)) return true;
  return matcher.end();
}
