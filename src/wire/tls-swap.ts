// The STARTTLS swap (RFC 3207, RFC 2595, RFC 3501 6.2.1): a connection that
// began in clear goes on over TLS on the same TCP socket. connection.ts
// decides when (after the "go ahead" reply, with the unread clear bytes
// thrown away); this file does the socket work: stop listening to the clear
// socket, wrap it, and wait for the handshake with a deadline.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** The events connection.ts listens to; the clear socket must give none of them to it once wrapped. */
const SOCKET_EVENTS = ['data', 'end', 'close', 'error', 'drain'];

/**
 * Wrap `plain` in TLS with `wrap` and hand the TLS socket to `listen`, who
 * reads from it from now on. The clear socket's listeners are removed first:
 * its bytes are the TLS records now, not the client's text.
 */
export function swapToTls(plain: Socket, wrap: (plain: Socket) => TLSSocket, listen: (secure: TLSSocket) => void): TLSSocket {
  for (const event of SOCKET_EVENTS) plain.removeAllListeners(event);
  plain.on('error', () => {}); // the TLS socket reports errors from now on
  const secure = wrap(plain);
  listen(secure);
  // Paused for back-pressure while in clear: the handshake needs its bytes.
  if (plain.isPaused()) plain.resume();
  return secure;
}

/**
 * Resolves null once the handshake is done (`doneEvent`: 'secure' on the
 * server's side, 'secureConnect' on the client's); the reason, with the
 * socket closed, if it failed or did not finish within `timeoutMs`.
 */
export function handshakeDone(secure: TLSSocket, doneEvent: 'secure' | 'secureConnect', timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    // A peer that starts the handshake and stalls must not hold the slot forever.
    const stalled = setTimeout(() => secure.destroy(new Error('TLS handshake timed out')), timeoutMs);
    const finish = (error: string | null) => {
      clearTimeout(stalled);
      if (error !== null) secure.destroy();
      resolve(error);
    };
    secure.once(doneEvent, () => finish(null));
    secure.once('error', (err) => finish(err.message));
    secure.once('close', () => finish('connection closed during the TLS handshake'));
  });
}
