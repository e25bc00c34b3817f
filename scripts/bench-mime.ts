// MIME benchmark: how long FETCH BODYSTRUCTURE ENVELOPE and SEARCH TEXT
// would spend on MIME work for a mailbox, without disk or network.
//
//   node scripts/bench-mime.ts [--count 50000] [--chunk 65536]
//
// It takes the test corpus (test/mime/corpus/*.eml: single parts,
// multiparts with attachments, nested messages, broken ones) round-robin as
// `count` messages, each fed in chunks of `chunk` bytes as the store yields
// them, and times two passes:
//  1. structure: parse the structure, write BODYSTRUCTURE and ENVELOPE;
//  2. search: decode the text parts and look for a word that is not there
//     (the worst case: every byte is read).
// Each figure is per message and in MiB/s of message bytes. Nothing is
// written anywhere.

import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseStructure } from '../src/mime/structure.ts';
import { messageText } from '../src/mime/text.ts';
import { textContains } from '../src/mime/search-match.ts';
import { formatBodyStructure } from '../src/imap/bodystructure.ts';
import { formatEnvelope } from '../src/imap/envelope.ts';
import { integer, UsageError } from './lib/args.ts';

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : (process.argv[at + 1] ?? '');
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

async function main(): Promise<void> {
  const count = integer('--count', option('--count', '50000'), 1, 10_000_000);
  const chunk = integer('--chunk', option('--chunk', '65536'), 1, 1 << 30);
  const dir = path.join(import.meta.dirname, '..', 'test', 'mime', 'corpus');
  const corpus = readdirSync(dir).filter((f) => f.endsWith('.eml')).map((f) => chunked(readFileSync(path.join(dir, f)), chunk));
  const bytesPerRound = corpus.reduce((sum, m) => sum + m.reduce((s, c) => s + c.length, 0), 0);
  const totalBytes = (bytesPerRound * count) / corpus.length;

  const report = (label: string, ms: number) =>
    console.log(`${label.padEnd(10)} ${((ms * 1000) / count).toFixed(1).padStart(8)} us/message ${(totalBytes / 1048576 / (ms / 1000)).toFixed(1).padStart(8)} MiB/s`);

  let start = performance.now();
  for (let i = 0; i < count; i++) {
    const root = await parseStructure(corpus[i % corpus.length]);
    formatBodyStructure(root);
    formatEnvelope(root.header);
  }
  report('structure', performance.now() - start);

  start = performance.now();
  for (let i = 0; i < count; i++) await textContains(messageText(corpus[i % corpus.length]), 'no such word anywhere');
  report('search', performance.now() - start);
  console.log(`${count} messages, ${(totalBytes / 1048576).toFixed(1)} MiB, chunks of ${chunk} bytes`);
}

main().catch((err) => {
  console.error(`bench-mime: ${(err as Error).message}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
