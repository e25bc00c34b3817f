// LIST and LSUB patterns (RFC 3501 6.3.8): a reference name and a mailbox
// name with wildcards, matched against the account's folder names. "*"
// matches anything, the hierarchy delimiter included; "%" matches anything
// but the delimiter, so `%` lists the top level and `Archive/%` one level
// below Archive. INBOX is case-insensitive (RFC 3501 5.1), so `inbox/%`
// lists INBOX's children.

/** The hierarchy delimiter of every name here. */
export const DELIMITER = '/';

/** A matcher for `reference` + `pattern` (both already decoded from modified UTF-7). */
export function listMatcher(reference: string, pattern: string): (name: string) => boolean {
  // RFC 3501 6.3.8 leaves how the two combine to the server; like Dovecot we
  // join them, and a pattern that starts at the root ignores the reference.
  let full = pattern.startsWith(DELIMITER) || reference === '' ? pattern : reference + pattern;
  // The store spells INBOX in capitals; so does the pattern from now on.
  full = full.replace(/^inbox(?=\/|$)/i, 'INBOX');
  let source = '';
  for (const char of full) {
    if (char === '*') source += '.*';
    else if (char === '%') source += '[^/]*';
    else source += char.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  const regex = new RegExp(`^${source}$`, 'su');
  return (name) => regex.test(name);
}
