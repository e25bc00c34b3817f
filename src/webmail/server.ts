// The webmail's HTTPS listener, on node:http alone: TCP connections are
// accepted on a port bound earlier (wire/listener.ts bindPorts, so root can
// bind 443 and drop before any byte is read), counted against connection
// limits, given a TLS handshake with the certificate current at that
// moment (a SIGHUP reload applies to the next connection, as in the mail
// server), and only then handed to an http.Server, which parses HTTP/1.1
// and calls the application (app.ts) once per request.

import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from '../log.ts';
import type { TlsCredentials } from '../tls/certificates.ts';
import { normaliseAddress } from '../wire/client-address.ts';
import { ConnectionLimits } from '../wire/connection-limits.ts';
import { bindPorts } from '../wire/listener.ts';
import type { BoundPorts } from '../wire/listener.ts';
import type { Webmail } from './app.ts';

export interface WebmailListenerOptions {
  app: Webmail;
  credentials: TlsCredentials;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The port bound earlier (as root), named 'https'. */
  bound?: BoundPorts;
  limits: { maxConnections: number; maxConnectionsPerIp: number; tlsHandshakeSeconds: number };
  log: Logger;
}

export interface RunningWebmail {
  port: number;
  close(): Promise<void>;
}

/** A request (its upload included) must be complete within this; 25 MB at 50 KB/s fits. */
const REQUEST_TIMEOUT_MS = 10 * 60_000;
const HEADERS_TIMEOUT_MS = 30_000;

export async function startWebmailListener(options: WebmailListenerOptions): Promise<RunningWebmail> {
  const { app, credentials, log } = options;
  const bound = options.bound ?? (await bindPorts([{ name: 'https', port: options.port }], options.host, options.limits));
  const { server: tcp, waiting } = bound.take('https');
  const http = createServer(
    { requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, keepAliveTimeout: 5000, maxHeaderSize: 16 * 1024 },
    (req, res) => void app.handle(req, res),
  );
  // A browser opens up to six connections to a site; leave room for two tabs.
  const limits = new ConnectionLimits({ maxConnections: options.limits.maxConnections, maxConnectionsPerIp: options.limits.maxConnectionsPerIp * 2 });

  const open = new Set<Socket>();
  const accept = (socket: Socket) => {
    socket.on('error', () => {});
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    const release = limits.admit(normaliseAddress(socket.remoteAddress ?? ''));
    if (!release) {
      socket.destroy();
      return;
    }
    const secure = new TLSSocket(socket, credentials.upgradeOptions());
    secure.on('error', () => {});
    secure.once('close', release);
    const stalled = setTimeout(() => secure.destroy(), options.limits.tlsHandshakeSeconds * 1000);
    secure.once('secure', () => {
      clearTimeout(stalled);
      http.emit('connection', secure);
    });
    secure.once('close', () => clearTimeout(stalled));
    socket.resume();
  };
  tcp.on('connection', accept);
  for (const socket of waiting) accept(socket);
  const address = tcp.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  log.event('listening', { service: 'webmail', address: options.host, port });

  return {
    port,
    async close() {
      tcp.off('connection', accept);
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      http.closeAllConnections();
      for (const socket of open) socket.destroy(); // handshakes in progress too
      await closed;
      app.close();
    },
  };
}
