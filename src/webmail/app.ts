// The webmail application: one request in, one reply out. It finds the
// route (routes/), checks what the route needs before the handler runs, and
// turns every failure into a page:
//
//   1. the route table        method and path; anything else is 404
//   2. the session            routes marked `session` need a live one (else: to the login page)
//   3. the request's origin   a POST from another site is refused (http/csrf.ts, lock 3)
//   4. the form and its token a POST's form is read (with a limit) and its CSRF token checked
//   5. the handler            returns a Reply; http/reply.ts writes it, security headers and all
//
// Multipart posts (compose) are read by their handler as they stream, with
// the token checked on the form's first field (routes/compose.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { normaliseAddress } from '../wire/client-address.ts';
import { SESSION_COOKIE, LOGIN_COOKIE, cookie, parseCookies } from './http/cookies.ts';
import { LoginTokens, fromOtherSite, tokensMatch } from './http/csrf.ts';
import { BodyError, readForm } from './http/form.ts';
import { sendReply } from './http/reply.ts';
import type { Reply } from './http/reply.ts';
import { ImapCommandError, ImapConnectionError } from './imap-client/connection.ts';
import type { Trace } from './imap-client/connection.ts';
import { ImapPool, PoolBusyError } from './imap-pool.ts';
import { SessionStore } from './sessions.ts';
import type { Session } from './sessions.ts';
import type { WebmailSettings } from './settings.ts';
import { errorPage } from './pages/error.ts';
import { ROUTES } from './routes/index.ts';

/** What a handler gets. */
export interface RequestContext {
  app: Webmail;
  req: IncomingMessage;
  url: URL;
  query: URLSearchParams;
  cookies: Map<string, string>;
  /** The browser's address. */
  clientAddress: string;
  /** Set on routes that need a session. */
  session: Session;
  /** A posted urlencoded form, its CSRF token already checked. */
  form: URLSearchParams;
}

/** Forms without files: a long message text fits, anything larger is a mistake or an attack. */
const MAX_FORM_BYTES = 2 * 1024 * 1024;

export interface WebmailOptions {
  config: Config;
  settings: WebmailSettings;
  log: Logger;
  /** The clock, for sessions and connections (tests move it forward). */
  now?: () => number;
}

export class Webmail {
  readonly config: Config;
  readonly settings: WebmailSettings;
  readonly log: Logger;
  readonly sessions: SessionStore;
  readonly pool: ImapPool;
  readonly loginTokens = new LoginTokens();
  readonly #timer: NodeJS.Timeout;

  constructor(options: WebmailOptions) {
    this.config = options.config;
    this.settings = options.settings;
    this.log = options.log;
    const trace: Trace | undefined = options.log.tracing ? (direction, line) => options.log.trace(direction, line) : undefined;
    this.pool = new ImapPool({
      server: options.settings.imap,
      maxConnections: options.settings.maxImapConnections,
      idleMs: options.settings.imapIdleMs,
      now: options.now,
      trace,
    });
    this.sessions = new SessionStore({
      idleMs: options.settings.sessionIdleMs,
      maxAgeMs: options.settings.sessionMaxAgeMs,
      maxSessions: options.settings.maxSessions,
      now: options.now,
      onEnd: (session) => this.pool.release(session),
    });
    // Expired sessions lose their password and connection within a minute, not at their next request.
    this.#timer = setInterval(() => {
      this.sessions.sweep();
      this.pool.closeIdle();
    }, 30_000);
    this.#timer.unref();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.#dispatch(req);
    } catch (err) {
      reply = this.#failure(err);
    }
    try {
      await sendReply(res, reply);
    } catch (err) {
      // Headers may be out already (a download broke off): all we can do is drop the connection.
      this.log.event('webmail-reply-failed', { error: (err as Error).message });
      res.destroy();
    }
  }

  async #dispatch(req: IncomingMessage): Promise<Reply> {
    const url = new URL(req.url ?? '/', 'https://webmail.invalid');
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const route = ROUTES.find((r) => r.path === url.pathname && r.method === method);
    if (!route) {
      const known = ROUTES.some((r) => r.path === url.pathname);
      return errorPage(known ? 405 : 404, known ? 'This address does not take that method.' : 'There is no such page.');
    }
    const cookies = parseCookies(req.headers.cookie);
    let session: Session | null = null;
    if (route.access === 'session') {
      session = this.sessions.get(cookies.get(SESSION_COOKIE));
      // No session (never logged in, logged out, or expired): log in first. A
      // cookie that names no session means this browser's session ended.
      if (!session) {
        if (!cookies.has(SESSION_COOKIE)) return { kind: 'redirect', location: '/login' };
        return { kind: 'redirect', location: '/login?expired=1', cookies: [cookie(SESSION_COOKIE, '', 0)] };
      }
    }
    let form = new URLSearchParams();
    if (method === 'POST') {
      if (fromOtherSite(req)) return errorPage(403, 'This form was sent from another site.');
      if (route.body === 'form') {
        form = await readForm(req, MAX_FORM_BYTES);
        const given = form.get('_csrf');
        const valid = session ? tokensMatch(session.csrfToken, given) : this.loginTokens.verify(cookies.get(LOGIN_COOKIE), given);
        if (!valid) return errorPage(403, 'This form has expired. Go back, reload the page and try again.');
      }
    }
    const context: RequestContext = {
      app: this,
      req,
      url,
      query: url.searchParams,
      cookies,
      clientAddress: normaliseAddress(req.socket.remoteAddress ?? ''),
      // Public routes never look at it; the type keeps handlers of session routes simple.
      session: session as Session,
      form,
    };
    return route.handler(context);
  }

  #failure(err: unknown): Reply {
    if (err instanceof BodyError) return errorPage(err.status, err.message);
    if (err instanceof PoolBusyError) return errorPage(503, 'The webmail is busy. Try again in a moment.');
    if (err instanceof ImapConnectionError) {
      this.log.event('webmail-imap-failed', { error: err.message });
      return errorPage(502, 'The mail server cannot be reached right now. Try again in a moment.');
    }
    if (err instanceof ImapCommandError) {
      const missing = err.code === 'NONEXISTENT' || err.code === 'TRYCREATE';
      return errorPage(missing ? 404 : 400, `The mail server said: ${err.message}`);
    }
    this.log.event('webmail-error', { level: 'error', error: (err as Error).stack ?? String(err) });
    return errorPage(500, 'Something went wrong on our side.');
  }

  close(): void {
    clearInterval(this.#timer);
    this.sessions.endAll();
    this.pool.closeAll();
  }
}
