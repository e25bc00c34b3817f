// Browser sessions: who is logged in, in memory only.
//
// A session is created by a successful login and named by a random id in
// the session cookie (256 bits, so it cannot be guessed). It holds what the
// webmail needs to act for the user: their name, their password (kept only
// here, in this process's memory, to open the IMAP and submission
// connections again after an idle close; never in a cookie, a URL, a page
// or a file), the browser's address (for the mail server's login
// throttle), the CSRF token of its forms, the keys of its inline image
// links (http/image-links.ts), and its IMAP connection (imap-pool.ts).
//
// A session ends at logout, after `idleMs` without a request, after
// `maxAgeMs` whatever happens (Roundcube and OWASP's session cheat sheet
// both have both), or when `maxSessions` are open and it is the oldest.
// The clock is injectable, so expiry is tested without waiting.

import { randomToken } from './http/csrf.ts';
import type { ImapClient } from './imap-client/client.ts';

export interface Session {
  readonly id: string;
  readonly csrfToken: string;
  /** Inline image links (http/image-links.ts): the key that names this session, the secret that signs them. */
  readonly imageKey: string;
  readonly imageSecret: string;
  readonly username: string;
  /** Only in memory, for this session's own logins; wiped when the session ends. */
  password: string;
  /** The browser's address, passed to the mail server with ID x-originating-ip. */
  readonly clientAddress: string;
  readonly createdAt: number;
  lastSeenAt: number;
  /** A one-line message for the next page ("Message sent"). */
  notice: string | null;
  /** The IMAP connection (imap-pool.ts), when one is open. */
  imap: ImapClient | null;
  imapOpening: Promise<ImapClient> | null;
  imapLastUsedAt: number;
  /** Requests using the connection right now: it is not closed under them. */
  imapBusy: number;
  ended: boolean;
}

export interface SessionOptions {
  idleMs: number;
  maxAgeMs: number;
  maxSessions: number;
  now?: () => number;
  /** Called once when a session ends, to close its connection. */
  onEnd?: (session: Session) => void;
}

export class SessionStore {
  /** By id, oldest first (a Map keeps insertion order). */
  readonly #sessions = new Map<string, Session>();
  readonly #byImageKey = new Map<string, Session>();
  readonly #options: Required<SessionOptions>;

  constructor(options: SessionOptions) {
    this.#options = { ...options, now: options.now ?? Date.now, onEnd: options.onEnd ?? (() => {}) };
  }

  get size(): number {
    return this.#sessions.size;
  }

  now(): number {
    return this.#options.now();
  }

  create(username: string, password: string, clientAddress: string): Session {
    while (this.#sessions.size >= this.#options.maxSessions) this.end(this.#sessions.keys().next().value!);
    const now = this.now();
    const session: Session = {
      id: randomToken(),
      csrfToken: randomToken(),
      imageKey: randomToken(),
      imageSecret: randomToken(),
      username,
      password,
      clientAddress,
      createdAt: now,
      lastSeenAt: now,
      notice: null,
      imap: null,
      imapOpening: null,
      imapLastUsedAt: now,
      imapBusy: 0,
      ended: false,
    };
    this.#sessions.set(session.id, session);
    this.#byImageKey.set(session.imageKey, session);
    return session;
  }

  /** The live session an inline image link names; an image does not count as activity. */
  forImage(imageKey: string | null): Session | null {
    const session = imageKey ? this.#byImageKey.get(imageKey) : undefined;
    return session && !this.#expired(session) ? session : null;
  }

  /** The live session with this id, its idle clock restarted; null if there is none or it has expired. */
  get(id: string | undefined): Session | null {
    if (id === undefined) return null;
    const session = this.#sessions.get(id);
    if (!session) return null;
    if (this.#expired(session)) {
      this.end(id);
      return null;
    }
    session.lastSeenAt = this.now();
    return session;
  }

  #expired(session: Session): boolean {
    const now = this.now();
    return now - session.lastSeenAt > this.#options.idleMs || now - session.createdAt > this.#options.maxAgeMs;
  }

  end(id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    this.#sessions.delete(id);
    this.#byImageKey.delete(session.imageKey);
    session.ended = true;
    session.password = '';
    this.#options.onEnd(session);
  }

  /** End every expired session (run from a timer, so idle passwords do not linger). */
  sweep(): void {
    for (const session of [...this.#sessions.values()]) if (this.#expired(session)) this.end(session.id);
  }

  endAll(): void {
    for (const id of [...this.#sessions.keys()]) this.end(id);
  }
}
