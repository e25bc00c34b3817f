// The SMTP listeners. Three roles, as in Postfix's master.cf:
//   smtp        port 25:  mail from other servers; STARTTLS offered (RFC 3207), no AUTH
//   submission  port 587: our users; STARTTLS, then AUTH before MAIL (RFC 6409)
//   smtps       port 465: our users over implicit TLS (RFC 8314 3.3)
// Accepting, connection limits and shutdown are in wire/listener.ts; each
// connection runs an SMTP session (session.ts).

import { startListeners } from '../wire/listener.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Accounts } from '../auth/accounts.ts';
import type { LoginService } from '../auth/login.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import type { LocalDelivery } from './delivery.ts';
import type { MemoryBudget } from '../store/memory-budget.ts';
import { runSmtpSession } from './session.ts';
import type { Role } from './types.ts';
import type { BoundPorts } from '../wire/listener.ts';
import { formatReply, reply } from './reply.ts';

/** RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
export const MAX_COMMAND_LINE = 512;

export interface SmtpListenerSpec {
  name: string;
  /** 0 picks a free port (tests); negative means this listener is off. */
  port: number;
  role: Role;
  implicitTls: boolean;
}

export interface SmtpServer {
  /** Bound ports by listener name (useful with port 0 in tests). */
  ports: Record<string, number>;
  /** The inbound (port-25 role) port, the one most tests use. */
  port: number;
  /** Stop accepting, finish transactions within the grace period, close the rest. */
  close(): Promise<void>;
}

export interface SmtpServerOptions {
  config: Config;
  accounts: Accounts;
  delivery: LocalDelivery;
  tls: TlsCredentials | null;
  login: LoginService;
  /** Where large messages are spooled while they arrive. */
  tmpDir: string;
  /** Memory for messages in flight, shared by every session. */
  memory: MemoryBudget;
  log: Logger;
  host: string;
  listeners: SmtpListenerSpec[];
  /** Ports bound earlier, as root (see privileges.ts); without it they are bound now. */
  bound?: BoundPorts;
}

export async function startSmtpServer(options: SmtpServerOptions): Promise<SmtpServer> {
  const { config, accounts, delivery, tls, login, tmpDir, memory } = options;
  const roles = new Map(options.listeners.map((spec) => [spec.name, spec.role]));
  const listeners = await startListeners(options.listeners, {
    component: 'smtp',
    trustedClients: config.auth.trustedClients,
    host: options.host,
    bound: options.bound,
    tls,
    limits: config.limits,
    maxLineBytes: MAX_COMMAND_LINE,
    log: options.log,
    // RFC 5321 3.8: 421 tells the client to come back later.
    refusal: formatReply(reply(421, '4.7.0', `${config.hostname} Too many connections, try again later`)),
    session: ({ conn, spec, log, isShuttingDown }) =>
      runSmtpSession(
        conn,
        { config, role: roles.get(spec.name)!, tlsAvailable: tls !== null, accounts, delivery, tmpDir, memory },
        { maxErrors: config.limits.maxErrors, isShuttingDown, login, tls, log },
      ),
  });
  const { ports } = listeners;
  return { ports, port: ports.smtp ?? Object.values(ports)[0], close: listeners.close };
}
