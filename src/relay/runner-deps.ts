// What the queue runner works with, given from outside: the config, the DNS
// resolver, the SMTP client, local delivery for bounces, the log, DKIM keys,
// and a clock and a random source that tests replace. relayDeps() in main.ts
// builds the real ones; the runner's pieces (routing, delivery-attempt,
// attempt-end, bounces) each take the part they need.

import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MxResolver } from './mx.ts';
import type { DeliveryOutcome, DeliveryRequest } from './smtp-client.ts';
import type { DkimKey } from './dkim.ts';

export interface RunnerDeps {
  dataDir: string;
  config: Config;
  resolver: MxResolver;
  deliver: (request: DeliveryRequest) => Promise<DeliveryOutcome>;
  /** Deliver a notice into a local sender's mbox; false when the address is not local. */
  deliverLocally: (address: string, message: Buffer) => Promise<boolean>;
  log: Logger;
  /** DKIM keys by signing domain, lower case (relay.dkim.keys). */
  dkimKeys: Map<string, DkimKey>;
  /** CA certificates trusted instead of the system's (relay.caFile), PEM. */
  tlsCa?: Buffer;
  now?: () => Date;
  random?: () => number;
}

/** The runner's clock: the test's, or the real one. */
export function nowOf(deps: Pick<RunnerDeps, 'now'>): Date {
  return deps.now ? deps.now() : new Date();
}
