// Cookies (RFC 6265): reading the Cookie header, writing Set-Cookie.
//
// The session cookie is `__Host-` prefixed (RFC 6265bis 4.1.3.2): a browser
// accepts it only with Secure, Path=/ and no Domain, so no other host of
// the domain can set or shadow it. HttpOnly keeps it from any script;
// SameSite=Strict keeps it off requests another site starts, the first
// wall against cross-site request forgery (csrf.ts is the second).

export const SESSION_COOKIE = '__Host-webmail';
/** The nonce of the login form's CSRF token (csrf.ts), before there is a session. */
export const LOGIN_COOKIE = '__Host-webmail-login';

/** name=value pairs of a Cookie header; the first of a repeated name wins. */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const name = pair.slice(0, eq).trim();
    if (!cookies.has(name)) cookies.set(name, pair.slice(eq + 1).trim());
  }
  return cookies;
}

/** A Set-Cookie value; `maxAgeSeconds` 0 deletes the cookie. Values are ours (base64url), never user text. */
export function cookie(name: string, value: string, maxAgeSeconds?: number): string {
  if (!/^[A-Za-z0-9_-]*$/.test(value)) throw new RangeError('cookie values are base64url');
  const age = maxAgeSeconds === undefined ? '' : `; Max-Age=${maxAgeSeconds}`;
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict${age}`;
}
