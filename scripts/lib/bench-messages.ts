// The benchmark's messages: MessageFactory builds N messages of an exact size
// (a unique header each, one shared dot-stuffed body), and printableLines
// makes the filler text, which the raw fsync measurement reuses.

import { dotStuff } from './smtp-client.ts';
import { UsageError } from './args.ts';

const LINE_LENGTH = 76; // printable characters per body line, as in mail

/**
 * Builds the N messages. Each is exactly `size` bytes as the client hands it
 * to SMTP (CRLF line endings, before dot-stuffing): a header of fixed length
 * with a unique Message-ID and X-Bench-Token, then printable lines of 76
 * characters. The body is the same for every message, built and dot-stuffed
 * once, so the client spends its CPU on sending, not on building.
 */
export class MessageFactory {
  readonly runId: string;
  readonly tokenPrefix: string;
  readonly #to: string;
  readonly #date: string;
  readonly #count: number;
  readonly #body: Buffer; // dot-stuffed, ends with CRLF
  readonly headerBytes: number;

  constructor(runId: string, to: string, count: number, size: number) {
    this.runId = runId;
    this.tokenPrefix = `X-Bench-Token: ${runId}-`;
    this.#to = to;
    this.#count = count;
    this.#date = new Date().toUTCString().replace('GMT', '+0000');
    this.headerBytes = this.#rawHeader(0).length;
    const bodyBytes = size - this.headerBytes;
    if (bodyBytes < 2) {
      throw new UsageError(`--size ${size} is too small: the header alone is ${this.headerBytes} bytes`);
    }
    this.#body = dotStuff(printableLines(bodyBytes));
  }

  // Index numbers are zero-padded so every header has the same length.
  #rawHeader(index: number): Buffer {
    const n = String(index + 1).padStart(8, '0');
    return Buffer.from(
      `From: bench-smtp <bench@bench-smtp.invalid>\r\n` +
        `To: <${this.#to}>\r\n` +
        `Subject: bench-smtp message ${n} of ${String(this.#count).padStart(8, '0')}\r\n` +
        `Date: ${this.#date}\r\n` +
        `Message-ID: <${this.runId}.${n}@bench-smtp.invalid>\r\n` +
        `${this.tokenPrefix}${n}\r\n` +
        `MIME-Version: 1.0\r\n` +
        `Content-Type: text/plain; charset=us-ascii\r\n` +
        `\r\n`,
      'latin1',
    );
  }

  /** The header (with the blank line) as it goes on the wire. */
  header(index: number): Buffer {
    return dotStuff(this.#rawHeader(index));
  }

  /** The body as it goes on the wire, shared by all messages: never modify it. */
  get body(): Buffer {
    return this.#body;
  }
}

/**
 * `bytes` bytes of CRLF-terminated lines of printable ASCII. Each line starts
 * one character further along the alphabet, so now and then a line starts
 * with "." and dot-stuffing is exercised; none can start with "From ".
 */
export function printableLines(bytes: number): Buffer {
  const alphabet = Buffer.alloc(95 * 2);
  for (let i = 0; i < alphabet.length; i++) alphabet[i] = 0x20 + (i % 95);
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (let line = 0; at < bytes; line++) {
    const room = bytes - at - 2; // leave space for CRLF
    const length = Math.min(LINE_LENGTH, room);
    // The first character is never a space: a line of spaces only is "blank".
    const start = 1 + (line % 94);
    at += alphabet.copy(out, at, start, start + length);
    out[at++] = 0x0d;
    out[at++] = 0x0a;
  }
  return out;
}
