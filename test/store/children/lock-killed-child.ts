// Taking a dot-lock where the file system misbehaves, for dotlock.test.ts.
// Node's fs functions are replaced before dotlock.ts is loaded, so what
// happens, happens inside the real code.
//
//   node lock-killed-child.ts MBOX kill       SIGKILL arrives as the process writes
//                                             its "PID:HOST" line, right after
//                                             creating the file it writes it into
//   node lock-killed-child.ts MBOX no-links   hard links fail with EPERM (a FAT card);
//                                             prints the lock's content while held, takes
//                                             the lock twice more, and prints (on stderr)
//                                             how many links were tried
//   node lock-killed-child.ts MBOX plain      nothing replaced: takes the lock, prints
//                                             its content, exits

import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const [mbox, mode] = process.argv.slice(2);
let links = 0;
if (mode === 'kill') {
  const realWriteSync = fs.writeSync;
  fs.writeSync = ((fd: number, data: unknown, ...rest: unknown[]) => {
    // The line goes through file-io.ts's writeAllSync, as a Buffer.
    const text = typeof data === 'string' ? data : Buffer.isBuffer(data) ? data.toString('latin1') : '';
    if (/^\d+:/.test(text)) process.kill(process.pid, 'SIGKILL');
    return (realWriteSync as (...args: unknown[]) => number)(fd, data, ...rest);
  }) as typeof fs.writeSync;
} else if (mode === 'no-links') {
  fs.linkSync = (() => {
    links++;
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  }) as typeof fs.linkSync;
}
syncBuiltinESMExports(); // `import { writeSync } from 'node:fs'` sees the replacement too

const { withMailboxLock } = await import('../../../src/store/dotlock.ts');
await withMailboxLock(mbox, async () => process.stdout.write(fs.readFileSync(`${mbox}.lock`, 'utf8')));
if (mode === 'no-links') {
  for (let i = 0; i < 2; i++) await withMailboxLock(mbox, async () => {});
  process.stderr.write(`links tried: ${links}\n`);
}
