// mboxrd benchmark: throughput of the quoter (every delivered message) and
// the unquoter (every message read), without disk or network.
//
//   node scripts/bench-mboxrd.ts [--size 50m] [--chunk 64k] [--runs 5] [--impl FILE]
//
// Two inputs of `size` bytes each, pushed through in chunks of `chunk` bytes
// as the store reads and writes them:
//  - typical: the MIME test corpus (test/mime/corpus: headers, text,
//    base64 attachments) mixed with replies that quote earlier mail
//    ("> " lines) and now and then a body line starting "From ";
//  - replies: only the replies, so a line in three starts with ">".
// The unquoter reads the quoter's output. Each figure is the best of `runs`
// passes, in MiB/s of input. --impl times another copy of mboxrd.ts (say
// `git show HEAD~1:src/store/mboxrd.ts > /tmp/old-mboxrd.ts`), to compare.

import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { integer, parseSize, UsageError } from './lib/args.ts';

type Transform = { push(chunk: Buffer): Buffer; end(): Buffer };
type Impl = { MboxrdQuoter: new () => Transform; MboxrdUnquoter: new () => Transform };

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(name);
  return at < 0 ? fallback : (process.argv[at + 1] ?? '');
}

// A reply of about 4 KiB: new text, then the quoted mail it answers.
function reply(n: number): string {
  const lines = [`From: someone${n}@example.org`, 'To: jjordan@example.org', `Subject: Re: plans (${n})`, ''];
  for (let i = 0; i < 20; i++) lines.push(`Line ${i} of the answer, with some ordinary words in it to make it as long as mail is.`);
  if (n % 10 === 0) lines.push('From what I remember, this line needs a quote in the mbox.');
  lines.push('', `On Monday, someone${n + 1}@example.org wrote:`);
  for (let i = 0; i < 20; i++) lines.push(`> ${i % 5 === 0 ? '> ' : ''}an earlier line, quoted by the mail client, also ordinary text.`);
  if (n % 25 === 0) lines.push('>From an older quoted From line');
  return lines.join('\n') + '\n';
}

function repeatTo(size: number, next: (n: number) => Buffer): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (let n = 0; total < size; n++) {
    const part = next(n);
    parts.push(part);
    total += part.length;
  }
  return Buffer.concat(parts).subarray(0, size);
}

function chunked(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

// Pushes every chunk through a fresh transform; returns seconds and output.
function pass(make: () => Transform, chunks: Buffer[]): { seconds: number; out: Buffer[] } {
  const t = make();
  const out: Buffer[] = [];
  const start = process.hrtime.bigint();
  for (const chunk of chunks) out.push(t.push(chunk));
  out.push(t.end());
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, out };
}

async function main(): Promise<void> {
  const size = parseSize(option('--size', '50m'), 1024 ** 3);
  const chunk = parseSize(option('--chunk', '64k'), 1024 ** 3);
  const runs = integer('--runs', option('--runs', '5'), 1, 100);
  const implPath = option('--impl', path.join(import.meta.dirname, '..', 'src', 'store', 'mboxrd.ts'));
  const impl = (await import(pathToFileURL(path.resolve(implPath)).href)) as Impl;

  const dir = path.join(import.meta.dirname, '..', 'test', 'mime', 'corpus');
  const corpus = readdirSync(dir).filter((f) => f.endsWith('.eml')).map((f) => readFileSync(path.join(dir, f)));
  const inputs = {
    typical: repeatTo(size, (n) => (n % 2 === 0 ? corpus[(n / 2) % corpus.length] : Buffer.from(reply(n)))),
    replies: repeatTo(size, (n) => Buffer.from(reply(n))),
  };
  const MiB = 1024 * 1024;
  console.log(`mboxrd: ${implPath}, ${(size / MiB).toFixed(0)} MiB in ${chunk}-byte chunks, best of ${runs}`);
  for (const [name, input] of Object.entries(inputs)) {
    const chunks = chunked(input, chunk);
    let quoteBest = Infinity;
    let unquoteBest = Infinity;
    for (let run = 0; run < runs; run++) {
      const quoted = pass(() => new impl.MboxrdQuoter(), chunks);
      // The unquoter reads what the store wrote, in the same chunk size.
      const stored = chunked(Buffer.concat(quoted.out), chunk);
      const unquoted = pass(() => new impl.MboxrdUnquoter(), stored);
      if (!Buffer.concat(unquoted.out).equals(input)) throw new Error('unquote(quote(x)) is not x');
      quoteBest = Math.min(quoteBest, quoted.seconds);
      unquoteBest = Math.min(unquoteBest, unquoted.seconds);
    }
    const rate = (seconds: number) => `${(input.length / MiB / seconds).toFixed(0).padStart(6)} MiB/s`;
    console.log(`${name.padEnd(8)} quote ${rate(quoteBest)}   unquote ${rate(unquoteBest)}`);
  }
}

main().catch((err: Error) => {
  console.error(`bench-mboxrd: ${err.message}`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
