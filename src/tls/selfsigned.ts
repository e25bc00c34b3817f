// A self-signed X.509 v3 certificate, built by hand so the server can offer
// STARTTLS on first start without the openssl binary or any package.
//
// A certificate (RFC 5280 4.1) is three things in a SEQUENCE:
//   tbsCertificate      what is being vouched for: names, dates, public key
//   signatureAlgorithm  how it was signed (ecdsa-with-SHA256 here)
//   signatureValue      the signature over the DER bytes of tbsCertificate
// Self-signed means the issuer is the subject and the signature is made
// with the private key that matches the certificate's own public key.
//
// Mail clients and other servers rarely verify certificates on port 25
// (RFC 7435, opportunistic TLS), so a self-signed one still buys encryption;
// replace it with a CA-issued one (and send SIGHUP) for submission users.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import {
  bitString, boolean, contextTag, integer, octetString, oid, readTlv, sequence, set, utf8String, x509Time,
} from './der.ts';

export interface SelfSignedOptions {
  /** The server's name: the subject CN and the first subjectAltName. */
  hostname: string;
  /** More names (DNS names or IP literals), e.g. ['localhost', '127.0.0.1']. */
  altNames?: string[];
  /** Validity in days. Default 825, the longest browsers long accepted. */
  days?: number;
  /** The clock, for tests. */
  now?: Date;
}

// Object identifiers used below (RFC 5280 appendix A, RFC 5758 3.2).
const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Generates a P-256 key and a self-signed certificate for `hostname`. */
export function createSelfSignedCertificate(opts: SelfSignedOptions): { keyPem: string; certPem: string } {
  const days = opts.days ?? 825;
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`days must be a positive integer, got ${days}`);
  const now = opts.now ?? new Date();
  const names = normalizeNames([opts.hostname, ...(opts.altNames ?? [])]);

  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  // Node already writes SubjectPublicKeyInfo (RFC 5280 4.1.2.7) in DER,
  // algorithm identifier and curve included, so we copy it in unchanged.
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  // RFC 5758 3.2: ecdsa-with-SHA256 has no parameters (not even NULL).
  const algorithm = sequence(oid(OID.ecdsaWithSHA256));
  const name = distinguishedName(names[0]);

  const tbs = sequence(
    contextTag(0, integer(2)), // version [0] EXPLICIT: the value 2 means v3 (4.1.2.1)
    integer(serialNumber()),
    algorithm, // 4.1.2.3: must equal the outer signatureAlgorithm
    name, // issuer
    // 4.1.2.5. Start an hour early so a client whose clock is a little
    // behind does not reject a certificate made a moment ago.
    sequence(x509Time(new Date(now.getTime() - 60 * 60 * 1000)), x509Time(new Date(now.getTime() + days * DAY_MS))),
    name, // subject: the same, which is what self-signed means
    spki,
    contextTag(3, sequence(...extensions(names, spki))), // extensions [3] EXPLICIT (4.1.2.9)
  );

  // For EC keys crypto.sign() returns the DER Ecdsa-Sig-Value that X.509
  // expects (RFC 5758 3.2), computed over the exact TBS bytes.
  const signature = sign('sha256', tbs, privateKey);
  const certificate = sequence(tbs, algorithm, bitString(signature));

  return {
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    certPem: toPem('CERTIFICATE', certificate),
  };
}

/** PEM (RFC 7468): base64 in 64-character lines between BEGIN/END labels. */
export function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// 4.1.2.2: a positive integer of at most 20 octets, unique per issuer. Ours
// are 16 random bytes; clearing the top bit keeps it positive without a
// 0x00 pad, and "|| 1" keeps the first byte non-zero so it stays 16 bytes.
function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = serial[0] & 0x7f || 1;
  return serial;
}

// Name (4.1.2.4) as a single RDN holding the CN. UTF8String is what 4.1.2.4
// asks for; ub-common-name (appendix A) caps it at 64 characters.
function distinguishedName(commonName: string): Buffer {
  if (commonName.length > 64) throw new Error(`hostname is too long for a certificate CN (64 max): ${commonName}`);
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

// Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue
// OCTET STRING }. DER (X.690 11.5) omits a field equal to its DEFAULT, so
// "critical" appears only when true.
function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function extensions(names: string[], spki: Buffer): Buffer[] {
  return [
    // 4.2.1.6. TLS clients match the hostname here, not in the CN
    // (RFC 6125 6.4.4). Not critical because the subject is not empty.
    extension(OID.subjectAltName, false, sequence(...names.map(generalName))),
    // 4.2.1.9: cA is FALSE; as the DEFAULT it is omitted, leaving SEQUENCE {}.
    // Critical, so no verifier can mistake this for a CA.
    extension(OID.basicConstraints, true, sequence()),
    // 4.2.1.3: digitalSignature is bit 0, the top bit of the first byte.
    // The other 7 bits are trailing zeros, dropped per DER, so unused = 7.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
    // 4.2.1.12: the key is for a TLS server.
    extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
    // 4.2.1.2 method (1): the SHA-1 of the subjectPublicKey BIT STRING's
    // value (without tag, length or unused-bits byte). Helps tools tell
    // keys apart; it is an identifier, so SHA-1's weakness does not matter.
    extension(OID.subjectKeyIdentifier, false, octetString(createHash('sha1').update(publicKeyBits(spki)).digest())),
  ];
}

// SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }
function publicKeyBits(spki: Buffer): Buffer {
  const outer = readTlv(spki);
  const algorithm = readTlv(outer.contents);
  const key = readTlv(outer.contents, algorithm.end);
  if (key.tag !== 0x03) throw new Error('SubjectPublicKeyInfo: expected a BIT STRING');
  return key.contents.subarray(1); // skip the unused-bits byte
}

// GeneralName (4.2.1.6): dNSName [2] IMPLICIT IA5String, iPAddress [7]
// IMPLICIT OCTET STRING holding the 4 or 16 address bytes.
function generalName(name: string): Buffer {
  return isIP(name) ? contextTag(7, ipBytes(name), false) : contextTag(2, Buffer.from(name, 'ascii'), false);
}

// Lower-case, turn Unicode names into A-labels (4.2.1.6 wants IA5 "xn--"
// names), validate, and drop duplicates, keeping the first name first.
function normalizeNames(raw: string[]): string[] {
  const out: string[] = [];
  for (const name of raw) {
    const trimmed = name.trim().replace(/^\[(.*)\]$/, '$1'); // accept "[::1]"
    let normal: string;
    if (isIP(trimmed)) {
      normal = trimmed.toLowerCase();
    } else {
      // domainToASCII returns '' for invalid names; it would also turn a
      // short numeric form like "10.1" into an IPv4 address, refused too.
      normal = domainToASCII(trimmed.replace(/\.$/, ''));
      if (!/^[a-z0-9.-]+$/.test(normal) || isIP(normal)) {
        throw new Error(`not a hostname or IP address: ${JSON.stringify(name)}`);
      }
    }
    if (!out.includes(normal)) out.push(normal);
  }
  return out;
}

// The network-order bytes of an IPv4 or IPv6 literal (already validated
// by isIP). IPv6 "::" stands for as many zero groups as are missing, and
// the last 32 bits may be written as dotted IPv4 ("::ffff:1.2.3.4").
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head, tail] = ip.split('%')[0].split('::') as [string, string | undefined];
  const groups = (part: string | undefined): number[] => {
    if (!part) return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const left = groups(head);
  const right = groups(tail);
  const all = tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = Buffer.alloc(16);
  all.forEach((g, i) => bytes.writeUInt16BE(g, i * 2));
  return bytes;
}
