// Listening sockets, shared by every protocol: accept TCP connections (or TLS
// ones on the implicit-TLS ports), enforce the connection limits (in total
// and per client IP, across all ports of one protocol), wrap each socket in a
// Connection and run the protocol's session on it, and shut down gracefully:
// stop accepting, interrupt sessions that wait for a command, give sessions in
// the middle of something a grace period, then close what is left.

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { Connection, normaliseAddress } from './connection.ts';
import { newId } from '../queue/queue-id.ts';
import type { Logger } from '../log.ts';
import type { TlsCredentials } from '../tls/certificates.ts';

export interface ListenSpec {
  /** For logs and for `ports` below: 'smtp', 'submission', 'pop3s', ... */
  name: string;
  /** 0 picks a free port (tests); negative means this listener is off. */
  port: number;
  implicitTls: boolean;
}

export interface ListenerLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  idleTimeoutSeconds: number;
  /** The longest a whole session may last. */
  sessionSeconds: number;
  shutdownGraceSeconds: number;
}

export interface SessionStart {
  conn: Connection;
  spec: ListenSpec;
  log: Logger;
  id: string;
  isShuttingDown: () => boolean;
}

export interface ListenerOptions {
  /** Log component: 'smtp', 'pop3'. */
  component: string;
  host: string;
  tls: TlsCredentials | null;
  limits: ListenerLimits;
  maxLineBytes: number;
  log: Logger;
  /** What to send a client refused by the limits, before closing (e.g. "421 ..."). */
  refusal: string;
  /** Run one session to its end. */
  session(start: SessionStart): Promise<void>;
}

export interface Listeners {
  /** Bound ports by listener name. */
  ports: Record<string, number>;
  close(): Promise<void>;
}

export async function startListeners(specs: ListenSpec[], options: ListenerOptions): Promise<Listeners> {
  const { limits, log } = options;
  const live = new Map<Connection, Promise<void>>();
  const perIp = new Map<string, number>();
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  let shuttingDown = false;

  function accept(socket: Socket, spec: ListenSpec): void {
    const ip = normaliseAddress(socket.remoteAddress ?? 'unknown');
    const id = newId();
    const sessionLog = log.child(options.component, id);
    socket.on('error', () => {}); // errors end the session through 'close'
    const fromIp = perIp.get(ip) ?? 0;
    if (live.size >= limits.maxConnections || fromIp >= limits.maxConnectionsPerIp) {
      sessionLog.event('refused', { reason: 'too-many-connections', ip });
      socket.end(options.refusal);
      // A client that never closes its side must not keep the socket (and a file descriptor) alive.
      setTimeout(() => socket.destroy(), 5000).unref();
      return;
    }
    perIp.set(ip, fromIp + 1);
    socket.setNoDelay(true);
    const conn = new Connection(socket, {
      maxLineBytes: options.maxLineBytes,
      idleTimeoutMs: limits.idleTimeoutSeconds * 1000,
      sessionTimeoutMs: limits.sessionSeconds * 1000,
    });
    sessionLog.event('connect', { ip, port: conn.remotePort, listener: spec.name, tls: conn.isSecure || undefined });
    const done = options
      .session({ conn, spec, log: sessionLog, id, isShuttingDown: () => shuttingDown })
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

  for (const spec of specs) {
    if (spec.port < 0) continue;
    let server: Server;
    if (spec.implicitTls) {
      if (!options.tls) throw new Error(`listener ${spec.name} needs TLS credentials`);
      // createServer follows certificate reloads (SIGHUP) for new handshakes.
      server = options.tls.createServer((socket) => accept(socket, spec));
      server.on('tlsClientError', () => {}); // a failed handshake never becomes a session
    } else {
      server = createServer((socket) => accept(socket, spec));
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
    // Sessions waiting for a command are interrupted now (a transaction not
    // yet finished is abandoned: the client will retry it); a session that is
    // reading or delivering a message finishes it first.
    for (const conn of live.keys()) conn.interrupt();
    const grace = new Promise<void>((resolve) => setTimeout(resolve, limits.shutdownGraceSeconds * 1000).unref());
    await Promise.race([Promise.all(live.values()), grace]);
    for (const conn of live.keys()) conn.destroy();
    await stopped;
  }

  return { ports, close };
}
