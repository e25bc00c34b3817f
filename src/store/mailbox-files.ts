// Two small pieces of the shared mailbox (mailbox-state.ts): the mbox file
// it reads messages from, kept open until its last reader is done even
// when an expunge replaces it; and what changed between two snapshots.

import type { FileHandle } from 'node:fs/promises';

// The mbox file opened under a lock; closed when replaced and no read uses it.
export class OpenFile {
  readonly handle: FileHandle;
  readonly ino: number;
  users = 0;
  retired = false;
  closed = false;
  constructor(handle: FileHandle, ino: number) {
    this.handle = handle;
    this.ino = ino;
  }
  retire(): void {
    this.retired = true;
    this.#closeIfDone();
  }
  release(): void {
    this.users--;
    this.#closeIfDone();
  }
  #closeIfDone(): void {
    if (!this.retired || this.users > 0 || this.closed) return;
    this.closed = true;
    void this.handle.close().catch(() => {});
  }
}

/** What left and what arrived between two ascending UID lists. */
export function diffUids(before: Uint32Array, after: Uint32Array): { expunged: number[]; appended: number[] } {
  // The usual case: the same messages and some new ones at the end.
  if (after.length >= before.length && (before.length === 0 || after[before.length - 1] === before[before.length - 1]) && sameStart(before, after)) {
    return { expunged: [], appended: Array.from(after.subarray(before.length)) };
  }
  const expunged: number[] = [];
  const appended: number[] = [];
  let i = 0;
  let j = 0;
  while (i < before.length || j < after.length) {
    if (j >= after.length || (i < before.length && before[i] < after[j])) expunged.push(before[i++]);
    else if (i >= before.length || after[j] < before[i]) appended.push(after[j++]);
    else [i, j] = [i + 1, j + 1];
  }
  return { expunged, appended };
}

// Same memory, or the same UIDs: cheap when the table only grew in place.
function sameStart(before: Uint32Array, after: Uint32Array): boolean {
  if (before.buffer === after.buffer && before.byteOffset === after.byteOffset) return true;
  for (let k = 0; k < before.length; k++) if (before[k] !== after[k]) return false;
  return true;
}
