// How a TLS connection is named in Received: fields and in the logs, the
// same for the server's sessions and the relay's client:
// `TLSv1.3 TLS_AES_256_GCM_SHA384`, or '' for a connection in clear.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

export function describeTls(socket: Socket): string {
  if (!(socket instanceof TLSSocket)) return '';
  return `${socket.getProtocol() ?? ''} ${socket.getCipher()?.name ?? ''}`.trim();
}
