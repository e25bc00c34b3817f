// Shared helpers for the TLS tests: scratch directories, loopback servers
// and clients, and a one-line round trip over a TLS socket.

import { after } from 'node:test';
import * as fs from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';

/** A fresh temporary directory, removed when the test file finishes. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `jjordan-${prefix}-`));
  after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Starts `server` on 127.0.0.1 with a free port, and stops it (dropping any
 * connections still open, which server.close() alone would wait for) when
 * the test ends.
 */
export async function listen(t: { after: (fn: () => Promise<void>) => void }, server: net.Server): Promise<number> {
  const open = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  });
  t.after(async () => {
    for (const socket of open) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

/**
 * A TLS server built the way the mail server does it (wire/listener.ts): a
 * plain TCP server whose accepted sockets are wrapped with the credentials'
 * context of that moment. Handshake errors go to `onError`.
 */
export function handshakeServer(
  credentials: { upgradeOptions(): tls.TLSSocketOptions },
  onError: (err: Error) => void = () => {},
): net.Server {
  return net.createServer((plain) => {
    plain.on('error', () => {});
    const secure = new tls.TLSSocket(plain, credentials.upgradeOptions());
    secure.once('error', onError);
    echo(secure);
  });
}

/** Echoes every byte back: enough to prove data flows both ways. */
export function echo(socket: tls.TLSSocket): void {
  socket.on('data', (chunk) => socket.write(chunk));
  socket.on('error', () => {}); // a client we destroy must not crash the test
}

/** Connects to 127.0.0.1:port; resolves once the handshake is verified. */
export function connect(port: number, options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...options });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends a line and waits for the echo. */
export function roundTrip(socket: tls.TLSSocket, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (chunk: Buffer) => {
      got += chunk.toString();
      if (got.endsWith('\n')) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(line + '\n');
  });
}

/** The SHA-256 fingerprint of the certificate the server presented. */
export function peerFingerprint(socket: tls.TLSSocket): string | undefined {
  return socket.getPeerX509Certificate()?.fingerprint256;
}
