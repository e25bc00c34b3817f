// The POP3 listeners: the 110 role (plain, with STLS) and the 995 role
// (implicit TLS, RFC 8314). Accepting, connection limits and shutdown are in
// wire/listener.ts; each connection runs a Pop3Session.

import { startListeners } from '../wire/listener.ts';
import type { BoundPorts, Listeners } from '../wire/listener.ts';
import { Pop3Session } from './session.ts';
import type { Pop3Context } from './session.ts';

/**
 * RFC 2449 4 limits a command line to 255 octets; we allow 1024 so that a
 * long SASL response (a long password, base64-encoded) still fits.
 */
export const MAX_POP3_LINE = 1024;

export type Pop3ServerOptions = Omit<Pop3Context, 'isShuttingDown'> & {
  host: string;
  port: number;
  tlsPort: number;
  /** Ports bound earlier, as root (see privileges.ts); without it they are bound now. */
  bound?: BoundPorts;
};

export async function startPop3Server(options: Pop3ServerOptions): Promise<Listeners> {
  const { config } = options;
  return startListeners(
    [
      { name: 'pop3', port: options.port, implicitTls: false },
      { name: 'pop3s', port: options.tlsPort, implicitTls: true },
    ],
    {
      component: 'pop3',
      host: options.host,
      bound: options.bound,
      tls: options.tls,
      // RFC 1939 3: the idle timer must be at least 10 minutes.
      limits: { ...config.limits, idleTimeoutSeconds: config.limits.pop3IdleTimeoutSeconds },
      maxLineBytes: MAX_POP3_LINE,
      log: options.log,
      refusal: '-ERR [SYS/TEMP] Too many connections, try again later\r\n',
      session: ({ conn, log, isShuttingDown }) => new Pop3Session(conn, { ...options, log, isShuttingDown }).run(),
    },
  );
}
