// Listening sockets, shared by every protocol: accept TCP connections, enforce
// the connection limits (connection-limits.ts) across all ports of one
// protocol, do the TLS handshake on the implicit-TLS ports, wrap each socket
// in a Connection and run the protocol's session on it, and shut down
// gracefully: stop accepting, interrupt sessions that wait for a command,
// give sessions in the middle of something a grace period, then close the rest.
//
// Two steps, so that no client byte is ever read by root (privileges.ts):
//  1. bindPorts(), possibly as root: plain TCP servers with pauseOnConnect.
//     The kernel completes the connections, but nothing reads from them;
//     they wait in a bounded queue.
//  2. startListeners(), as the unprivileged user: takes over the bound
//     ports (or binds them now, when nothing needs root, as in the tests)
//     and runs the waiting connections and every later one.
//
// Implicit TLS (RFC 8314: 465, 995) is done here on the accepted TCP socket,
// not by a tls.Server: a connection counts against the limits from its TCP
// accept, the handshake has its own deadline (limits.tlsHandshakeSeconds),
// and it uses the certificate current at that moment (SIGHUP reloads apply).
// A handshake that fails or stalls never becomes a session and frees its slot.

import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { Connection } from './connection.ts';
import { normaliseAddress } from './client-address.ts';
import { ConnectionLimits } from './connection-limits.ts';
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
  tlsHandshakeSeconds: number;
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
  /** Ports bound earlier by bindPorts() (as root); without it they are bound now. */
  bound?: BoundPorts;
  /** Clients held only to the total, not to maxConnectionsPerIp (auth.trustedClients; connection-limits.ts). */
  trustedClients?: readonly string[];
  /** Run one session to its end. */
  session(start: SessionStart): Promise<void>;
}

export interface Listeners {
  /** Bound ports by listener name. */
  ports: Record<string, number>;
  close(): Promise<void>;
}

/** Step 1: listening ports whose connections wait, unread, until startListeners() takes them. */
export interface BoundPorts {
  /** Bound ports by listener name. */
  ports: Record<string, number>;
  /** The server for `name` and the connections that arrived meanwhile; it stops queueing. */
  take(name: string): { server: Server; waiting: Socket[] };
  /** Close every port and drop what waits (start-up failed). */
  close(): Promise<void>;
}

/**
 * Bind every listener of `specs` (those with a port >= 0) on `host`.
 * Connections accepted before take() wait paused, at most
 * `limits.maxConnections` of them; more are closed at once.
 */
export async function bindPorts(
  specs: { name: string; port: number }[],
  host: string,
  limits: { maxConnections: number },
): Promise<BoundPorts> {
  const servers = new Map<string, Server>();
  const queues = new Map<string, { waiting: Socket[]; enqueue: (socket: Socket) => void }>();
  const ports: Record<string, number> = {};
  let waitingTotal = 0;

  const closeAll = async () => {
    for (const queue of queues.values()) for (const socket of queue.waiting.splice(0)) socket.destroy();
    await Promise.all([...servers.values()].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  };

  try {
    for (const spec of specs) {
      if (spec.port < 0) continue;
      // pauseOnConnect: the socket is not read from until someone resumes it.
      const server = createServer({ pauseOnConnect: true });
      const waiting: Socket[] = [];
      const enqueue = (socket: Socket) => {
        socket.on('error', () => {});
        if (waitingTotal >= limits.maxConnections) {
          socket.destroy();
          return;
        }
        waitingTotal++;
        waiting.push(socket);
      };
      server.on('connection', enqueue);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(spec.port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.set(spec.name, server);
      queues.set(spec.name, { waiting, enqueue });
      const address = server.address();
      ports[spec.name] = typeof address === 'object' && address ? address.port : spec.port;
    }
  } catch (err) {
    await closeAll();
    throw err;
  }

  return {
    ports,
    take(name) {
      const server = servers.get(name);
      const queue = queues.get(name);
      if (!server || !queue) throw new Error(`listener ${name} was not bound`);
      server.off('connection', queue.enqueue);
      const waiting = queue.waiting.splice(0);
      waitingTotal -= waiting.length;
      return { server, waiting };
    },
    close: closeAll,
  };
}

/** Step 2: serve `specs` with `options.session`, on the ports of options.bound or on ports bound now. */
export async function startListeners(specs: ListenSpec[], options: ListenerOptions): Promise<Listeners> {
  const { limits, log } = options;
  const counts = new ConnectionLimits(limits, options.trustedClients);
  const live = new Map<Connection, Promise<void>>();
  const handshaking = new Set<TLSSocket>();
  const servers: Server[] = [];
  const ports: Record<string, number> = {};
  let shuttingDown = false;

  function accept(socket: Socket, spec: ListenSpec): void {
    socket.on('error', () => {}); // errors end the session through 'close'
    const ip = normaliseAddress(socket.remoteAddress ?? 'unknown');
    const release = counts.admit(ip);
    if (!release || shuttingDown) {
      release?.();
      refuse(socket, spec, ip);
    } else if (spec.implicitTls && options.tls) {
      handshake(socket, spec, ip, release, options.tls);
    } else {
      startSession(socket, spec, release);
      socket.resume(); // the first client byte is read now (in main, after the drop)
    }
  }

  // Answer and close at once: a refused socket must not keep its file
  // descriptor, since under a flood descriptors are what runs out first.
  function refuse(socket: Socket, spec: ListenSpec, ip: string): void {
    log.child(options.component, newId()).event('refused', { reason: 'too-many-connections', ip });
    // A client expecting a TLS handshake could not read a clear-text reply.
    if (spec.implicitTls) {
      socket.destroy();
      return;
    }
    // A new socket's send buffer always has room for one line, so the
    // write finishes at once and destroySoon() closes right after it.
    socket.write(options.refusal);
    socket.destroySoon();
  }

  function handshake(socket: Socket, spec: ListenSpec, ip: string, release: () => void, credentials: TlsCredentials): void {
    const secure = new TLSSocket(socket, credentials.upgradeOptions()); // the certificate of this moment
    handshaking.add(secure);
    const settle = () => {
      clearTimeout(deadline);
      handshaking.delete(secure);
      secure.off('error', onFailure);
      secure.off('close', onFailure);
    };
    const onFailure = (err?: Error | boolean) => {
      settle();
      secure.destroy();
      release();
      // A client that simply went away (a port scanner) is not worth a line.
      if (err instanceof Error) {
        log.child(options.component, newId()).event('tls-handshake-failed', { ip, listener: spec.name, reason: err.message });
      }
    };
    const deadline = setTimeout(() => onFailure(new Error('timeout')), limits.tlsHandshakeSeconds * 1000);
    secure.once('error', onFailure);
    secure.once('close', onFailure);
    secure.once('secure', () => {
      settle();
      secure.on('error', () => {}); // from now on errors end the session through 'close'
      startSession(secure, spec, release);
    });
  }

  function startSession(socket: Socket, spec: ListenSpec, release: () => void): void {
    const id = newId();
    const sessionLog = log.child(options.component, id);
    socket.setNoDelay(true);
    const conn = new Connection(socket, {
      maxLineBytes: options.maxLineBytes,
      idleTimeoutMs: limits.idleTimeoutSeconds * 1000,
      sessionTimeoutMs: limits.sessionSeconds * 1000,
    });
    sessionLog.event('connect', { ip: conn.remoteAddress, port: conn.remotePort, listener: spec.name, tls: conn.isSecure || undefined });
    const done = options
      .session({ conn, spec, log: sessionLog, id, isShuttingDown: () => shuttingDown })
      .catch((err: Error) => {
        sessionLog.event('error', { error: err.message });
        conn.destroy();
      })
      .finally(() => {
        live.delete(conn);
        release();
      });
    live.set(conn, done);
  }

  const bound = options.bound ?? (await bindPorts(specs, options.host, limits));
  for (const spec of specs) {
    if (spec.port < 0) continue;
    if (spec.implicitTls && !options.tls) throw new Error(`listener ${spec.name} needs TLS credentials`);
    const { server, waiting } = bound.take(spec.name);
    server.on('connection', (socket: Socket) => accept(socket, spec));
    for (const socket of waiting) accept(socket, spec);
    ports[spec.name] = bound.ports[spec.name];
    servers.push(server);
  }

  async function close(): Promise<void> {
    shuttingDown = true;
    const stopped = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const socket of handshaking) socket.destroy();
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
