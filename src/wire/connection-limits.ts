// Connection limits, in total and per client: how many connections a
// protocol holds at once (limits.maxConnections) and how many of them may
// come from one client (limits.maxConnectionsPerIp).
//
// "One client" is an address group (client-address.ts): an IPv4 address, or
// an IPv6 /64, since one machine usually has a whole /64 to pick from.
//
// Clients in `exempt` (auth.trustedClients: the webmail, a proxy) count
// only toward the total: one address speaks for many users there, and
// the login throttle counts those users by the address each passes on
// (IMAP ID x-originating-ip). Postfix likewise exempts mynetworks from
// its per-client connection limit (smtpd_client_event_limit_exceptions).
//
// A connection counts from the moment its TCP connection is accepted until
// its release() is called: a TLS handshake in progress holds a slot like a
// session does, so clients that never finish a handshake cannot get round
// the limits.

import { addressGroup, inNetworks } from './client-address.ts';

export class ConnectionLimits {
  readonly #max: number;
  readonly #maxPerGroup: number;
  readonly #exempt: readonly string[];
  readonly #perGroup = new Map<string, number>();
  #total = 0;

  constructor(limits: { maxConnections: number; maxConnectionsPerIp: number }, exempt: readonly string[] = []) {
    this.#max = limits.maxConnections;
    this.#maxPerGroup = limits.maxConnectionsPerIp;
    this.#exempt = exempt;
  }

  /** Connections held now. */
  get count(): number {
    return this.#total;
  }

  /**
   * Count a new connection from `address`. Returns the function that gives
   * its slot back (calling it more than once is harmless), or null when a
   * limit is reached and the connection must be refused.
   */
  admit(address: string): (() => void) | null {
    const group = addressGroup(address);
    const fromGroup = this.#perGroup.get(group) ?? 0;
    const perGroupLimit = this.#exempt.length > 0 && inNetworks(address, this.#exempt) ? Infinity : this.#maxPerGroup;
    if (this.#total >= this.#max || fromGroup >= perGroupLimit) return null;
    this.#total++;
    this.#perGroup.set(group, fromGroup + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      const left = (this.#perGroup.get(group) ?? 1) - 1;
      if (left > 0) this.#perGroup.set(group, left);
      else this.#perGroup.delete(group);
    };
  }
}
