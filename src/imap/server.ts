// The IMAP listeners: the 143 role (plain, with STARTTLS) and the 993 role
// (implicit TLS, RFC 8314). Accepting, connection limits and shutdown are in
// wire/listener.ts; each connection runs an IMAP session (session.ts).

import { startListeners } from '../wire/listener.ts';
import type { BoundPorts, Listeners } from '../wire/listener.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Accounts } from '../auth/accounts.ts';
import type { LoginService } from '../auth/login.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import { runImapSession } from './session.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';

/**
 * RFC 7162 3 asks servers to accept command lines of at least 8192 octets
 * (long UID sets); literals are read apart from the line.
 */
export const MAX_IMAP_LINE = 16 * 1024;

export interface ImapServerOptions {
  config: Config;
  accounts: Accounts;
  dataDir: string;
  tmpDir: string;
  memory: MemoryBudget;
  tls: TlsCredentials | null;
  login: LoginService;
  log: Logger;
  host: string;
  port: number;
  tlsPort: number;
  /** Ports bound earlier, as root (see privileges.ts); without it they are bound now. */
  bound?: BoundPorts;
}

export async function startImapServer(options: ImapServerOptions): Promise<Listeners> {
  const { config, accounts, dataDir, tmpDir, memory, tls, login } = options;
  return startListeners(
    [
      { name: 'imap', port: options.port, implicitTls: false },
      { name: 'imaps', port: options.tlsPort, implicitTls: true },
    ],
    {
      component: 'imap',
      trustedClients: config.auth.trustedClients,
      host: options.host,
      bound: options.bound,
      tls,
      // RFC 3501 5.4: the autologout timer must be at least 30 minutes.
      limits: { ...config.limits, idleTimeoutSeconds: config.limits.imapIdleTimeoutSeconds, sessionSeconds: config.limits.imapSessionSeconds },
      maxLineBytes: MAX_IMAP_LINE,
      log: options.log,
      refusal: '* BYE [UNAVAILABLE] Too many connections, try again later\r\n',
      session: ({ conn, log, isShuttingDown }) =>
        runImapSession(conn, { config, accounts, dataDir, tmpDir, memory, tlsAvailable: tls !== null }, { maxErrors: config.limits.maxErrors, isShuttingDown, login, tls, log }),
    },
  );
}
