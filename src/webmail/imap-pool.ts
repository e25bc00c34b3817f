// The IMAP connections of the browser sessions: one per session, opened at
// login and kept for the session's next requests (a page view is then a
// few commands, not a TLS handshake and a password check), within bounds:
//
// - at most `maxConnections` open at once. They all come from one address,
//   ours: the mail server holds a trusted client (auth.trustedClients) to
//   its total only, any other to limits.maxConnectionsPerIp. When all are
//   taken, the one unused the longest is closed; its session opens it
//   again, with ID and LOGIN, on its next request. When every connection is busy serving a request, the new one
//   waits its turn briefly and then gets "busy" (PoolBusyError).
// - a connection unused for `idleMs` is closed (LOGOUT); the session stays.
//
// Each new connection starts with ID ("x-originating-ip" ...) before LOGIN
// (RFC 2971): the mail server then throttles failed logins by the browser's
// address, not the webmail's, so one attacker guessing passwords through
// the webmail does not slow down everyone else's logins.

import { ImapClient } from './imap-client/client.ts';
import { ImapConnectionError } from './imap-client/connection.ts';
import type { ImapServerAddress, Trace } from './imap-client/connection.ts';
import type { Session } from './sessions.ts';

export class PoolBusyError extends Error {}

export interface PoolOptions {
  server: ImapServerAddress;
  maxConnections: number;
  idleMs: number;
  now?: () => number;
  trace?: Trace;
  /** How long a request waits for a connection when all are busy. */
  waitMs?: number;
}

/** What the webmail tells the server about itself (RFC 2971 3.3 field names). */
const CLIENT_NAME = 'jjordan-mail webmail';

export class ImapPool {
  readonly #options: Required<PoolOptions>;
  /** Sessions holding a connection. */
  readonly #holders = new Set<Session>();
  /** Connections being opened (logins in progress count too). */
  #opening = 0;
  #waiters: (() => void)[] = [];

  constructor(options: PoolOptions) {
    this.#options = { waitMs: 5000, ...options, now: options.now ?? Date.now, trace: options.trace ?? (() => {}) };
  }

  get openConnections(): number {
    return this.#holders.size + this.#opening;
  }

  /**
   * A connection logged in as `username`, for a login form: a wrong
   * password throws ImapCommandError (code AUTHENTICATIONFAILED).
   */
  async login(username: string, password: string, clientAddress: string): Promise<ImapClient> {
    await this.#makeRoom();
    this.#opening++;
    try {
      const client = await ImapClient.connect(this.#options.server, this.#options.trace);
      try {
        await client.id({ name: CLIENT_NAME, 'x-originating-ip': clientAddress });
        await client.login(username, password);
        return client;
      } catch (err) {
        await client.logout();
        throw err;
      }
    } finally {
      this.#opening--;
      this.#wakeOne();
    }
  }

  /** The new session keeps the connection its login opened. */
  adopt(session: Session, client: ImapClient): void {
    session.imap = client;
    session.imapLastUsedAt = this.#options.now();
    this.#holders.add(session);
  }

  /** Run `work` with the session's connection, opening it again if it was closed. */
  async use<T>(session: Session, work: (client: ImapClient) => Promise<T>): Promise<T> {
    session.imapBusy++;
    try {
      const client = await this.#connectionOf(session);
      try {
        return await work(client);
      } catch (err) {
        // A broken connection is dropped; the next request opens a new one.
        if (err instanceof ImapConnectionError || !client.connection.isUsable) this.release(session);
        throw err;
      } finally {
        session.imapLastUsedAt = this.#options.now();
      }
    } finally {
      session.imapBusy--;
      this.#wakeOne();
    }
  }

  /**
   * Items from `produce` (pieces of an attachment), with the session's
   * connection held for as long as the stream runs: a slow download is not
   * an idle connection. Ending the iteration early (the browser left) ends
   * it here too.
   */
  async *stream<T>(session: Session, produce: (client: ImapClient) => AsyncIterable<T>): AsyncGenerator<T> {
    session.imapBusy++;
    try {
      const client = await this.#connectionOf(session);
      try {
        for await (const item of produce(client)) {
          session.imapLastUsedAt = this.#options.now();
          yield item;
        }
      } catch (err) {
        if (err instanceof ImapConnectionError || !client.connection.isUsable) this.release(session);
        throw err;
      }
    } finally {
      session.imapBusy--;
      this.#wakeOne();
    }
  }

  async #connectionOf(session: Session): Promise<ImapClient> {
    if (session.imap?.connection.isUsable) return session.imap;
    if (session.imap) this.release(session);
    // Two requests of one browser at once open one connection, not two.
    session.imapOpening ??= this.login(session.username, session.password, session.clientAddress).finally(() => (session.imapOpening = null));
    const client = await session.imapOpening;
    if (session.ended) {
      void client.logout();
      throw new ImapConnectionError('the session has ended');
    }
    if (session.imap !== client) this.adopt(session, client);
    return client;
  }

  /** Close the session's connection (logout, idle, eviction). */
  release(session: Session): void {
    const client = session.imap;
    session.imap = null;
    this.#holders.delete(session);
    if (client) void client.logout();
    this.#wakeOne();
  }

  /** Close connections unused for idleMs (run from a timer). */
  closeIdle(): void {
    const now = this.#options.now();
    for (const session of [...this.#holders]) {
      if (session.imapBusy === 0 && now - session.imapLastUsedAt > this.#options.idleMs) this.release(session);
    }
  }

  closeAll(): void {
    for (const session of [...this.#holders]) this.release(session);
  }

  /** Below the limit, or make it so by closing the least recently used idle connection, or wait. */
  async #makeRoom(): Promise<void> {
    const deadline = this.#options.now() + this.#options.waitMs;
    while (this.openConnections >= this.#options.maxConnections) {
      let oldest: Session | null = null;
      for (const session of this.#holders) {
        if (session.imapBusy === 0 && (!oldest || session.imapLastUsedAt < oldest.imapLastUsedAt)) oldest = session;
      }
      if (oldest) {
        this.release(oldest);
        continue;
      }
      const left = deadline - this.#options.now();
      if (left <= 0) throw new PoolBusyError('every connection to the mail server is busy');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }
}
