// Modified UTF-7 (RFC 3501 5.1.3): how IMAP4rev1 writes mailbox names that
// are not ASCII. Printable ASCII stands for itself, except "&", written "&-";
// anything else is UTF-16, base64-encoded with "," instead of "/", between
// "&" and "-". So "Entwürfe" is "Entw&APw-rfe" on the wire.
//
// The store keeps names as Unicode; the IMAP layer converts at the edge.
// Decoding is strict (RFC 3501 says a name with a badly encoded part must be
// refused), so one folder cannot have two spellings on the wire.

/** Unicode to modified UTF-7. */
export function encodeMailboxName(name: string): string {
  let out = '';
  let pending: number[] = []; // UTF-16 code units waiting to be base64-encoded
  const flush = () => {
    if (pending.length === 0) return;
    const bytes = Buffer.alloc(pending.length * 2);
    pending.forEach((unit, i) => bytes.writeUInt16BE(unit, i * 2));
    out += '&' + bytes.toString('base64').replace(/=+$/, '').replaceAll('/', ',') + '-';
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    if (unit >= 0x20 && unit <= 0x7e) {
      flush();
      out += unit === 0x26 ? '&-' : name[i];
    } else {
      pending.push(unit);
    }
  }
  flush();
  return out;
}

/** Modified UTF-7 to Unicode; null when the name is not valid modified UTF-7. */
export function decodeMailboxName(wire: string): string | null {
  let out = '';
  for (let i = 0; i < wire.length; ) {
    const c = wire.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return null; // 8-bit or control: not modified UTF-7
    if (c !== 0x26) {
      out += wire[i++];
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) return null;
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const encoded = wire.slice(i + 1, end);
    if (!/^[A-Za-z0-9+,]+$/.test(encoded)) return null;
    const bytes = Buffer.from(encoded.replaceAll(',', '/'), 'base64');
    if (bytes.length % 2 !== 0 || bytes.length === 0) return null;
    // Canonical form only: re-encoding must give the same text back.
    if (bytes.toString('base64').replace(/=+$/, '') !== encoded.replaceAll(',', '/')) return null;
    let chunk = '';
    for (let k = 0; k < bytes.length; k += 2) chunk += String.fromCharCode(bytes.readUInt16BE(k));
    // RFC 3501 5.1.3: printable ASCII must not be encoded; lone surrogates are not text.
    if (/[\x20-\x7e]/.test(chunk) || !chunk.isWellFormed()) return null;
    out += chunk;
    i = end + 1;
  }
  return out;
}
