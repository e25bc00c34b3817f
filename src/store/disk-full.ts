// Telling "the disk is full" apart from every other I/O error.
//
// A full disk (ENOSPC) or an exhausted quota (EDQUOT) is temporary: the
// protocols answer it with a "try again later" reply that names it
// (SMTP 452 4.3.1, RFC 3463 3.4 "mail system full"; POP3 -ERR [SYS/TEMP],
// RFC 3206 4), instead of a generic internal error. The store itself uses
// the test to keep serving reads on a full disk (mbox-index.ts).

/** The error codes the kernel uses for "no room to write". */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** True for ENOSPC and EDQUOT, and for a DiskFullError. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' && DISK_FULL_CODES.has(code);
}

/**
 * A store operation refused for lack of space, with nothing changed. Its
 * `code` is the one the file system gave (ENOSPC or EDQUOT), so isDiskFull
 * recognises it too; the original error is its `cause`.
 */
export class DiskFullError extends Error {
  override name = 'DiskFullError';
  readonly code: string;
  constructor(message: string, cause: NodeJS.ErrnoException) {
    super(message, { cause });
    this.code = cause.code ?? 'ENOSPC';
  }
}
