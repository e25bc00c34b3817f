// A small DER encoder: just enough ASN.1 to write an X.509 certificate.
//
// DER (Distinguished Encoding Rules, ITU-T X.690 section 10) is BER with
// every choice pinned down, so each value has exactly one encoding. That is
// what makes signatures work: the signer and the verifier must agree on the
// bytes, not just on the meaning. Every value is a TLV:
//
//   tag (1 byte here) | length (X.690 8.1.3) | contents
//
// Each function below returns the complete TLV as a Buffer, so structures
// are built by nesting calls: sequence(integer(2), oid('2.5.4.3')).
// We only write the low-tag-number form (tags 0..30), which is all X.509
// needs. readTlv() at the end is the one reading helper, for picking the
// public key bits out of a SubjectPublicKeyInfo.

// Universal tags (X.690 8.1.2 and X.680 8.4). 0x20 marks "constructed"
// (the contents are further TLVs); SEQUENCE and SET are always constructed.
const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The length octets (X.690 8.1.3; DER 10.1 requires the shortest form). */
export function encodeLength(length: number): Buffer {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad DER length ${length}`);
  // Short form: one byte, for 0..127.
  if (length < 0x80) return Buffer.from([length]);
  // Long form: 0x80 | number-of-bytes, then the length big-endian with no
  // leading zero bytes (DER 10.1).
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Any TLV: one tag byte, the length, the contents. */
export function tlv(tag: number, contents: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(contents.length), contents]);
}

/** SEQUENCE: an ordered list of already-encoded elements. */
export function sequence(...items: Buffer[]): Buffer {
  return tlv(TAG.SEQUENCE, Buffer.concat(items));
}

/**
 * SET: DER (X.690 11.6) sorts SET OF elements by their encodings. X.509
 * names use one element per SET, but we sort anyway so the function is
 * correct for any input.
 */
export function set(...items: Buffer[]): Buffer {
  return tlv(TAG.SET, Buffer.concat([...items].sort(Buffer.compare)));
}

/**
 * INTEGER (X.690 8.3): big-endian two's complement in the fewest bytes.
 * A Buffer is read as an unsigned magnitude (like a serial number), so a
 * leading 0x00 is added when its high bit is set; otherwise it would read
 * back as negative. Numbers and bigints may be negative.
 */
export function integer(value: Buffer | number | bigint): Buffer {
  if (Buffer.isBuffer(value)) {
    let start = 0;
    // DER 8.3.2: no redundant leading zero bytes (but keep one for zero).
    while (start < value.length - 1 && value[start] === 0x00) start++;
    const magnitude = value.length === 0 ? Buffer.from([0]) : value.subarray(start);
    const pad = magnitude[0] & 0x80 ? Buffer.from([0x00]) : Buffer.alloc(0);
    return tlv(TAG.INTEGER, Buffer.concat([pad, magnitude]));
  }
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`not an integer: ${value}`);
  const n = BigInt(value);
  // Grow the width until the value fits in signed two's complement:
  // k bytes hold -2^(8k-1) .. 2^(8k-1)-1.
  let width = 1;
  while (n < -(1n << BigInt(8 * width - 1)) || n >= 1n << BigInt(8 * width - 1)) width++;
  // A negative n is stored as 2^(8k) + n, the two's complement bit pattern.
  const unsigned = n < 0n ? (1n << BigInt(8 * width)) + n : n;
  return tlv(TAG.INTEGER, Buffer.from(unsigned.toString(16).padStart(2 * width, '0'), 'hex'));
}

/**
 * OBJECT IDENTIFIER (X.690 8.19): the first two arcs share one number
 * (40 * first + second), then every arc is written base 128, high bit set
 * on all bytes but the last of each arc.
 */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new Error(`bad OID ${JSON.stringify(dotted)}`);
    return BigInt(s);
  });
  if (arcs.length < 2 || arcs[0] > 2n || (arcs[0] < 2n && arcs[1] > 39n)) {
    throw new Error(`bad OID ${JSON.stringify(dotted)}`);
  }
  const subidentifiers = [arcs[0] * 40n + arcs[1], ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const sub of subidentifiers) {
    const group = [Number(sub & 0x7fn)];
    for (let rest = sub >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number(rest & 0x7fn) | 0x80);
    bytes.push(...group);
  }
  return tlv(TAG.OID, Buffer.from(bytes));
}

/** UTF8String: any Unicode text (RFC 5280 4.1.2.4 prefers it for names). */
export function utf8String(text: string): Buffer {
  return tlv(TAG.UTF8_STRING, Buffer.from(text, 'utf8'));
}

// "YYYYMMDDHHMMSS" in UTC. DER (X.690 11.7, 11.8) requires UTC with a "Z"
// and no fractional seconds, so the milliseconds are simply dropped.
function timeDigits(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new Error('invalid date');
  return date.toISOString().slice(0, 19).replace(/[-T:]/g, '');
}

/** UTCTime "YYMMDDHHMMSSZ" (RFC 5280 4.1.2.5.1: YY >= 50 means 19YY). */
export function utcTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 1950 || year > 2049) throw new RangeError(`UTCTime cannot hold the year ${year}`);
  return tlv(TAG.UTC_TIME, Buffer.from(timeDigits(date).slice(2) + 'Z', 'ascii'));
}

/** GeneralizedTime "YYYYMMDDHHMMSSZ" (RFC 5280 4.1.2.5.2). */
export function generalizedTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) throw new RangeError(`GeneralizedTime cannot hold the year ${year}`);
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(timeDigits(date) + 'Z', 'ascii'));
}

/**
 * The certificate Time choice (RFC 5280 4.1.2.5): dates through 2049 MUST
 * be UTCTime and dates from 2050 on MUST be GeneralizedTime.
 */
export function x509Time(date: Date): Buffer {
  return date.getUTCFullYear() < 2050 ? utcTime(date) : generalizedTime(date);
}

/**
 * BIT STRING (X.690 8.6): a first byte says how many bits of the last byte
 * are padding. Keys and signatures are whole bytes (0 unused bits); named
 * bit lists such as keyUsage drop trailing zero bits (DER 11.2.2) and say so.
 */
export function bitString(bits: Buffer, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7 || (bits.length === 0 && unusedBits !== 0)) {
    throw new RangeError(`bad unused-bits count ${unusedBits}`);
  }
  return tlv(TAG.BIT_STRING, Buffer.concat([Buffer.from([unusedBits]), bits]));
}

/** OCTET STRING: raw bytes. X.509 extension values are wrapped in one. */
export function octetString(bytes: Buffer): Buffer {
  return tlv(TAG.OCTET_STRING, bytes);
}

/** BOOLEAN: DER (X.690 11.1) says TRUE is exactly 0xFF. */
export function boolean(value: boolean): Buffer {
  return tlv(TAG.BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/**
 * A context-specific tag [n] (X.690 8.1.2.2: class bits 10, so 0x80 | n).
 *
 * - EXPLICIT [n] (constructed = true, the default): `content` is a whole
 *   TLV wrapped inside the new tag, as in the certificate's version [0]
 *   and extensions [3].
 * - IMPLICIT [n] (constructed = false): the tag replaces the universal one,
 *   so `content` is the bare contents, as in GeneralName's dNSName [2]
 *   (IA5String) and iPAddress [7] (OCTET STRING).
 */
export function contextTag(n: number, content: Buffer, constructed = true): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new RangeError(`context tag [${n}] needs the high-tag form`);
  return tlv(0x80 | (constructed ? 0x20 : 0) | n, content);
}

/** One TLV found by readTlv: its tag, its contents, and where it ends. */
export interface Tlv {
  tag: number;
  contents: Buffer;
  end: number;
}

/** Reads the TLV starting at `offset` (low-tag-number form, definite length). */
export function readTlv(der: Buffer, offset = 0): Tlv {
  if (offset + 2 > der.length) throw new Error('DER: truncated header');
  const tag = der[offset];
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: high-tag-number form not supported');
  let length = der[offset + 1];
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    // 0x80 alone is BER's indefinite length, which DER forbids (10.1).
    if (count === 0 || count > 4 || start + count > der.length) throw new Error('DER: bad length');
    length = der.readUIntBE(start, count);
    start += count;
  }
  const end = start + length;
  if (end > der.length) throw new Error('DER: contents run past the end');
  return { tag, contents: der.subarray(start, end), end };
}
