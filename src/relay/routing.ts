// Where the recipients of a message go: grouped by domain, since each domain
// has its own servers (RFC 5321 5.1), and for each group the hosts to try in
// order - the smarthost, when there is one, or the domain's MX hosts (mx.ts).

import type { RecipientState } from '../queue/queue-state.ts';
import { routeFor } from './mx.ts';
import type { Route } from './mx.ts';
import type { RunnerDeps } from './runner-deps.ts';

/** One server to try: its name (for SNI, logs and bounces), its address and port. */
export interface NextHop {
  host: string;
  address: string;
  port: number;
}

/** Why a domain has no hosts to try: our verdict (no such domain, Null MX, no DNS answer). */
export type RouteVerdict = Exclude<Route, { kind: 'deliver' }>;

/** The pending recipients by lower-case domain; through a smarthost, all in one group (one session). */
export function groupByDomain(recipients: RecipientState[], viaSmarthost: boolean): Map<string, RecipientState[]> {
  const byDomain = new Map<string, RecipientState[]>();
  for (const recipient of recipients) {
    const domain = viaSmarthost ? '' : recipient.address.slice(recipient.address.lastIndexOf('@') + 1).toLowerCase();
    byDomain.set(domain, [...(byDomain.get(domain) ?? []), recipient]);
  }
  return byDomain;
}

/** The hosts to try for `domain`, in order, or the verdict that there are none. */
export async function nextHops(domain: string, deps: Pick<RunnerDeps, 'config' | 'resolver' | 'random'>): Promise<NextHop[] | RouteVerdict> {
  const { relay } = deps.config;
  if (relay.smarthost.host) return [{ host: relay.smarthost.host, address: relay.smarthost.host, port: relay.smarthost.port }];
  const route = await routeFor(domain, deps.resolver, { random: deps.random });
  if (route.kind !== 'deliver') return route;
  return route.destinations.map((d) => ({ host: d.host, address: d.address, port: relay.port }));
}
