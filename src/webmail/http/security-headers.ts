// The headers every webmail response carries, and the stricter ones of the
// responses that hold mail content.
//
// The webmail's own pages run no script at all: the Content-Security-Policy
// (CSP Level 3) allows only our stylesheet and images, forms that post back
// to us, and frames from us (the HTML mail view). Even if some text slipped
// through unescaped, a browser would not run it. frame-ancestors 'none' (and
// X-Frame-Options for older browsers) stops other sites from framing the
// webmail to trick clicks; Referrer-Policy keeps message URLs from leaking
// to the sites a link in a mail leads to; nosniff makes the browser believe
// our Content-Type; Cache-Control: no-store keeps mail out of shared caches
// and the back-button cache after logout.

import type { ServerResponse } from 'node:http';

const COMMON: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
};

/** The webmail's pages: no script, nothing from elsewhere, never framed. */
export const PAGE_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "form-action 'self'",
  "frame-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/**
 * An HTML mail, shown inside our page's iframe. `sandbox` (CSP 3 and the
 * iframe attribute both) gives it an opaque origin, no scripts, no forms,
 * no top navigation; inline styles are allowed because mail is styled that
 * way; images only when they are inside the message (data:, and its cid:
 * images as served by `inlineImages`, our own /message/inline address)
 * unless the reader asked for this message's remote images.
 */
export function mailFramePolicy(remoteImages: boolean, inlineImages: string | null = null): string {
  return [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `img-src data:${inlineImages ? ` ${inlineImages}` : ''}${remoteImages ? ' https: http:' : ''}`,
    "font-src 'none'",
    "frame-ancestors 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    'sandbox allow-popups allow-popups-to-escape-sandbox',
  ].join('; ');
}

/** Downloads: never rendered as a page of ours, whatever their type says. */
export const DOWNLOAD_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'";

/**
 * An inline image, requested by the mail's frame. That frame has an opaque
 * origin (sandbox), which is never "same-origin" nor "same-site" for
 * Cross-Origin-Resource-Policy (Fetch, CORP check), so these responses
 * alone say cross-origin. Other sites gain nothing: without the signed
 * link (http/image-links.ts) of a live session they get no image.
 */
export const INLINE_IMAGE_CORP = 'cross-origin';

export function setSecurityHeaders(res: ServerResponse, policy: string = PAGE_POLICY): void {
  for (const [name, value] of Object.entries(COMMON)) res.setHeader(name, value);
  res.setHeader('Content-Security-Policy', policy);
  res.setHeader('X-Frame-Options', policy.includes("frame-ancestors 'self'") ? 'SAMEORIGIN' : 'DENY');
}
