// Logging in and out. The login itself is the mail server's: the webmail
// opens an IMAP connection, says whose address it serves (ID, RFC 2971),
// and sends LOGIN with what the person typed. Only if the server says OK
// is a session made; the password then lives in that session's memory and
// nowhere else (sessions.ts).

import type { RequestContext } from '../app.ts';
import { LOGIN_COOKIE, SESSION_COOKIE, cookie } from '../http/cookies.ts';
import { randomToken } from '../http/csrf.ts';
import type { Reply } from '../http/reply.ts';
import { ImapCommandError, ImapConnectionError } from '../imap-client/connection.ts';
import { PoolBusyError } from '../imap-pool.ts';
import { loginPage } from '../pages/login.ts';
import type { Route } from './index.ts';

/** How long a login form stays valid. */
const LOGIN_FORM_SECONDS = 3600;
/** RFC 5321 4.5.3.1.1 local part plus domain; a password as long as anyone types. */
const MAX_USERNAME = 320;
const MAX_PASSWORD = 1024;

async function home(context: RequestContext): Promise<Reply> {
  return { kind: 'redirect', location: context.app.sessions.get(context.cookies.get(SESSION_COOKIE)) ? '/mail' : '/login' };
}

/** The form, with a fresh nonce in a cookie and its signature in the form (http/csrf.ts). */
function loginForm(context: RequestContext, status: number, extra: { username?: string; error?: string; notice?: string } = {}): Reply {
  const nonce = context.cookies.get(LOGIN_COOKIE) ?? randomToken(18);
  return {
    kind: 'page',
    status,
    cookies: [cookie(LOGIN_COOKIE, nonce, LOGIN_FORM_SECONDS)],
    body: loginPage({ csrfToken: context.app.loginTokens.tokenFor(nonce), ...extra }),
  };
}

async function showLogin(context: RequestContext): Promise<Reply> {
  if (context.app.sessions.get(context.cookies.get(SESSION_COOKIE))) return { kind: 'redirect', location: '/mail' };
  const notice = context.query.has('expired')
    ? 'Your session has ended. Please log in again.'
    : context.query.has('bye')
      ? 'You have logged out.'
      : undefined;
  return loginForm(context, 200, { notice });
}

async function logIn(context: RequestContext): Promise<Reply> {
  const { app, form } = context;
  const username = form.get('username')?.trim() ?? '';
  const password = form.get('password') ?? '';
  if (!username || !password || username.length > MAX_USERNAME || password.length > MAX_PASSWORD) {
    return loginForm(context, 400, { username: username.slice(0, MAX_USERNAME), error: 'Enter your user name and password.' });
  }
  try {
    const client = await app.pool.login(username, password, context.clientAddress);
    const session = app.sessions.create(username, password, context.clientAddress);
    app.pool.adopt(session, client);
    app.log.event('webmail-login', { user: username, ip: context.clientAddress });
    // A new id at login (no session fixation); the login nonce is spent.
    return { kind: 'redirect', location: '/mail', cookies: [cookie(SESSION_COOKIE, session.id), cookie(LOGIN_COOKIE, '', 0)] };
  } catch (err) {
    app.log.event('webmail-login-failed', { user: username, ip: context.clientAddress, error: (err as Error).message });
    if (err instanceof ImapCommandError && err.code === 'AUTHENTICATIONFAILED') {
      return loginForm(context, 401, { username, error: 'Wrong user name or password.' });
    }
    if (err instanceof ImapCommandError && err.code === 'UNAVAILABLE') {
      return loginForm(context, 503, { username, error: 'Too many attempts. Wait a little and try again.' });
    }
    if (err instanceof ImapConnectionError || err instanceof PoolBusyError) {
      return loginForm(context, 503, { username, error: 'The mail server cannot be reached right now. Try again in a moment.' });
    }
    if (err instanceof ImapCommandError) return loginForm(context, 401, { username, error: `The mail server refused: ${err.message}` });
    throw err;
  }
}

async function logOut(context: RequestContext): Promise<Reply> {
  context.app.sessions.end(context.session.id);
  return { kind: 'redirect', location: '/login?bye=1', cookies: [cookie(SESSION_COOKIE, '', 0)] };
}

export const AUTH_ROUTES: Route[] = [
  { method: 'GET', path: '/', access: 'public', handler: home },
  { method: 'GET', path: '/login', access: 'public', handler: showLogin },
  { method: 'POST', path: '/login', access: 'public', body: 'form', handler: logIn },
  { method: 'POST', path: '/logout', access: 'session', body: 'form', handler: logOut },
];
