// How bench-smtp.ts and bench-pop3.ts write their figures: sizes in B, KiB
// or MiB for the report, and numbers rounded for the JSON line that follows
// it.

const MiB = 1024 * 1024;

/**
 * "5 KiB", "1.5 MiB", "5000 B". With `approximate`, a size of 1 KiB or more
 * that is not a whole number of KiB reads "5.4 KiB (5530 B)" (bench-pop3's
 * default --size is 5.4k).
 */
export function formatSize(bytes: number, approximate = false): string {
  if (bytes >= MiB && bytes % (MiB / 10) === 0) return `${bytes / MiB} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  if (approximate && bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB (${bytes} B)`;
  return `${bytes} B`;
}

/** `n` to `digits` decimals for JSON; null for a figure that does not exist (or is not finite). */
export function round(n: number | null | undefined, digits = 2): number | null {
  return n === null || n === undefined || !Number.isFinite(n) ? null : Number(n.toFixed(digits));
}
