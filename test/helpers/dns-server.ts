// A tiny authoritative DNS server for tests: UDP on 127.0.0.1, answers from a
// zone object, so the relay's MX logic can be tested against Node's real
// resolver (c-ares) instead of a mock that might agree with our mistakes.
//
// Written from RFC 1035:
//   4.1.1  the 12-byte header (ID, flags, four counts)
//   4.1.2  the question (QNAME, QTYPE, QCLASS)
//   4.1.3  resource records in the answer section
//   4.1.4  name compression: read on input (pointers), written on output
//          (every answer's owner name points back at the question, 0xC00C)
//   3.3.9  MX RDATA, 3.3.14 TXT RDATA, 3.4.1 A; RFC 3596 2.2 AAAA
//
// Zone example:
//
//     startDnsServer({
//       'example.net': { MX: [[10, 'mx1.example.net'], [20, 'mx2.example.net']] },
//       'mx1.example.net': { A: ['127.0.0.2'], AAAA: ['::1'] },
//       'null.example': { MX: [[0, '']] },           // Null MX (RFC 7505)
//       'broken.example': 'SERVFAIL',                 // rcode 2 for every type
//       'gone.example': 'NXDOMAIN',                   // rcode 3 (also: any unknown name)
//       'slow.example': 'TIMEOUT',                    // no reply at all
//       'half.example': { A: ['127.0.0.3'], AAAA: 'SERVFAIL' },  // one type failing
//     })
//
// A name in the zone without the asked type gets NOERROR with no answers
// (NODATA, RFC 2308 2.2). The zone object is read on every query, so a test
// may change it while the server runs. Not implemented: TCP (answers here
// stay far below 512 bytes), EDNS, CNAME, authority and additional sections.

import { createSocket } from 'node:dgram';
import type { RemoteInfo } from 'node:dgram';
import { isIPv4, isIPv6 } from 'node:net';

/** What a whole name can do instead of answering. */
export type NameFailure = 'SERVFAIL' | 'NXDOMAIN' | 'TIMEOUT' | 'REFUSED';
/** What one record type of a name can do instead of answering. */
export type TypeFailure = 'SERVFAIL' | 'TIMEOUT';

export interface Records {
  A?: string[] | TypeFailure;
  AAAA?: string[] | TypeFailure;
  /** [preference, exchange]; exchange '' or '.' is the root (Null MX). */
  MX?: [number, string][] | TypeFailure;
  /** One entry per TXT record; a string[] is one record of several strings. */
  TXT?: (string | string[])[] | TypeFailure;
}

export type Zone = Record<string, Records | NameFailure>;

export interface LoggedQuery {
  name: string;
  type: string;
}

export interface DnsServer {
  port: number;
  /** Every question received, in order. */
  queries: LoggedQuery[];
  close(): Promise<void>;
}

const TYPE_CODES = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;
const TYPE_NAMES = new Map<number, keyof Records>(
  Object.entries(TYPE_CODES).map(([name, code]) => [code, name as keyof Records]),
);

// RFC 1035 4.1.1 RCODE values.
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

const TTL = 60;

export async function startDnsServer(zone: Zone): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const queries: LoggedQuery[] = [];

  socket.on('message', (packet: Buffer, peer: RemoteInfo) => {
    // A malformed packet must never bring the test process down.
    let reply: Buffer | null;
    try {
      reply = answer(packet, zone, queries);
    } catch {
      reply = packet.length >= 12 ? headerOnly(packet, RCODE.FORMERR) : null;
    }
    if (reply) socket.send(reply, peer.port, peer.address);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });

  return {
    port: socket.address().port,
    queries,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** The reply to one query packet, or null for "say nothing". */
function answer(packet: Buffer, zone: Zone, log: LoggedQuery[]): Buffer | null {
  if (packet.length < 12) return null; // not even a header: nothing to reply to
  const flags = packet.readUInt16BE(2);
  if (flags & 0x8000) return null; // QR set: a response, not a query
  const opcode = (flags >> 11) & 0x0f;
  if (opcode !== 0) return headerOnly(packet, RCODE.NOTIMP); // only standard QUERY
  if (packet.readUInt16BE(4) !== 1) return headerOnly(packet, RCODE.FORMERR); // one question, as every resolver sends

  const { name, end } = readName(packet, 12);
  if (end + 4 > packet.length) return headerOnly(packet, RCODE.FORMERR);
  const qtype = packet.readUInt16BE(end);
  // Echo the question byte for byte: resolvers match it against what they asked.
  const question = packet.subarray(12, end + 4);
  const typeName = TYPE_NAMES.get(qtype);
  log.push({ name, type: typeName ?? `TYPE${qtype}` });

  const entry = lookupName(zone, name);
  if (entry === undefined || entry === 'NXDOMAIN') return reply(packet, question, RCODE.NXDOMAIN, []);
  if (entry === 'TIMEOUT') return null;
  if (entry === 'SERVFAIL' || entry === 'REFUSED') return reply(packet, question, RCODE[entry], []);

  const data = typeName ? entry[typeName] : undefined;
  if (data === 'TIMEOUT') return null;
  if (data === 'SERVFAIL') return reply(packet, question, RCODE.SERVFAIL, []);
  if (!typeName || !data) return reply(packet, question, RCODE.NOERROR, []); // NODATA
  return reply(packet, question, RCODE.NOERROR, rdataFor(typeName, data));
}

// Zone keys are matched without regard to case or a trailing dot (RFC 1035 2.3.3).
function lookupName(zone: Zone, name: string): Records | NameFailure | undefined {
  const wanted = canonical(name);
  for (const [key, value] of Object.entries(zone)) {
    if (canonical(key) === wanted) return value;
  }
  return undefined;
}

function canonical(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/**
 * Read a domain name at `offset` (RFC 1035 4.1.4): a run of labels ending in
 * a zero byte, or ending in a two-byte pointer (top bits 11) to a name
 * earlier in the packet. Returns the dotted name and where the name ends in
 * the original position (after the first pointer, if any).
 */
export function readName(packet: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let position = offset;
  let end = -1; // set when we follow the first pointer
  let length = 0;
  for (;;) {
    if (position >= packet.length) throw new Error('name runs past the packet');
    const len = packet[position];
    if ((len & 0xc0) === 0xc0) {
      if (position + 1 >= packet.length) throw new Error('truncated pointer');
      const target = ((len & 0x3f) << 8) | packet[position + 1];
      // Pointers must go backwards: that alone rules out loops.
      if (target >= position) throw new Error('compression pointer does not point backwards');
      if (end < 0) end = position + 2;
      position = target;
      continue;
    }
    if ((len & 0xc0) !== 0) throw new Error('reserved label type'); // 01 and 10 are unused
    if (len === 0) {
      if (end < 0) end = position + 1;
      break;
    }
    if (position + 1 + len > packet.length) throw new Error('label runs past the packet');
    labels.push(packet.toString('latin1', position + 1, position + 1 + len));
    length += len + 1;
    if (length > 255) throw new Error('name longer than 255 octets'); // RFC 1035 2.3.4
    position += 1 + len;
  }
  return { name: labels.join('.'), end };
}

/** A name as labels, uncompressed; '' and '.' are the root (a single zero byte). */
function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of canonical(name).split('.').filter((l) => l !== '')) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length > 63) throw new Error(`label too long: ${label}`); // RFC 1035 2.3.4
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function rdataFor(type: keyof Records, data: NonNullable<Records[keyof Records]>): { type: number; rdata: Buffer }[] {
  const code = TYPE_CODES[type];
  switch (type) {
    case 'A':
      return (data as string[]).map((ip) => ({ type: code, rdata: ipv4Bytes(ip) }));
    case 'AAAA':
      return (data as string[]).map((ip) => ({ type: code, rdata: ipv6Bytes(ip) }));
    case 'MX':
      // RFC 1035 3.3.9: 16-bit PREFERENCE, then EXCHANGE as a domain name.
      return (data as [number, string][]).map(([preference, exchange]) => {
        const pref = Buffer.alloc(2);
        pref.writeUInt16BE(preference);
        return { type: code, rdata: Buffer.concat([pref, encodeName(exchange)]) };
      });
    case 'TXT':
      // RFC 1035 3.3.14: one or more <character-string>s, each a length byte
      // and up to 255 bytes; longer text is split across strings.
      return (data as (string | string[])[]).map((record) => {
        const strings = typeof record === 'string' ? [record] : record;
        const parts: Buffer[] = [];
        for (const text of strings) {
          const bytes = Buffer.from(text, 'utf8');
          for (let i = 0; i === 0 || i < bytes.length; i += 255) {
            const chunk = bytes.subarray(i, i + 255);
            parts.push(Buffer.from([chunk.length]), chunk);
          }
        }
        return { type: code, rdata: Buffer.concat(parts) };
      });
  }
}

function ipv4Bytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split('.').map(Number));
}

// Expands '::' and an embedded dotted quad ('::ffff:192.0.2.1').
function ipv6Bytes(ip: string): Buffer {
  if (!isIPv6(ip)) throw new Error(`not an IPv6 address: ${ip}`);
  const groups = (part: string): number[] =>
    part === ''
      ? []
      : part.split(':').flatMap((group) => {
          if (!group.includes('.')) return [parseInt(group, 16)];
          const [a, b, c, d] = ipv4Bytes(group);
          return [(a << 8) | b, (c << 8) | d];
        });
  const [head, tail] = ip.split('::');
  const front = groups(head);
  const back = tail === undefined ? [] : groups(tail);
  const all = [...front, ...Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  all.forEach((group, i) => out.writeUInt16BE(group, i * 2));
  return out;
}

/** A response: the query's header with QR, AA and RCODE set, the question, the answers. */
function reply(query: Buffer, question: Buffer, rcode: number, answers: { type: number; rdata: Buffer }[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // same ID
  header.writeUInt16BE(responseFlags(query, rcode), 2);
  header.writeUInt16BE(1, 4); // QDCOUNT
  header.writeUInt16BE(answers.length, 6); // ANCOUNT
  // NSCOUNT and ARCOUNT stay 0.
  const records = answers.map(({ type, rdata }) => {
    const fixed = Buffer.alloc(12);
    fixed.writeUInt16BE(0xc00c, 0); // owner name: pointer to the question's name at offset 12
    fixed.writeUInt16BE(type, 2);
    fixed.writeUInt16BE(1, 4); // CLASS IN
    fixed.writeUInt32BE(TTL, 6);
    fixed.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([fixed, rdata]);
  });
  return Buffer.concat([header, question, ...records]);
}

function headerOnly(query: Buffer, rcode: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(responseFlags(query, rcode), 2);
  return header;
}

// QR=1, the query's opcode and RD bit kept, AA=1 (we are the authority), RA=0.
function responseFlags(query: Buffer, rcode: number): number {
  const flags = query.readUInt16BE(2);
  return 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | (rcode & 0x0f);
}
