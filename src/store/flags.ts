// Message flags as the store keeps them (RFC 3501 2.3.2): system flags,
// which start with "\", and keywords, which do not.
//
// A mailbox of 50,000 messages has only a handful of different flag sets
// ("", "\Seen", "\Seen \Answered", ...), so each distinct set is stored
// once, in a FlagPool, and a message holds only the number of its set. A
// set is kept in one canonical form: system flags in a fixed order, then
// keywords in alphabetical order, so "\Seen \Answered" and "\Answered \Seen"
// are the same set, and the text form is what the index file holds.
//
// Case: system flags are matched without case and written as RFC 3501
// spells them. Keywords are compared without case too, and a mailbox keeps
// the spelling it saw first ("$label1" after "$Label1" is "$Label1"), as
// Cyrus and Dovecot do, so Thunderbird and K-9 agree on one tag.
// \Recent is not a stored flag: it belongs to a session (mailbox.ts,
// claimRecent), so it cannot be set here.

/** The flags a client may store (RFC 3501 2.3.2), in canonical order. */
export const SYSTEM_FLAGS: readonly string[] = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

/** Different keywords one mailbox may hold; a STORE of one more is refused. */
export const MAX_KEYWORDS = 500;
/** Longest keyword, in bytes (they are ASCII atoms). */
export const MAX_KEYWORD_BYTES = 100;

/** A flag that is not a system flag or a valid keyword, or one keyword too many. */
export class InvalidFlagError extends Error {
  override name = 'InvalidFlagError';
}

const SYSTEM_BY_LOWER = new Map(SYSTEM_FLAGS.map((flag, order) => [flag.toLowerCase(), order]));
// RFC 3501 9: atom = 1*ATOM-CHAR; ATOM-CHAR is any CHAR (%x01-7F) except
// "(" ")" "{" SP CTL "%" "*" '"' "\" "]".
const KEYWORD = /^[!#$&'+-\[^-z|}~]+$/;
const EMPTY: readonly string[] = Object.freeze([]);

/** Where a flag goes in a canonical set, or null if it is not a valid flag. */
function classify(flag: string): { system: number } | { keyword: string } | null {
  if (flag.startsWith('\\')) {
    const order = SYSTEM_BY_LOWER.get(flag.toLowerCase());
    return order === undefined ? null : { system: order };
  }
  return KEYWORD.test(flag) && flag.length <= MAX_KEYWORD_BYTES ? { keyword: flag } : null;
}

/** The distinct flag sets of one mailbox, each stored once (see the header). */
export class FlagPool {
  readonly #lists: (readonly string[])[] = [EMPTY];
  readonly #texts: string[] = [''];
  readonly #ids = new Map<string, number>([['', 0]]);
  readonly #spelling = new Map<string, string>(); // keyword in lower case -> as first seen

  /** Number of sets held (id 0, the empty set, included). */
  get size(): number {
    return this.#texts.length;
  }

  /** The flags of set `id`, canonical and frozen: share it, never change it. */
  list(id: number): readonly string[] {
    return this.#lists[id];
  }

  /** The flags of set `id` as the index file writes them: space-separated, '' if none. */
  text(id: number): string {
    return this.#texts[id];
  }

  /** Every keyword this mailbox has seen, in the spelling it keeps (for IMAP's FLAGS response). */
  keywords(): string[] {
    return [...this.#spelling.values()].sort(compareKeywords);
  }

  /**
   * The set holding exactly `flags` (any order, any case). Throws
   * InvalidFlagError for an unknown "\" flag, a malformed keyword, or a
   * new keyword beyond MAX_KEYWORDS.
   */
  idOf(flags: readonly string[]): number {
    return this.#intern(flags, true);
  }

  /**
   * The set written as `text` in an index or journal file. Read tolerantly:
   * what is not a valid flag is dropped (the file is ours, so that only
   * happens to a damaged one), and no limit applies.
   */
  idOfText(text: string): number {
    const known = this.#ids.get(text); // the usual case: written by formatIndex, canonical
    if (known !== undefined) return known;
    return this.#intern(text.split(' ').filter((flag) => flag !== ''), false);
  }

  /** Set `id` after STORE's FLAGS (`set`), +FLAGS (`add`) or -FLAGS (`remove`) with `flags`. */
  apply(id: number, op: 'set' | 'add' | 'remove', flags: readonly string[]): number {
    if (op === 'set') return this.idOf(flags);
    const current = this.#lists[id];
    if (op === 'add') return this.idOf([...current, ...flags]);
    for (const flag of flags) if (classify(flag) === null) throw new InvalidFlagError(`invalid flag: ${flag}`);
    const removed = new Set(flags.map((flag) => flag.toLowerCase()));
    return this.idOf(current.filter((flag) => !removed.has(flag.toLowerCase())));
  }

  // A flag in the spelling this pool keeps; null if not valid. With `learn`,
  // a new keyword is added to the pool's spellings (within MAX_KEYWORDS).
  #canonical(flag: string, learn: boolean, strict = true): string | null {
    const kind = classify(flag);
    if (!kind) return null;
    if ('system' in kind) return SYSTEM_FLAGS[kind.system];
    const lower = kind.keyword.toLowerCase();
    const known = this.#spelling.get(lower);
    if (known !== undefined) return known;
    if (!learn) return kind.keyword;
    if (strict && this.#spelling.size >= MAX_KEYWORDS) throw new InvalidFlagError(`too many keywords in this mailbox (at most ${MAX_KEYWORDS})`);
    this.#spelling.set(lower, kind.keyword);
    return kind.keyword;
  }

  #intern(flags: readonly string[], strict: boolean): number {
    const system: string[] = [];
    const keywords = new Set<string>();
    for (const flag of flags) {
      const canonical = this.#canonical(flag, true, strict);
      if (canonical === null) {
        if (strict) throw new InvalidFlagError(`invalid flag: ${flag}`);
        continue;
      }
      if (canonical.startsWith('\\')) {
        if (!system.includes(canonical)) system.push(canonical);
      } else {
        keywords.add(canonical);
      }
    }
    system.sort((a, b) => SYSTEM_FLAGS.indexOf(a) - SYSTEM_FLAGS.indexOf(b));
    const list = [...system, ...[...keywords].sort(compareKeywords)];
    const text = list.join(' ');
    const known = this.#ids.get(text);
    if (known !== undefined) return known;
    const id = this.#texts.length;
    this.#ids.set(text, id);
    this.#texts.push(text);
    this.#lists.push(Object.freeze(list));
    return id;
  }
}

function compareKeywords(a: string, b: string): number {
  const [x, y] = [a.toLowerCase(), b.toLowerCase()];
  return x < y ? -1 : x > y ? 1 : 0;
}
