// Cross-site request forgery (OWASP's CSRF cheat sheet): another site must
// not be able to make a logged-in browser send mail, delete folders or log
// in to an account of the attacker's choosing. Three locks, each enough on
// its own in today's browsers:
//
// 1. The session cookie is SameSite=Strict (cookies.ts): a form another
//    site posts to us arrives without it.
// 2. Every form carries a token the other site cannot read: the session's
//    random token (synchroniser token); the login form, before there is a
//    session, an HMAC of a random nonce kept in a cookie (signed double
//    submit), so no state is kept for people who only look at the form.
// 3. Browsers say where a request comes from (Fetch Metadata's
//    Sec-Fetch-Site, and Origin): anything but our own origin is refused.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh random token, base64url (safe in cookies, URLs and forms). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** Compare without leaking, through timing, how much of a guess was right. */
export function tokensMatch(expected: string, given: string | null | undefined): boolean {
  if (typeof given !== 'string' || given.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(given));
}

/** The login form's token for `nonce`, signed with this process's secret. */
export class LoginTokens {
  readonly #secret = randomBytes(32);

  tokenFor(nonce: string): string {
    return createHmac('sha256', this.#secret).update(`login-form:${nonce}`).digest('base64url');
  }

  verify(nonce: string | undefined, given: string | null | undefined): boolean {
    return nonce !== undefined && nonce.length >= 16 && tokensMatch(this.tokenFor(nonce), given);
  }
}

/**
 * Lock 3: a request that says it comes from another site. Sec-Fetch-Site
 * decides when the browser sends it. Without it, Origin does; "null" says
 * nothing (our pages send no referrer, and under that policy a browser
 * posts our own forms with Origin: null). A browser too old to send either
 * still has locks 1 and 2.
 */
export function fromOtherSite(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site !== 'same-origin' && site !== 'none';
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return false;
  return origin !== `https://${req.headers.host ?? ''}`;
}
