// Where to deliver mail for a domain: the list of addresses to try, in order,
// or a verdict that the domain cannot receive mail (permanent) or cannot be
// looked up right now (temporary). The relay calls routeFor() once per
// destination domain per attempt and walks the list until a server answers.
//
// Follows:
//   RFC 5321 5.1    MX lookup, preference order, equal preferences shuffled,
//                   the implicit MX (no MX records: the domain's own address)
//   RFC 5321 4.1.3  address literals: [192.0.2.1] and [IPv6:2001:db8::1]
//   RFC 7505        Null MX: "this domain accepts no mail" (3, 4.2: 556 5.1.10;
//                   556 is RFC 7504's "domain does not accept mail")
//   RFC 3463        enhanced status codes for each verdict
//
// Decisions where the RFCs leave room (each explained where it is made):
//   - IPv4 addresses before IPv6 for each host;
//   - an MX name that is an IP address is used as that address (as Postfix does);
//   - at most 10 destinations (Postfix's smtp_mx_address_limit is 5);
//   - an MX host whose lookup fails for now is skipped; only when every host
//     fails is the whole route temporary.
//
// Not here: recognising that an MX is this server itself (mail loops), which
// needs our own addresses and belongs to the caller.

import { promises as dns } from 'node:dns';
import { isIP, isIPv4, isIPv6 } from 'node:net';

/** The lookups we need; a `dns.promises.Resolver` fits as it is. */
export interface MxResolver {
  resolveMx(domain: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(host: string): Promise<string[]>;
  resolve6(host: string): Promise<string[]>;
}

export interface Destination {
  /** The MX host name, or the address literal as written (`[192.0.2.1]`). */
  host: string;
  address: string;
  preference: number;
}

export type Route =
  | { kind: 'deliver'; destinations: Destination[] }
  /** `replyCode`: the SMTP reply this verdict stands for, where an RFC names one (556 for a Null MX). */
  | { kind: 'permanent'; status: string; reason: string; replyCode?: number }
  | { kind: 'temporary'; status: string; reason: string };

/**
 * The most destinations (addresses) routeFor() returns. Postfix's
 * smtp_mx_address_limit defaults to 5 (mail_params.h, DEF_SMTP_MXADDR_LIMIT),
 * with smtp_mx_session_limit = 2 actual connections. We keep 10 because
 * every dual-stack host now brings two addresses, and 5 would cover barely
 * two hosts; it still bounds the work a hostile zone with 100 MX records
 * could make us do.
 */
export const DEFAULT_MAX_DESTINATIONS = 10;

// Resolver error codes that mean "the DNS answered: there is no such thing".
// Everything else (ESERVFAIL, ETIMEOUT, ECONNREFUSED, EREFUSED, EBADRESP,
// ECANCELLED...) means "no answer yet" and must not bounce mail.
const NXDOMAIN = 'ENOTFOUND';
const NODATA = 'ENODATA';

export async function routeFor(
  domain: string,
  resolver: MxResolver,
  opts: { random?: () => number; maxHosts?: number } = {},
): Promise<Route> {
  const random = opts.random ?? Math.random;
  // maxHosts caps destinations (addresses), like Postfix's limit; hosts are
  // only looked up as far as they could fill it.
  const cap = Math.max(1, Math.floor(opts.maxHosts ?? DEFAULT_MAX_DESTINATIONS));

  const trimmed = domain.trim();
  if (trimmed.startsWith('[')) return literalRoute(trimmed);
  // DNS names are case-insensitive (RFC 1035 2.3.3); a trailing dot is the root.
  const name = trimmed.toLowerCase().replace(/\.$/, '');
  if (name === '') return permanent('5.1.3', 'empty destination domain');

  let records: { exchange: string; priority: number }[];
  try {
    records = await resolver.resolveMx(name);
  } catch (err) {
    const code = errorCode(err);
    // RFC 5321 5.1: no MX records at all -> the domain itself is the MX.
    if (code === NODATA) return implicitMx(name, resolver);
    if (code === NXDOMAIN) return permanent('5.1.2', `domain ${name} does not exist (NXDOMAIN)`);
    return temporary(`MX lookup for ${name} failed: ${code}`);
  }
  // Some resolvers report "no records" as an empty list rather than ENODATA.
  if (records.length === 0) return implicitMx(name, resolver);

  const mx = records.map((r) => ({ host: r.exchange.toLowerCase().replace(/\.$/, ''), preference: r.priority }));
  // RFC 7505 3: one MX record, preference 0, exchange the root. c-ares gives
  // the root as '' (our replace() turns '.' into '' too).
  if (mx.length === 1 && mx[0].preference === 0 && mx[0].host === '') {
    return nullMx(`domain ${name} accepts no mail (Null MX, RFC 7505)`);
  }
  // A root exchange mixed with real ones is a misconfiguration (RFC 7505 3
  // forbids it); the root is no host we can connect to, so drop it and use
  // the rest. If nothing is left, the domain's intent is still "no mail".
  const hosts = orderHosts(
    mx.filter((r) => r.host !== ''),
    random,
  );
  if (hosts.length === 0) return nullMx(`domain ${name} lists only the root as MX (no mail)`);

  // Each host gives at least one address when it resolves, so hosts past the
  // cap could only help if earlier ones fail; we accept that to bound the
  // number of queries. All hosts are looked up at once, so a slow one costs
  // one timeout, not one per host.
  const considered = hosts.slice(0, cap);
  const lookups = await Promise.all(considered.map((h) => addressesOf(h.host, resolver)));

  const destinations: Destination[] = [];
  const seen = new Set<string>();
  const problems: string[] = [];
  let anyTemporary = false;
  considered.forEach((h, i) => {
    const result = lookups[i];
    if (result.kind !== 'found') {
      // RFC 5321 5.1: skip an MX host without a usable address and go on.
      problems.push(`${h.host}: ${result.reason}`);
      anyTemporary ||= result.kind === 'temporary';
      return;
    }
    for (const address of result.addresses) {
      // Two MX names for one machine: connecting twice would not help.
      if (seen.has(address)) continue;
      seen.add(address);
      destinations.push({ host: h.host, address, preference: h.preference });
    }
  });

  if (destinations.length > 0) return { kind: 'deliver', destinations: destinations.slice(0, cap) };
  // RFC 5321 5.1: "If MX records are present, but none of them are usable
  // ... this situation MUST be reported as an error." Temporary if any host
  // might resolve later (a soft error wins, as in Postfix), else permanent.
  const why = `no MX host for ${name} has an address (${problems.join('; ')})`;
  return anyTemporary ? temporary(why) : permanent('5.4.4', why);
}

/**
 * A resolver for the relay: `servers` like ['192.0.2.53', '127.0.0.1:5353'],
 * or [] for the system's (/etc/resolv.conf). Two tries per server, so one
 * lost UDP packet is not a deferral.
 */
export function createResolver(servers: string[], timeoutMs = 5000): MxResolver {
  const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) resolver.setServers(servers);
  return resolver;
}

// RFC 5321 4.1.3 address literals: the mail goes to that address, no DNS.
function literalRoute(literal: string): Route {
  const inner = literal.endsWith(']') ? literal.slice(1, -1) : '';
  const ipv6 = /^ipv6:/i.exec(inner); // the tag is case-insensitive (RFC 5234 2.3)
  const address = ipv6 ? inner.slice(ipv6[0].length) : inner;
  const valid = ipv6 ? isIPv6(address) : isIPv4(address);
  if (!valid) return permanent('5.1.3', `unusable address literal ${literal}`);
  return { kind: 'deliver', destinations: [{ host: literal, address, preference: 0 }] };
}

// RFC 5321 5.1: "treated as if it was associated with an implicit MX RR, with
// a preference of 0, pointing to that host".
async function implicitMx(name: string, resolver: MxResolver): Promise<Route> {
  const result = await addressesOf(name, resolver);
  if (result.kind === 'found') {
    return {
      kind: 'deliver',
      destinations: result.addresses.map((address) => ({ host: name, address, preference: 0 })),
    };
  }
  const why = `${name} has no MX record and no address: ${result.reason}`;
  return result.kind === 'temporary' ? temporary(why) : permanent('5.4.4', why);
}

/**
 * Sort by preference (lowest first, RFC 5321 5.1) and shuffle each run of
 * equal preference, so load spreads across equal servers as the domain
 * intends. A host listed twice keeps its best preference.
 */
function orderHosts(records: { host: string; preference: number }[], random: () => number) {
  const best = new Map<string, number>();
  for (const r of records) best.set(r.host, Math.min(r.preference, best.get(r.host) ?? Infinity));
  const sorted = [...best].map(([host, preference]) => ({ host, preference }));
  sorted.sort((a, b) => a.preference - b.preference); // stable: ties keep DNS order
  for (let start = 0; start < sorted.length; ) {
    let end = start;
    while (end < sorted.length && sorted[end].preference === sorted[start].preference) end++;
    shuffle(sorted, start, end, random);
    start = end;
  }
  return sorted;
}

/** Fisher-Yates over items[start, end). random() in [0, 1) picks each swap. */
function shuffle<T>(items: T[], start: number, end: number, random: () => number): void {
  for (let i = end - 1; i > start; i--) {
    const j = start + Math.floor(random() * (i - start + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
}

type Lookup =
  | { kind: 'found'; addresses: string[] }
  | { kind: 'none'; reason: string } // the DNS says: no address
  | { kind: 'temporary'; reason: string }; // no answer for now

/**
 * A host's addresses: IPv4 first, then IPv6, each family in the order the
 * DNS gave. Why IPv4 first: many hosts (containers, CI runners, home links)
 * have IPv6 configured but no IPv6 route, and every message would wait out a
 * connect timeout; and large receivers are stricter with IPv6 senders (PTR,
 * SPF/DKIM). Postfix's default (smtp_address_preference = any) is random.
 */
async function addressesOf(host: string, resolver: MxResolver): Promise<Lookup> {
  // An MX exchange that is an IP address breaks RFC 5321 5.1 ("MUST NOT be
  // a literal address"), but it is a common mistake. Postfix logs "numeric
  // domain name in resource data of MX record" and then connects to that
  // address (smtp_addr.c: "Interpret a numerical name as an address"). We do
  // the same: refusing would bounce mail the domain clearly wants delivered.
  if (isIP(host)) return { kind: 'found', addresses: [host] };

  const [v4, v6] = await Promise.all([
    lookup(() => resolver.resolve4(host)),
    lookup(() => resolver.resolve6(host)),
  ]);
  const addresses = [...(v4.kind === 'found' ? v4.addresses : []), ...(v6.kind === 'found' ? v6.addresses : [])];
  if (addresses.length > 0) return { kind: 'found', addresses };
  const reason = `A: ${v4.kind === 'found' ? 'none' : v4.reason}, AAAA: ${v6.kind === 'found' ? 'none' : v6.reason}`;
  // One family failing for now is enough to hope: the address may be there.
  if (v4.kind === 'temporary' || v6.kind === 'temporary') return { kind: 'temporary', reason };
  return { kind: 'none', reason };
}

async function lookup(query: () => Promise<string[]>): Promise<Lookup> {
  try {
    const addresses = await query();
    return addresses.length > 0 ? { kind: 'found', addresses } : { kind: 'none', reason: 'no records' };
  } catch (err) {
    const code = errorCode(err);
    if (code === NXDOMAIN || code === NODATA) return { kind: 'none', reason: code };
    return { kind: 'temporary', reason: code };
  }
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return String(err);
}

function permanent(status: string, reason: string): Route {
  return { kind: 'permanent', status, reason };
}

// RFC 3463 4.4.3: "Directory server failure" - the DNS did not answer.
// RFC 7505 4.2 and its registration of X.1.10 ("Recipient address has null
// MX"): report it as 556 5.1.10, 556 being RFC 7504's "domain does not accept mail".
function nullMx(reason: string): Route {
  return { kind: 'permanent', status: '5.1.10', reason, replyCode: 556 };
}

function temporary(reason: string): Route {
  return { kind: 'temporary', status: '4.4.3', reason };
}
