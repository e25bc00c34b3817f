// How the relay uses TLS with the next hop: the `tls`, `verifyCertificate`
// and `ca` fields of each delivery request (smtp-client.ts carries them out).

import type { Config } from '../config.ts';
import type { DeliveryRequest } from './smtp-client.ts';

/**
 * A smarthost gets our password, so its certificate is verified unless the
 * config says otherwise (RFC 8314 4.1; Postfix's "secure" level). An MX gets
 * opportunistic TLS (RFC 7435), or, with relay.verifyCertificates, mandatory
 * TLS with a verified certificate (Postfix's "verify" level: verifying is
 * pointless if a missing STARTTLS is accepted instead).
 */
export function tlsPolicy(relay: Config['relay'], ca: Buffer | undefined): Pick<DeliveryRequest, 'tls' | 'verifyCertificate' | 'ca'> {
  if (relay.smarthost.host !== '') {
    return { tls: relay.smarthost.tls === 'implicit' ? 'implicit' : 'required', verifyCertificate: relay.smarthost.verifyCertificate, ca };
  }
  const verify = relay.verifyCertificates;
  return { tls: relay.requireTls || verify ? 'required' : 'opportunistic', verifyCertificate: verify, ca };
}
