// What a route handler returns, and the one function that writes it to the
// browser with the right headers. Handlers never touch the response
// object, so each is a function from a request to a Reply, testable alone;
// and no response can leave without its security headers.

import type { ServerResponse } from 'node:http';
import { DOWNLOAD_POLICY, INLINE_IMAGE_CORP, mailFramePolicy, setSecurityHeaders } from './security-headers.ts';
import type { Html } from './html.ts';

export type Reply =
  /** A page of the webmail. */
  | { kind: 'page'; status?: number; body: Html; cookies?: string[] }
  /** 303 See Other after a POST (the Post/Redirect/Get pattern): reloading does not post again. */
  | { kind: 'redirect'; location: string; cookies?: string[] }
  /** A file to save (an attachment). */
  | { kind: 'download'; contentType: string; filename: string; size?: number; body: AsyncIterable<Buffer> }
  /** An image of a mail, shown in its frame; only raster types (mail/inline-images.ts). */
  | { kind: 'inline-image'; contentType: string; body: AsyncIterable<Buffer> }
  /** An HTML mail for the sandboxed frame (security-headers.ts mailFramePolicy); `inlineImages`: where its cid: images are. */
  | { kind: 'mail-frame'; body: string; remoteImages: boolean; inlineImages: string | null }
  /** Our own static files and documents (the stylesheet, autoconfig XML). */
  | { kind: 'static'; status?: number; contentType: string; body: string | Buffer; cacheSeconds?: number };

export async function sendReply(res: ServerResponse, reply: Reply): Promise<void> {
  switch (reply.kind) {
    case 'page':
      setSecurityHeaders(res);
      if (reply.cookies) res.setHeader('Set-Cookie', reply.cookies);
      res.writeHead(reply.status ?? 200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html>\n${reply.body.text}`);
      return;
    case 'redirect':
      setSecurityHeaders(res);
      if (reply.cookies) res.setHeader('Set-Cookie', reply.cookies);
      res.writeHead(303, { Location: reply.location, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('See Other\n');
      return;
    case 'mail-frame':
      setSecurityHeaders(res, mailFramePolicy(reply.remoteImages, reply.inlineImages));
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(reply.body);
      return;
    case 'static':
      setSecurityHeaders(res);
      if (reply.cacheSeconds) res.setHeader('Cache-Control', `max-age=${reply.cacheSeconds}`);
      res.writeHead(reply.status ?? 200, { 'Content-Type': reply.contentType });
      res.end(reply.body);
      return;
    case 'download':
      setSecurityHeaders(res, DOWNLOAD_POLICY);
      res.writeHead(200, {
        'Content-Type': safeContentType(reply.contentType),
        'Content-Disposition': attachmentDisposition(reply.filename),
        ...(reply.size !== undefined ? { 'Content-Length': reply.size } : {}),
      });
      return streamBody(res, reply.body);
    case 'inline-image':
      // nosniff (set for every reply) keeps the browser to the raster type we name.
      setSecurityHeaders(res, DOWNLOAD_POLICY);
      res.setHeader('Cross-Origin-Resource-Policy', INLINE_IMAGE_CORP);
      res.writeHead(200, { 'Content-Type': reply.contentType, 'Content-Disposition': 'inline' });
      return streamBody(res, reply.body);
  }
}

async function streamBody(res: ServerResponse, body: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) {
    if (res.destroyed) return; // the browser went away: stop fetching from IMAP (the generator is closed)
    if (!res.write(chunk)) await new Promise<void>((resolve) => res.once('drain', resolve).once('close', resolve));
  }
  res.end();
}

/** A media type from a message, as a header value: `type/subtype` in token characters, or a safe default. */
export function safeContentType(type: string): string {
  return /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(type) ? type.toLowerCase() : 'application/octet-stream';
}

/**
 * Content-Disposition: attachment with the file's name (RFC 6266 4.3):
 * `filename*` carries it in UTF-8 (RFC 8187), `filename` an ASCII stand-in
 * for old clients. Path separators and control characters never survive.
 */
export function attachmentDisposition(filename: string): string {
  const clean = filename.replace(/[\x00-\x1f\x7f/\\]/g, '_').trim() || 'attachment';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_').replace(/["%;]/g, '_');
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
