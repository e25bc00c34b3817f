// The end-of-DATA reader: a small state machine over bytes that finds the end
// of an SMTP message, removes dot-stuffing, and turns CRLF into the LF line
// endings the mbox files use.
//
// RFC 5321 4.1.1.4: the message ends with <CRLF>.<CRLF>, and nothing else ends
// it. A bare LF or a bare CR is never a line end for that purpose: if it were,
// "\n.\n" inside one message could end it early and the bytes after it would be
// read as new commands, a second message the client's own server never checked
// (SMTP smuggling, 2023). So the states below only reach "line start" after a
// real CRLF.
//
// Bare LF inside the message: we normalise rather than reject. It is kept as
// a line break (our mbox files use LF anyway), as Postfix 3.9 does with its
// default `smtpd_forbid_bare_newline = normalize`. Real mail from old scripts
// contains bare LFs, and since only CRLF.CRLF ends the message and every relay
// re-encodes lines as CRLF, nothing can be smuggled through it.
//
// Bare CR inside the message: normalised too, into a line break, the same
// rule as bare LF. The choices were:
//  - keep it (Postfix stores it as data): then it sits in the mbox, and the
//    relay must still decide what to send for it, since some receivers take a
//    lone CR as a line end and "\r.\r" would end DATA there (the outbound
//    half of smuggling);
//  - reject the message (chasquid refuses bare CR and bare LF): safe, but it
//    loses real mail from old software for one stray byte, and we already
//    normalise bare LF rather than refuse it;
//  - normalise it: one rule for both bare line ends, the mbox holds only LF
//    line breaks, and what goes out again (wire/dot-writer.ts, which applies
//    the same rule to whatever the store holds) is CRLF with every line
//    dot-stuffed. Mail readers show a lone CR as a line break anyway.
// Like a bare LF, a bare CR is a line break in the stored message but never
// a line start here: only a real CRLF can begin the end marker or a stuffed
// dot, so "\r.\r\n" keeps its dot and "\r\n.\r" ends nothing.
//
// RFC 5321 4.5.2: a line that starts with a period has had one period added by
// the client; we remove it.

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/**
 * Where we are:
 * - lineStart: just after CRLF (or at the very beginning of the data)
 * - inLine:    somewhere inside a line
 * - cr:        inside a line, just after a CR whose LF we are waiting for
 * - dot:       a line that started with "."
 * - dotCr:     a line that is "." then CR: one LF more and the message is over
 */
type State = 'lineStart' | 'inLine' | 'cr' | 'dot' | 'dotCr';

export class DataReader {
  private state: State = 'lineStart';
  /** Bytes read from the client so far, end marker and stuffing dots included. */
  wireBytes = 0;
  /** Stuffing dots removed so far. */
  private stuffingDots = 0;
  /** Reused for every chunk's output, so a large message makes no garbage. */
  private outBuffer = Buffer.alloc(0);
  done = false;

  /**
   * The message size as RFC 1870 counts it: octets with CRLF pairs, but not
   * the stuffing dots nor the final "." CRLF. Before the end, a "." or "." CR
   * waiting at the end of a chunk is not counted yet: it may be the end marker.
   */
  get messageBytes(): number {
    const undecided = this.done ? 3 : this.state === 'dot' ? 1 : this.state === 'dotCr' ? 2 : 0;
    return this.wireBytes - this.stuffingDots - undecided;
  }

  /**
   * Read one chunk. Returns the message bytes found in it (unstuffed, LF line
   * endings) and how many bytes of the chunk belong to the message: all of
   * them until the end marker is seen, then up to and including its final LF.
   * The output is only valid until the next push: copy what you keep.
   */
  push(chunk: Buffer): { output: Buffer; used: number } {
    // The output is never longer than the input plus one held-back CR (which
    // becomes one LF). Sized to the chunks that come, not to the largest a
    // socket can deliver: a reader lives for one message, and most mail is
    // a few KiB.
    if (this.outBuffer.length < chunk.length + 1) this.outBuffer = Buffer.allocUnsafe(Math.max(chunk.length + 1, 2 * this.outBuffer.length));
    const out = this.outBuffer;
    let n = 0;
    let i = 0;
    // Where the next CR and LF are in this chunk (-1: none left; -2: not looked yet).
    let nextCr = -2;
    let nextLf = -2;
    for (; i < chunk.length && !this.done; i++) {
      const byte = chunk[i];
      switch (this.state) {
        case 'lineStart': {
          if (byte === DOT) {
            this.state = 'dot';
            break;
          }
          // Fast path for the common case, a whole ordinary line "text CRLF"
          // in this chunk: copy it in one go and stay at a line start.
          if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
          if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
          if (nextLf > i && nextCr === nextLf - 1) {
            chunk.copy(out, n, i, nextCr);
            n += nextCr - i;
            out[n++] = LF;
            i = nextLf; // the loop's i++ moves past the LF
            break;
          }
          n = this.inLine(byte, out, n);
          break;
        }
        case 'inLine': {
          // Fast path: copy the run of ordinary bytes up to the next CR or LF
          // in one go; only those two bytes need the state machine.
          if (nextCr !== -1 && nextCr < i) nextCr = chunk.indexOf(CR, i);
          if (nextLf !== -1 && nextLf < i) nextLf = chunk.indexOf(LF, i);
          const stop = Math.min(nextCr < 0 ? chunk.length : nextCr, nextLf < 0 ? chunk.length : nextLf);
          if (stop > i) {
            chunk.copy(out, n, i, stop);
            n += stop - i;
            i = stop - 1; // the loop's i++ lands on the CR/LF (or the end)
            break;
          }
          n = this.inLine(byte, out, n);
          break;
        }
        case 'cr':
          if (byte === LF) {
            out[n++] = LF; // CRLF becomes LF
            this.state = 'lineStart';
          } else {
            out[n++] = LF; // a bare CR: normalised into a line break (see the header)
            n = this.inLine(byte, out, n);
          }
          break;
        case 'dot':
          if (byte === CR) {
            this.state = 'dotCr';
          } else {
            // The dot was stuffing: drop it, keep the rest of the line.
            this.stuffingDots++;
            n = this.inLine(byte, out, n);
          }
          break;
        case 'dotCr':
          if (byte === LF) {
            this.done = true; // <CRLF>.<CRLF>
          } else {
            // "." CR then something else: the dot was stuffing and the CR is bare.
            this.stuffingDots++;
            out[n++] = LF;
            n = this.inLine(byte, out, n);
          }
          break;
      }
    }
    this.wireBytes += i;
    return { output: out.subarray(0, n), used: i };
  }

  /** A byte inside a line: CR is held back, anything else is copied. */
  private inLine(byte: number, out: Buffer, n: number): number {
    if (byte === CR) {
      this.state = 'cr'; // hold it until we know whether LF follows
      return n;
    }
    // A bare LF is normalised to a line break but is NOT a line start:
    // only CRLF can begin the end marker.
    this.state = 'inLine';
    out[n++] = byte;
    return n;
  }
}

