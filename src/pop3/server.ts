// The POP3 listeners: the 110 role (plain, with STLS) and the 995 role
// (implicit TLS, RFC 8314). Accepting, connection limits and shutdown are in
// wire/listener.ts; each connection runs a POP3 session (session.ts).

import { startListeners } from '../wire/listener.ts';
import type { BoundPorts, Listeners } from '../wire/listener.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { LoginService } from '../auth/login.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import { runPop3Session } from './session.ts';

/**
 * RFC 2449 4 limits a command line to 255 octets; we allow 1024 so that a
 * long SASL response (a long password, base64-encoded) still fits.
 */
export const MAX_POP3_LINE = 1024;

export interface Pop3ServerOptions {
  config: Config;
  dataDir: string;
  tls: TlsCredentials | null;
  login: LoginService;
  log: Logger;
  host: string;
  port: number;
  tlsPort: number;
  /** Ports bound earlier, as root (see privileges.ts); without it they are bound now. */
  bound?: BoundPorts;
}

export async function startPop3Server(options: Pop3ServerOptions): Promise<Listeners> {
  const { config, dataDir, tls, login } = options;
  return startListeners(
    [
      { name: 'pop3', port: options.port, implicitTls: false },
      { name: 'pop3s', port: options.tlsPort, implicitTls: true },
    ],
    {
      component: 'pop3',
      trustedClients: config.auth.trustedClients,
      host: options.host,
      bound: options.bound,
      tls,
      // RFC 1939 3: the idle timer must be at least 10 minutes.
      limits: { ...config.limits, idleTimeoutSeconds: config.limits.pop3IdleTimeoutSeconds },
      maxLineBytes: MAX_POP3_LINE,
      log: options.log,
      refusal: '-ERR [SYS/TEMP] Too many connections, try again later\r\n',
      session: ({ conn, log, isShuttingDown }) =>
        runPop3Session(conn, { config, dataDir, tlsAvailable: tls !== null }, { maxErrors: config.limits.maxErrors, isShuttingDown, login, tls, log }),
    },
  );
}
