// Shared helpers for the MIME tests: the corpus, chunking, a seeded random
// number generator (so a failure can be replayed), and the reference
// definitions of what the structure parser counts.

import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { MimePart } from '../../src/mime/part.ts';

export const CORPUS_DIR = path.join(import.meta.dirname, 'corpus');

export interface CorpusMessage {
  name: string;
  bytes: Buffer;
  /** The expected ENVELOPE, BODY and BODYSTRUCTURE lines, as bytes (latin1 strings). */
  expected: Map<string, string>;
}

/** Every NAME.eml of the corpus with its NAME.expected. */
export function loadCorpus(): CorpusMessage[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((f) => {
      const expected = new Map<string, string>();
      const text = readFileSync(path.join(CORPUS_DIR, f.replace(/\.eml$/, '.expected')), 'latin1');
      // One item a line; the CRLF inside a literal ({n}\r\n) does not end a line.
      for (const line of text.split(/(?<!\r)\n/)) {
        const space = line.indexOf(' ');
        if (space > 0) expected.set(line.slice(0, space), line.slice(space + 1));
      }
      return { name: f, bytes: readFileSync(path.join(CORPUS_DIR, f)), expected };
    });
}

/** `bytes` cut into pieces of `size` bytes. */
export function chunksOf(bytes: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

/** `bytes` cut at the given offsets. */
export function splitAt(bytes: Buffer, ...cuts: number[]): Buffer[] {
  const points = [0, ...cuts, bytes.length];
  return points.slice(1).map((end, k) => bytes.subarray(points[k], end));
}

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `bytes` cut into pieces of random sizes between 1 and `max`. */
export function randomChunks(bytes: Buffer, max: number, next: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const size = 1 + Math.floor(next() * max);
    out.push(bytes.subarray(i, i + size));
    i += size;
  }
  return out;
}

/** Octets on the wire of some LF or CRLF text: each LF without a CR before it becomes CRLF. */
export function wireOctets(bytes: Buffer): number {
  let bare = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a && (i === 0 || bytes[i - 1] !== 0x0d)) bare++;
  return bytes.length + bare;
}

export function countLines(bytes: Buffer): number {
  let n = 0;
  for (const byte of bytes) if (byte === 0x0a) n++;
  return n;
}

/** Every part of a tree, embedded messages included, in order. */
export function allParts(part: MimePart): MimePart[] {
  return [part, ...part.children.flatMap(allParts), ...(part.message ? allParts(part.message) : [])];
}

/** Copies chunks so a test can check the parser keeps no reference to them (we overwrite them after). */
export function* reusedBuffer(chunks: Buffer[]): Generator<Buffer> {
  const scratch = Buffer.alloc(Math.max(1, ...chunks.map((c) => c.length)));
  for (const chunk of chunks) {
    chunk.copy(scratch);
    yield scratch.subarray(0, chunk.length);
    scratch.fill(0x58); // "X": anything kept by reference would now read as garbage
  }
}

/** Where and how big every part is, in one comparable string. */
export function layout(root: MimePart): string {
  return allParts(root)
    .map((p) => [p.headerStart, p.bodyStart, p.bodyEnd, p.headerOctets, p.bodyOctets, p.bodyLines, p.type, p.subtype, p.header.toString('latin1'), p.headerTruncated].join(','))
    .join(';');
}
