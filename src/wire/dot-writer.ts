// The sending side of dot-stuffing, for every protocol that sends a message
// as lines ended by a line holding a single "." (POP3 RETR/TOP, RFC 1939 3;
// SMTP DATA from the relay, RFC 5321 4.5.2). The store keeps LF line
// endings; on the wire every line ends in CRLF, a line that starts with "."
// gets one more, and "." CRLF ends the whole.
//
// Streaming: chunks of any size go in, and the only state carried between
// them is whether the next byte starts a line.

const LF = 0x0a;
const CR = 0x0d;
const DOT = 0x2e;

const END_MARKER = Buffer.from('.\r\n');

export class DotWriter {
  private atLineStart = true;

  /** Encode one chunk of LF-terminated text. */
  push(chunk: Buffer): Buffer {
    // Worst case: every byte an LF (becomes CRLF) or a line-leading dot (doubled).
    const out = Buffer.allocUnsafe(chunk.length * 2);
    let n = 0;
    let from = 0;
    while (from < chunk.length) {
      if (this.atLineStart && chunk[from] === DOT) out[n++] = DOT;
      const lf = chunk.indexOf(LF, from);
      const end = lf < 0 ? chunk.length : lf;
      // A CR already before the LF (a bare CR kept by the store) is left alone.
      n += chunk.copy(out, n, from, end);
      if (lf < 0) {
        this.atLineStart = false;
        break;
      }
      if (end === from || chunk[end - 1] !== CR) out[n++] = CR;
      out[n++] = LF;
      this.atLineStart = true;
      from = lf + 1;
    }
    return out.subarray(0, n);
  }

  /** Finish: close an unterminated last line, then the end marker. */
  end(): Buffer {
    const close = this.atLineStart ? END_MARKER : Buffer.from('\r\n.\r\n');
    this.atLineStart = true;
    return close;
  }
}
