// Configuration: built-in defaults that give a working server with no config
// file at all, optionally overridden by a JSON file (`--config FILE`).
//
// The defaults object doubles as the schema: every key a config file may set
// is a key here, and its type is the type of the default. A file with an
// unknown key or a value of the wrong type stops start-up with a message that
// names the key, because a silently ignored typo ("maxRecipent") is worse than
// refusing to start.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const defaults = {
  /** Our own name: the greeting, Received: headers, EHLO reply. */
  hostname: 'localhost',
  /** Domains whose mail is delivered here (RFC 5321 2.3.5). */
  domains: ['localhost'],
  /**
   * Where mail, accounts and temporary files live. Empty: the default place,
   * which depends on who starts the program (see dataDirOf below).
   */
  dataDir: '',
  /**
   * Clients that may send as one of our domains on port 25 without logging
   * in: programs on this machine (cron, scripts). Postfix calls this
   * mynetworks; everyone else must use submission.
   */
  trustedNetworks: ['127.0.0.0/8', '::1'],
  /** Address the listeners bind to. Loopback by default; "0.0.0.0" or "::" to serve the network. */
  listenAddress: '127.0.0.1',
  /** Listening ports; -1 turns a listener off (0 picks any free port). Unprivileged by default (the real ones in brackets). */
  ports: {
    /** Inbound SMTP from other servers, with STARTTLS [25]. */
    smtp: 2525,
    /** Submission from our own users: STARTTLS, then AUTH required (RFC 6409) [587]. */
    submission: 2587,
    /** Submission over implicit TLS (RFC 8314) [465]. */
    smtps: 2465,
    /** POP3 with STLS [110]. */
    pop3: 2110,
    /** POP3 over implicit TLS [995]. */
    pop3s: 2995,
    /** IMAP with STARTTLS [143]. */
    imap: 2143,
    /** IMAP over implicit TLS [993]. */
    imaps: 2993,
  },
  tls: {
    /**
     * PEM certificate chain and key. Empty (the usual): <dataDir>/tls/cert.pem
     * and key.pem, a self-signed pair made on first start, or what
     * scripts/certbot-deploy-hook.ts installed there. The server reads them
     * as its own user, at start and on SIGHUP alike.
     */
    certFile: '',
    keyFile: '',
  },
  auth: {
    /** Allow AUTH without TLS from loopback clients (local scripts, tests). Never over the network. */
    allowPlaintextOnLoopback: false,
    /**
     * Clients allowed to pass on their own user's address (IMAP ID
     * x-originating-ip), so the login throttle counts each webmail user by
     * their address rather than the webmail's (Dovecot: login_trusted_networks).
     * The webmail runs on this machine by default. Such a client speaks for
     * many users, so it is held to limits.maxConnections only, not to
     * maxConnectionsPerIp (as Postfix exempts mynetworks).
     */
    trustedClients: ['127.0.0.0/8', '::1'],
  },
  /** The relay process (src/relay/): delivers queued mail to other domains. */
  relay: {
    /** The server starts the relay as a child process and restarts it if it dies. */
    enabled: true,
    /** DNS servers for MX lookups, comma separated ("127.0.0.1:5353"); empty: the system's. */
    dnsServers: '',
    /** Port of the receiving servers (25; tests use another). */
    port: 25,
    /** Insist on STARTTLS everywhere (Postfix: smtp_tls_security_level = encrypt). */
    requireTls: false,
    /**
     * Check the receiving servers' certificates against the trusted CAs and the
     * MX host name, and insist on TLS (Postfix: smtp_tls_security_level = verify).
     * A server that fails is skipped (4.7.5), never used in clear. Off, as with
     * most MTAs: STARTTLS when offered, any certificate (RFC 7435).
     */
    verifyCertificates: false,
    /**
     * A PEM file of CA certificates to trust instead of the system's list
     * (Postfix: smtp_tls_CAfile). For a smarthost with a self-signed
     * certificate, put that certificate here.
     */
    caFile: '',
    /** Give up and bounce after this long (Postfix: maximal_queue_lifetime, 5 days). */
    maxAgeHours: 120,
    /** Tell the sender their mail is delayed after this long; 0: never. */
    delayWarningHours: 4,
    /** Messages delivered at the same time. */
    concurrency: 4,
    /** Look at the queue at least this often, for retries that became due. */
    scanSeconds: 60,
    /** Send everything through one server (your ISP's, or a mail service): most home connections cannot send on port 25. */
    smarthost: {
      host: '',
      port: 587,
      /** "starttls" (port 587) or "implicit" (port 465). */
      tls: 'starttls',
      username: '',
      password: '',
      /**
       * Check the smarthost's certificate before sending it the password
       * (RFC 8314 4.1). Set false only for a self-signed smarthost whose
       * certificate you cannot give in caFile: the password then goes to
       * whoever answers.
       */
      verifyCertificate: true,
    },
    /** DKIM signing (RFC 6376); scripts/dkim-keygen.ts makes a key and prints its DNS record. */
    dkim: {
      /**
       * One key per signing domain: [{ "domain": "example.org", "selector": "mail",
       * "keyFile": "spool/dkim/mail.example.org.key.pem" }]. Mail is signed with the
       * key of its From: domain (d= that domain, as DMARC wants); mail whose From:
       * domain has no key goes out unsigned.
       */
      keys: [] as DkimKeyConfig[],
      /** The older single-key form, still read: a key for the first of `domains`. */
      selector: '',
      keyFile: '',
    },
  },
  /**
   * The webmail (src/webmail/): a web server that shows mail in a browser.
   * It reads mail only over IMAP and sends over submission, with TLS and
   * the user's own login, like any mail client; so it can run on another
   * machine (`npm run webmail` there, pointed at this one).
   */
  webmail: {
    /** The server starts the webmail as a child process and restarts it if it dies. */
    enabled: true,
    /** HTTPS port [443]; -1 turns it off. */
    port: 2443,
    /** Address it listens on; empty: the server's listenAddress. */
    listenAddress: '',
    /** The mail server's IMAP: host (empty: this machine), port (0: this server's ports.imaps, or ports.imap with STARTTLS). */
    imapHost: '',
    imapPort: 0,
    /** "implicit" (port 993) or "starttls" (port 143). */
    imapTls: 'implicit',
    /** The mail server's submission port, the same way (0: ports.smtps, or ports.submission with STARTTLS). */
    submissionHost: '',
    submissionPort: 0,
    submissionTls: 'implicit',
    /** The name the mail server's certificate is checked against; empty: hostname. */
    serverName: '',
    /**
     * A PEM file of CA certificates to trust for the mail server's
     * certificate, instead of the system's list. Empty: the system's list
     * plus this data directory's own certificate (tls/cert.pem), which is
     * what a self-signed server on this machine needs. The certificate is
     * always verified: the connections carry the users' passwords.
     */
    caFile: '',
    /** The webmail's own HTTPS certificate and key; empty: the server's (tls.certFile or <dataDir>/tls). */
    certFile: '',
    keyFile: '',
    /** A session ends after this long without a request ... */
    sessionIdleMinutes: 30,
    /** ... and after this long in any case. */
    sessionHours: 12,
    /** Browser sessions at once; past it the oldest ends. */
    maxSessions: 1000,
    /**
     * IMAP connections held open at once (one per active session; the one
     * unused longest is closed when more are needed). They all come from
     * one address, the webmail's: the mail server must list it in
     * auth.trustedClients (loopback is), or hold it to maxConnectionsPerIp.
     */
    maxImapConnections: 8,
    /** An IMAP connection unused this long is closed; its session reconnects when needed. */
    imapIdleSeconds: 300,
    /** Largest message a user may compose with its attachments (the server's limits.maxMessageBytes still applies). */
    maxUploadBytes: 25 * 1024 * 1024,
    /** Messages per page of the message list. */
    pageSize: 50,
  },
  /**
   * Started as root (to bind ports below 1024): the user and group to become
   * right after binding (see privileges.ts); the data directory must belong
   * to them. `mail` exists on Debian and Raspberry Pi OS, as Postfix has its
   * `postfix` user by default.
   */
  runAs: {
    user: 'mail',
    group: 'mail',
    /** Set user to "" and this to true to keep running as root. Not recommended. */
    allowRoot: false,
  },
  limits: {
    /** Largest message accepted, advertised in EHLO SIZE (RFC 1870). 25 MiB. */
    maxMessageBytes: 25 * 1024 * 1024,
    /** Recipients per message; RFC 5321 4.5.3.1.8 requires at least 100. */
    maxRecipients: 100,
    /** Simultaneous connections in total, and from one IP address. */
    maxConnections: 100,
    maxConnectionsPerIp: 10,
    /**
     * Time a client on an implicit-TLS port (465, 995) has to finish its TLS
     * handshake; it holds a connection slot meanwhile. Postfix waits 300 s
     * (smtpd_starttls_timeout) but only 10 s under stress; a handshake takes
     * two round trips, so 30 s is plenty.
     */
    tlsHandshakeSeconds: 30,
    /** Idle time before the server hangs up; RFC 5321 4.5.3.2.7 says at least 5 minutes. */
    idleTimeoutSeconds: 300,
    /** The same for POP3, where RFC 1939 3 says at least 10 minutes. */
    pop3IdleTimeoutSeconds: 600,
    /** The same for IMAP: RFC 3501 5.4 says at least 30 minutes (clients IDLE for 29). */
    imapIdleTimeoutSeconds: 1800,
    /** IMAP sessions live long (a client stays in IDLE for days); this bounds them all the same. */
    imapSessionSeconds: 86400,
    /**
     * The longest an SMTP or POP3 session may last, however busy: a client
     * dripping a byte every few seconds cannot hold a connection for ever.
     */
    sessionSeconds: 3600,
    /** Protocol errors before the session is closed with 421 (RFC 5321 4.3.2 allows it). */
    maxErrors: 10,
    /** Messages up to this size are held in memory while they arrive; larger ones go to a temp file. */
    memoryBufferBytes: 2 * 1024 * 1024,
    /**
     * All messages arriving at once share this much memory; past it, bodies go
     * to temporary files too. A cap for the whole server, not per session.
     */
    memoryBufferTotalBytes: 32 * 1024 * 1024,
    /** How long to wait for a mailbox dot-lock before answering 451 (try again later). */
    lockTimeoutSeconds: 10,
    /** On SIGTERM, how long transactions in flight may take to finish. */
    shutdownGraceSeconds: 10,
  },
};

export type Config = typeof defaults;

/** One entry of relay.dkim.keys. */
export interface DkimKeyConfig {
  domain: string;
  selector: string;
  keyFile: string;
}

/**
 * The shape of each item of the arrays whose items are objects: their
 * default is empty, so the default cannot say it. Each item is checked like
 * any other part of the config (unknown keys and wrong types stop start-up).
 */
const ARRAY_ITEM_SCHEMAS: Record<string, object> = {
  'relay.dkim.keys': { domain: '', selector: '', keyFile: '' } satisfies DkimKeyConfig,
};

export class ConfigError extends Error {}

/** Merge `overrides` into a copy of `base`, checking every key and type against `base`. */
export function mergeConfig<T extends object>(base: T, overrides: unknown, where = ''): T {
  if (typeof overrides !== 'object' || overrides === null || Array.isArray(overrides)) {
    throw new ConfigError(`config${where ? ` key "${where}"` : ''}: expected an object`);
  }
  const result: Record<string, unknown> = structuredClone(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(overrides)) {
    const path = where ? `${where}.${key}` : key;
    if (!Object.hasOwn(result, key)) throw new ConfigError(`config key "${path}" is unknown`);
    const expected = result[key];
    const itemSchema = ARRAY_ITEM_SCHEMAS[path];
    if (itemSchema) {
      if (!Array.isArray(value)) throw new ConfigError(`config key "${path}" must be an array of objects`);
      result[key] = value.map((item: unknown, i) => mergeConfig(itemSchema, item, `${path}[${i}]`));
    } else if (Array.isArray(expected)) {
      const itemType = typeof expected[0];
      if (!Array.isArray(value) || value.some((item) => typeof item !== itemType)) {
        throw new ConfigError(`config key "${path}" must be an array of ${itemType}s`);
      }
      result[key] = value;
    } else if (typeof expected === 'object' && expected !== null) {
      result[key] = mergeConfig(expected, value, path);
    } else if (typeof value !== typeof expected) {
      throw new ConfigError(`config key "${path}" must be a ${typeof expected}, not ${JSON.stringify(value)}`);
    } else {
      result[key] = value;
    }
  }
  return result as T;
}

/**
 * The defaults, overridden by the JSON file at `path` when one is given.
 * The data directory comes back as an absolute path, decided now (by who
 * started the program), so it stays the same after the program drops root.
 */
export function loadConfig(path?: string): Config {
  const config = readConfigFile(path);
  config.dataDir = dataDirOf(config);
  return config;
}

function readConfigFile(path?: string): Config {
  if (!path) return structuredClone(defaults);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  const config = mergeConfig(defaults, parsed);
  // The first domain names the postmaster (RFC 5321 4.5.1) and signs DKIM: there must be one.
  if (config.domains.length === 0) throw new ConfigError(`config key "domains" must list at least one domain`);
  config.domains = config.domains.map((d) => d.toLowerCase());
  return config;
}

/** Where a server started by root keeps its data: the FHS place for a daemon's state. */
export const SYSTEM_DATA_DIR = '/var/lib/jjordan-mail';

/**
 * The data directory, one rule for the server, the relay, adduser and the
 * scripts:
 * - `dataDir` set in the config: that path (relative to the working directory);
 * - otherwise, started by root: /var/lib/jjordan-mail, like every system
 *   daemon (Postfix keeps /var/lib/postfix, Dovecot /var/lib/dovecot). A
 *   checkout under /root is private to root, so the unprivileged user the
 *   server becomes could not use a spool/ there;
 * - otherwise (an ordinary user trying it out): spool/ in the working directory.
 */
export function dataDirOf(config: Config, startedAsRoot = process.getuid?.() === 0): string {
  if (config.dataDir) return resolve(config.dataDir);
  return startedAsRoot ? SYSTEM_DATA_DIR : resolve('spool');
}
