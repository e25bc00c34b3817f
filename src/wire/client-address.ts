// Client addresses as every protocol and limit sees them.
//
// - A dual-stack socket shows an IPv4 client as `::ffff:192.0.2.1`; we show
//   and count it as `192.0.2.1`.
// - Per-address limits (connections, login penalties) group IPv6 clients by
//   their /64 network: one home or one VPS gets a whole /64, so counting
//   single IPv6 addresses would let one machine pose as 2^64 clients.
//   (Postfix's anvil counts whole addresses; Dovecot and chasquid group by
//   network, which is what we do.)

import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is shown as `127.0.0.1`. */
export function normaliseAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** 127.0.0.0/8 and ::1. */
export function isLoopback(address: string): boolean {
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address);
}

/**
 * The key per-address limits count under: the address itself for IPv4,
 * the /64 network (`2001:db8:1:2::/64`) for IPv6.
 */
export function addressGroup(address: string): string {
  const ip = normaliseAddress(address);
  if (!isIPv6(ip)) return ip;
  return `${expandIPv6(ip).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, without leading zeros (`::1` -> 0,0,0,0,0,0,0,1). */
function expandIPv6(ip: string): string[] {
  const zone = ip.indexOf('%'); // fe80::1%eth0: the zone is not part of the address
  const bare = zone >= 0 ? ip.slice(0, zone) : ip;
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4 that was not normalised) is two groups.
  const last = right.length > 0 ? right : left;
  if (last.length > 0 && last[last.length - 1].includes('.')) {
    const [a, b, c, d] = last.pop()!.split('.').map(Number);
    last.push(((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array(missing).fill('0'), ...right].map((group) => Number.parseInt(group, 16).toString(16));
}

/**
 * Is `address` in one of these networks (`127.0.0.0/8`, `::1`, `192.0.2.7`)?
 * For rules such as Postfix's mynetworks: who may send as one of our
 * domains without logging in. A malformed entry matches nothing.
 */
export function inNetworks(address: string, networks: readonly string[]): boolean {
  const ip = normaliseAddress(address);
  const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : null;
  if (!family) return false;
  const list = new BlockList();
  for (const network of networks) {
    const [base, bits] = network.split('/');
    const type = isIPv4(base) ? 'ipv4' : isIPv6(base) ? 'ipv6' : null;
    if (!type) continue;
    const prefix = bits === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (type === 'ipv4' ? 32 : 128)) continue;
    list.addSubnet(base, prefix, type);
  }
  return list.check(ip, family);
}
