// DKIM "relaxed" canonicalisation: the rewriting both signer and verifier
// apply before hashing, so that the small changes mail servers make in
// transit (re-folding headers, changing the case of field names, adding or
// stripping white space at line ends, LF versus CRLF) do not break the
// signature. RFC 6376 3.4.2 (header fields) and 3.4.4 (body).
//
// The body is canonicalised as it streams past: a byte-at-a-time state
// machine that writes into one fixed buffer and feeds the hash, so a 1 GB
// message costs the same memory as a 1 KB one.
//
// Invariants of RelaxedBodyHasher:
//  - it never holds more than one output buffer (OUT_SIZE bytes) of data;
//    everything pending is a count or a flag, never bytes;
//  - a line end is CRLF, a bare LF (our queue stores LF) or a bare CR, all
//    meaning CRLF on the wire: the hash covers the lines as the receiver
//    will see them, and wire/dot-writer.ts sends a bare CR as CRLF.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;

/** Bytes gathered before each hash.update(): large enough to be fast, small enough not to matter. */
const OUT_SIZE = 64 * 1024;

/**
 * RFC 6376 3.4.2: one header field in relaxed form, `name:value` without
 * the trailing CRLF (the caller adds it, except for the DKIM-Signature
 * field itself, RFC 6376 3.7). `raw` is the field as it appears, folded
 * lines and line end included; a Buffer is read as latin1 so 8-bit bytes
 * in the value come back out unchanged.
 */
export function relaxedHeaderField(raw: Buffer | string): string {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const colon = text.indexOf(':');
  if (colon < 0) throw new Error('dkim: header field without a colon');
  // Field names are case-insensitive (RFC 5322 1.2.2), so they are signed in
  // lower case; white space before the colon (obsolete syntax) is dropped.
  const name = text.slice(0, colon).replace(/[ \t]+$/, '').toLowerCase();
  const value = text
    .slice(colon + 1)
    .replace(/\r?\n/g, '') // unfold: a line end inside a field is always followed by WSP
    .replace(/[ \t]+/g, ' ') // every run of WSP becomes one space
    .replace(/^ /, '') // no WSP after the colon
    .replace(/ $/, ''); // no WSP at the end of the value
  return `${name}:${value}`;
}

/**
 * RFC 6376 3.4.4: the relaxed body canonicalisation, fed in chunks, and the
 * SHA-256 of the result (the bh= tag, RFC 6376 3.7). The rules:
 *  - WSP at the end of a line is ignored;
 *  - every other run of WSP becomes a single space (leading ones too);
 *  - empty lines at the end of the body are ignored;
 *  - a non-empty body always ends in CRLF; an empty one hashes as nothing.
 *
 * The trick that keeps memory bounded is to defer instead of buffer: a run
 * of WSP is one flag (emitted as one space only if a non-WSP byte follows on
 * the same line) and a run of line ends is one counter (emitted only if
 * content follows, so trailing empty lines simply never get written).
 */
export class RelaxedBodyHasher {
  readonly #hash: Hash = createHash('sha256');
  readonly #out = Buffer.allocUnsafe(OUT_SIZE);
  #used = 0;
  #pendingWsp = false; // a run of WSP seen on this line, not yet written
  #pendingCr = false; // a CR seen, waiting to learn whether LF follows
  #pendingLineEnds = 0; // line ends seen since the last content byte, not yet written
  #sawContent = false; // any non-WSP byte at all: decides the empty-body case

  update(chunk: Uint8Array): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (this.#pendingCr) {
        this.#pendingCr = false;
        this.#lineEnd(); // CR LF, or a bare CR: one line end either way
        if (byte === LF) continue;
      }
      if (byte === CR) this.#pendingCr = true;
      else if (byte === LF) this.#lineEnd(); // LF-only input: the same line end as CRLF
      else if (byte === SP || byte === TAB) this.#pendingWsp = true;
      else this.#content(byte);
    }
  }

  /** Ends the body and returns the SHA-256 of its canonical form. */
  digest(): Buffer {
    if (this.#pendingCr) this.#lineEnd();
    // The last line's CRLF: the one deferred in #pendingLineEnds (any more
    // were trailing empty lines), or the one added when the body did not end
    // with a line end. An all-blank body stays empty.
    if (this.#sawContent) {
      this.#emit(CR);
      this.#emit(LF);
    }
    this.#flush();
    return this.#hash.digest();
  }

  #lineEnd(): void {
    this.#pendingWsp = false; // WSP at the end of a line is ignored
    this.#pendingLineEnds++;
  }

  #content(byte: number): void {
    // Content proves the deferred line ends were not trailing: write them now.
    for (; this.#pendingLineEnds > 0; this.#pendingLineEnds--) {
      this.#emit(CR);
      this.#emit(LF);
    }
    if (this.#pendingWsp) {
      this.#emit(SP);
      this.#pendingWsp = false;
    }
    this.#emit(byte);
    this.#sawContent = true;
  }

  #emit(byte: number): void {
    if (this.#used === OUT_SIZE) this.#flush();
    this.#out[this.#used++] = byte;
  }

  #flush(): void {
    if (this.#used > 0) this.#hash.update(this.#out.subarray(0, this.#used));
    this.#used = 0;
  }
}
