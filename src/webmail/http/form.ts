// Reading a posted form (application/x-www-form-urlencoded, the HTML Living
// Standard's default form encoding): the whole body, up to a limit, as
// URLSearchParams. Large input (a message with attachments) comes as
// multipart/form-data instead (multipart.ts), streamed.

import type { IncomingMessage } from 'node:http';

/** The request was larger than its limit (413), or not a form at all (415). */
export class BodyError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export async function readForm(req: IncomingMessage, maxBytes: number): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new BodyError(415, 'expected a form');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new BodyError(413, 'form too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyError(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** The boundary of a multipart/form-data request (RFC 7578 4.1), or null. */
export function multipartBoundary(req: IncomingMessage): string | null {
  const header = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data\s*;/i.test(header)) return null;
  const match = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(header);
  return match ? (match[1] ?? match[2]) : null;
}
