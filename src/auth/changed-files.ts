// Reading the account files again when they change on disk.
//
// The server runs for months while `npm run adduser` edits passwd, so
// accounts.ts asks, at most once a second, whether passwd or aliases
// changed; this file answers by comparing each file's size, mtime and inode
// with what it saw last time, and reads them only then. A missing file
// reads as empty (there may be no aliases file at all).

import { readFile, stat } from 'node:fs/promises';

/** Reads a set of small text files, but only when one of them changed. */
export class ChangedFiles {
  readonly #paths: string[];
  #stamps = ''; // identifies the file versions last returned

  constructor(paths: string[]) {
    this.#paths = paths;
  }

  /**
   * The files' text, in the order of the paths, or null if none changed
   * since the last call that returned text. Throws if a file exists but
   * cannot be read; the next call then tries again.
   */
  async readIfChanged(): Promise<string[] | null> {
    // stat before reading: if a file changes in between, the next check
    // sees a new stamp and reads again, so no change is ever missed.
    const stamps: string[] = [];
    for (const path of this.#paths) stamps.push(await fileStamp(path));
    if (stamps.join(' ') === this.#stamps) return null;
    const texts: string[] = [];
    for (const path of this.#paths) texts.push(await readIfExists(path));
    this.#stamps = stamps.join(' ');
    return texts;
  }
}

/** A file's text, or '' if there is no such file. */
export async function readIfExists(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

// Size, mtime and inode together: an atomic rename changes the inode even
// when the new file has the same size and lands in the same millisecond.
async function fileStamp(path: string): Promise<string> {
  try {
    const st = await stat(path);
    return `${st.size}/${st.mtimeMs}/${st.ino}`;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw err;
  }
}
