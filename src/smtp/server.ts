// The SMTP listeners: accept TCP (or, on the implicit-TLS port, TLS)
// connections, enforce the connection limits (in total and per client IP,
// shared by all SMTP ports), start a Session for each, and shut down
// gracefully: stop accepting, let transactions in flight finish within a
// grace period, then close what is left.
//
// Three roles, as in Postfix's master.cf:
//   smtp        port 25:  mail from other servers; STARTTLS offered (RFC 3207)
//   submission  port 587: our users; STARTTLS, then AUTH before MAIL (RFC 6409)
//   smtps       port 465: our users over implicit TLS (RFC 8314 3.3)

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Connection, normaliseAddress } from '../wire/connection.ts';
import { newId } from '../log.ts';
import { Session } from './session.ts';
import type { SessionContext, Role } from './session.ts';
import { formatReply, reply } from './reply.ts';

/** RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
export const MAX_COMMAND_LINE = 512;

export interface ListenerSpec {
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

export type SmtpServerOptions = Omit<SessionContext, 'isShuttingDown' | 'role'> & {
  host: string;
  listeners: ListenerSpec[];
};

export async function startSmtpServer(options: SmtpServerOptions): Promise<SmtpServer> {
  const { config, log } = options;
  const live = new Map<Connection, Promise<void>>();
  const perIp = new Map<string, number>();
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  let shuttingDown = false;

  function accept(socket: Socket, role: Role): void {
    const ip = normaliseAddress(socket.remoteAddress ?? 'unknown');
    const id = newId();
    const sessionLog = log.child('smtp', id);
    socket.on('error', () => {}); // errors end the session through 'close'
    const fromIp = perIp.get(ip) ?? 0;
    if (live.size >= config.limits.maxConnections || fromIp >= config.limits.maxConnectionsPerIp) {
      // RFC 5321 3.8: 421 tells the client to come back later.
      sessionLog.event('refused', { reason: 'too-many-connections', ip });
      socket.end(formatReply(reply(421, '4.7.0', `${config.hostname} Too many connections, try again later`)));
      return;
    }
    perIp.set(ip, fromIp + 1);
    socket.setNoDelay(true);
    const conn = new Connection(socket, {
      maxLineBytes: MAX_COMMAND_LINE,
      idleTimeoutMs: config.limits.idleTimeoutSeconds * 1000,
    });
    sessionLog.event('connect', { ip, port: conn.remotePort, role, tls: conn.isSecure || undefined });
    const context: SessionContext = { ...options, role, log: sessionLog, isShuttingDown: () => shuttingDown };
    const done = new Session(conn, context, id)
      .run()
      .catch((err: Error) => {
        sessionLog.event('error', { error: err.message });
        conn.destroy();
      })
      .finally(() => {
        live.delete(conn);
        const left = (perIp.get(ip) ?? 1) - 1;
        if (left > 0) perIp.set(ip, left);
        else perIp.delete(ip);
      });
    live.set(conn, done);
  }

  for (const spec of options.listeners) {
    if (spec.port < 0) continue;
    let server: Server;
    if (spec.implicitTls) {
      if (!options.tls) throw new Error(`listener ${spec.name} needs TLS credentials`);
      // createServer follows certificate reloads (SIGHUP) for new handshakes.
      server = options.tls.createServer((socket) => accept(socket, spec.role));
      // A failed handshake never becomes a session; nothing to answer.
      server.on('tlsClientError', () => {});
    } else {
      server = createServer((socket) => accept(socket, spec.role));
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(spec.port, options.host, () => resolve());
    });
    const address = server.address();
    ports[spec.name] = typeof address === 'object' && address ? address.port : spec.port;
    servers.push(server);
  }

  async function close(): Promise<void> {
    shuttingDown = true;
    const stopped = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    // Sessions waiting for a command are told 421 now (a transaction not yet
    // at DATA is simply abandoned: the client will retry it); a session that is
    // reading or delivering a message finishes it, then is told 421.
    for (const conn of live.keys()) conn.interrupt();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, config.limits.shutdownGraceSeconds * 1000).unref());
    await Promise.race([Promise.all(live.values()), grace]);
    for (const conn of live.keys()) conn.destroy();
    await stopped;
  }

  return { ports, port: ports.smtp ?? Object.values(ports)[0], close };
}
