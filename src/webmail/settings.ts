// The webmail's settings, worked out from the config (config.ts, the
// `webmail` section): where the mail server's IMAP and submission ports are
// and how their certificates are checked, the limits, the session times.
//
// On the embedded default the mail server is this machine: the same
// address the server listens on, its own ports, its own (self-signed)
// certificate trusted as a CA. On machine B, `imapHost`, `submissionHost`
// and `caFile` (or a certificate from a public CA) say where machine A is.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { ConfigError, dataDirOf } from '../config.ts';
import type { Config } from '../config.ts';
import type { ImapServerAddress } from './imap-client/connection.ts';
import type { SubmissionServer } from './smtp-client.ts';

export interface WebmailSettings {
  imap: ImapServerAddress;
  submission: SubmissionServer;
  /** Our name: EHLO, Message-ID's right-hand side. */
  hostname: string;
  /** Where a user name without "@" gets its address: the first of `domains`. */
  defaultDomain: string;
  sessionIdleMs: number;
  sessionMaxAgeMs: number;
  maxSessions: number;
  maxImapConnections: number;
  imapIdleMs: number;
  maxUploadBytes: number;
  pageSize: number;
  /** Uploads and messages being sent, private to the webmail. */
  tmpDir: string;
}

/** How long any single step with the mail server may take. */
const MAIL_SERVER_TIMEOUT_MS = 60_000;
/** The largest IMAP response read at once: a page of summaries, a 256 KiB piece of a part, a header. */
const MAX_IMAP_RESPONSE_BYTES = 4 * 1024 * 1024;

export async function webmailSettings(config: Config): Promise<WebmailSettings> {
  const w = config.webmail;
  const dataDir = dataDirOf(config);
  for (const [key, value] of [['imapTls', w.imapTls], ['submissionTls', w.submissionTls]] as const) {
    if (value !== 'implicit' && value !== 'starttls') throw new ConfigError(`config key "webmail.${key}" must be "implicit" or "starttls", not ${JSON.stringify(value)}`);
  }
  const imapTls = w.imapTls as 'implicit' | 'starttls';
  const submissionTls = w.submissionTls as 'implicit' | 'starttls';
  const servername = w.serverName || config.hostname;
  const ca = await trustedCas(config, dataDir);
  return {
    imap: {
      host: w.imapHost || thisMachine(config.listenAddress),
      port: w.imapPort || (imapTls === 'implicit' ? config.ports.imaps : config.ports.imap),
      tls: imapTls,
      servername,
      ca,
      timeoutMs: MAIL_SERVER_TIMEOUT_MS,
      maxResponseBytes: MAX_IMAP_RESPONSE_BYTES,
    },
    submission: {
      host: w.submissionHost || thisMachine(config.listenAddress),
      port: w.submissionPort || (submissionTls === 'implicit' ? config.ports.smtps : config.ports.submission),
      tls: submissionTls,
      servername,
      ca,
      timeoutMs: MAIL_SERVER_TIMEOUT_MS,
    },
    hostname: config.hostname,
    defaultDomain: config.domains[0],
    sessionIdleMs: w.sessionIdleMinutes * 60_000,
    sessionMaxAgeMs: w.sessionHours * 3_600_000,
    maxSessions: w.maxSessions,
    maxImapConnections: w.maxImapConnections,
    imapIdleMs: w.imapIdleSeconds * 1000,
    maxUploadBytes: w.maxUploadBytes,
    pageSize: w.pageSize,
    tmpDir: join(dataDir, 'webmail-tmp'),
  };
}

/** The server's own address as a place to connect to: a wildcard means this machine's loopback. */
function thisMachine(listenAddress: string): string {
  if (listenAddress === '0.0.0.0' || listenAddress === '') return '127.0.0.1';
  if (listenAddress === '::') return '::1';
  return listenAddress;
}

/**
 * The CAs that may vouch for the mail server: `caFile` alone when given
 * (Postfix's smtp_tls_CAfile), else the system's list plus the data
 * directory's own certificate (a self-signed one is its own CA).
 */
async function trustedCas(config: Config, dataDir: string): Promise<string> {
  const caFile = config.webmail.caFile;
  if (caFile) {
    try {
      return await readFile(caFile, 'utf8');
    } catch (err) {
      throw new ConfigError(`webmail.caFile: cannot read ${caFile}: ${(err as Error).message}`);
    }
  }
  const own = await readFile(config.tls.certFile || join(dataDir, 'tls', 'cert.pem'), 'utf8').catch(() => '');
  return [...rootCertificates, own].join('\n');
}
