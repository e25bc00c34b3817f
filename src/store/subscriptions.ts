// The subscription list (RFC 3501 6.3.6-6.3.7, LSUB): folder names, one per
// line in UTF-8, in "<account>/.subscriptions" (a hidden name: never a
// folder). Replaced atomically on each change (safeio.ts).
//
// RFC 3501 6.3.6: a name may be subscribed whether or not such a folder
// exists, and the server MUST NOT drop a name because the folder is gone;
// so DELETE leaves the list alone. RENAME moves the subscriptions of the
// folder and its subfolders to the new names, as Dovecot does.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { canonicalName, DELIMITER } from './folder-names.ts';
import { writeFileAtomic } from './safeio.ts';

/** Names on one list at most: LSUB and the file stay small. */
export const MAX_SUBSCRIPTIONS = 1000;

export function subscriptionsPath(accountDir: string): string {
  return path.join(accountDir, '.subscriptions');
}

/** The subscribed names; an empty set if there is no list yet. */
export async function readSubscriptions(accountDir: string): Promise<Set<string> | null> {
  let text: string;
  try {
    text = await readFile(subscriptionsPath(accountDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      names.add(canonicalName(line));
    } catch {
      // A line no client could have written: not a name.
    }
    if (names.size >= MAX_SUBSCRIPTIONS) break;
  }
  return names;
}

export async function writeSubscriptions(accountDir: string, names: Iterable<string>): Promise<void> {
  const lines = [...names].map((name) => name + '\n').join('');
  await writeFileAtomic(subscriptionsPath(accountDir), lines, { mode: 0o600 });
}

/** RENAME: `from` and the names under it become `to` and the names under that. */
export function renamedSubscriptions(names: Set<string>, from: string, to: string): Set<string> | null {
  let changed = false;
  const result = new Set<string>();
  for (const name of names) {
    if (name === from || name.startsWith(from + DELIMITER)) {
      result.add(to + name.slice(from.length));
      changed = true;
    } else {
      result.add(name);
    }
  }
  return changed ? result : null;
}
