// The messages the append crash test writes: large, each one different, and
// each one recognisable from its bytes alone, so a checker can tell a whole
// message from a torn one without trusting the store's own reader.

import { formatFromLine } from '../../../src/store/from-line.ts';

export const CRASH_SENDER = 'crash@example.org';
export const CRASH_DATE = new Date(Date.UTC(2026, 10, 2, 3, 5, 51));

/**
 * Message `id`: 0.6 to 1.6 MB of numbered lines, ending "END <id>"; `small`:
 * 0.3 to 20 KB, so that batches are small enough for a planned journal
 * record (append-journal.ts). No line starts "From ".
 */
export function crashMessage(id: number, small = false): Buffer {
  const target = small ? 300 + ((id * 7919) % 20_000) : 600_000 + ((id * 7919) % 1_000_000);
  const lines = [`Subject: crash test ${id}`, `Message-ID: <${id}@crash.test>`, ''];
  let size = 0;
  for (let n = 0; size < target; n++) {
    const line = `${id}:${n}:`.padEnd(76, 'abcdefghij'[n % 10]);
    lines.push(line);
    size += line.length + 1;
  }
  lines.push(`END ${id}`, '');
  return Buffer.from(lines.join('\n'));
}

/** The bytes an mbox holds for message `id`: From line, message, blank line. */
export function storedCrashMessage(id: number, small = false): Buffer {
  return Buffer.concat([Buffer.from(formatFromLine(CRASH_SENDER, CRASH_DATE)), crashMessage(id, small), Buffer.from('\n')]);
}
