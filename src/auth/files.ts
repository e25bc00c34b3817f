// The text formats of the two account files, kept apart from the code that
// reads them from disk so they can be tested with plain strings.
//
//   passwd    one account per line:        jjordan:$scrypt$ln=14,...
//   aliases   like sendmail's /etc/aliases: postmaster: jjordan
//                                           info@example.org: alice, bob
//
// Both allow blank lines and '#' comments. A bad line is skipped with a
// warning rather than failing the whole file: one typo should not lock every
// user out of a running server.

import { isValidAccountName } from '../store/paths.ts';

export type Warn = (msg: string) => void;

/** One line of the aliases file, after syntax checks. */
export type AliasLine = {
  lineNo: number;
  /** Lowercased; a bare local part ("postmaster") or a full address. */
  source: string;
  /** Lowercased account names, as written; not yet checked to exist. */
  targets: string[];
};

/** Parse passwd text into a map from account name to password hash. */
export function parsePasswd(text: string, warn: Warn): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const { lineNo, line } of contentLines(text)) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const hash = colon < 0 ? '' : line.slice(colon + 1);
    if (!isValidAccountName(name) || hash === '') {
      warn(`passwd line ${lineNo}: expected "name:hash" with a valid account name, skipped`);
      continue;
    }
    if (hashes.has(name)) warn(`passwd line ${lineNo}: account ${name} listed twice, the later line wins`);
    hashes.set(name, hash);
  }
  return hashes;
}

/** Parse aliases text. Targets are checked against the accounts later. */
export function parseAliases(text: string, warn: Warn): AliasLine[] {
  const aliases: AliasLine[] = [];
  for (const { lineNo, line } of contentLines(text)) {
    const colon = line.indexOf(':');
    const source = colon < 0 ? '' : line.slice(0, colon).trim().toLowerCase();
    const targets = colon < 0 ? [] : splitTargets(line.slice(colon + 1));
    if (!isAliasSource(source) || targets.length === 0) {
      warn(`aliases line ${lineNo}: expected "name: account[, account...]", skipped`);
      continue;
    }
    aliases.push({ lineNo, source, targets });
  }
  return aliases;
}

/**
 * Return passwd text with the account's line set to `hash`: replaced in
 * place if the account is there (a password change), appended otherwise.
 * Comments and other lines are kept exactly as they were.
 */
export function setPasswdLine(text: string, name: string, hash: string): { text: string; replaced: boolean } {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  let replaced = false;
  const out: string[] = [];
  for (const line of lines) {
    if (line.trim().startsWith(`${name}:`)) {
      // Keep only the first line for this account, so a duplicated entry
      // cannot leave the old password working.
      if (!replaced) out.push(`${name}:${hash}`);
      replaced = true;
    } else {
      out.push(line);
    }
  }
  if (!replaced) out.push(`${name}:${hash}`);
  return { text: out.join('\n') + '\n', replaced };
}

// Yield the lines that carry data, numbered from 1 for warnings.
function* contentLines(text: string): Generator<{ lineNo: number; line: string }> {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim(); // also drops a CR from files edited on Windows
    if (line === '' || line.startsWith('#')) continue;
    yield { lineNo: i + 1, line };
  }
}

function splitTargets(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

// A local part, or local@domain with exactly one '@' and both halves present.
function isAliasSource(source: string): boolean {
  if (source === '' || /\s/.test(source)) return false;
  const parts = source.split('@');
  return parts.length === 1 || (parts.length === 2 && parts[0] !== '' && parts[1] !== '');
}
