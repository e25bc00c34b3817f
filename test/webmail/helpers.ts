// Shared set-up for the webmail tests: a whole mail server started in this
// process (test/helpers/test-server.ts), the address of its IMAP and
// submission ports as the webmail sees them (TLS, the server's own
// certificate as the CA), and deliveries over real SMTP.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { TestContext } from 'node:test';
import { startTestServer } from '../helpers/test-server.ts';
import type { TestServer, TestServerOptions } from '../helpers/test-server.ts';
import { sendMail } from '../helpers/smtp-client.ts';
import type { ImapServerAddress } from '../../src/webmail/imap-client/connection.ts';
import type { SubmissionServer } from '../../src/webmail/smtp-client.ts';
import { mergeConfig } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { Webmail } from '../../src/webmail/app.ts';
import { webmailSettings } from '../../src/webmail/settings.ts';
import { startWebmailListener } from '../../src/webmail/server.ts';
import { Browser } from './browser.ts';

export async function mailServer(t: TestContext, options: TestServerOptions = {}): Promise<TestServer> {
  const server = await startTestServer({
    accounts: [
      { name: 'jjordan', password: 'secret' },
      { name: 'ana', password: 'ana-pw' },
    ],
    ...options,
  });
  t.after(() => server.close());
  return server;
}

/** The server's self-signed certificate: what the webmail trusts on the embedded default. */
export function serverCa(server: TestServer): Promise<string> {
  return readFile(server.server.tls.certPath, 'utf8');
}

export async function imapAddress(server: TestServer, tls: 'implicit' | 'starttls' = 'implicit'): Promise<ImapServerAddress> {
  const ports = server.server.imap.ports;
  return {
    host: '127.0.0.1',
    port: tls === 'implicit' ? ports.imaps : ports.imap,
    tls,
    servername: 'localhost',
    ca: await serverCa(server),
    timeoutMs: 5000,
    maxResponseBytes: 4 * 1024 * 1024,
  };
}

export async function submissionAddress(server: TestServer, tls: 'implicit' | 'starttls' = 'implicit'): Promise<SubmissionServer> {
  const ports = server.server.smtp.ports;
  return {
    host: '127.0.0.1',
    port: tls === 'implicit' ? ports.smtps : ports.submission,
    tls,
    servername: 'localhost',
    ca: await serverCa(server),
    timeoutMs: 5000,
  };
}

/** Deliver `message` (CRLF text or bytes) to `to` over the server's port 25. */
export async function deliver(server: TestServer, message: string | Buffer, to = 'jjordan@localhost', from = 'sender@example.net'): Promise<void> {
  const data = typeof message === 'string' ? message : message.toString('latin1');
  const result = await sendMail(server.port, { from, to: [to], data });
  assert.equal(result.final.code, 250, JSON.stringify(result.final));
}

/** A message with a text part and a binary attachment (base64 in lines of 76). */
export function messageWithAttachment(subject: string, attachment: Buffer, filenameParam = 'filename="data.bin"'): string {
  const base64 = attachment.toString('base64').replace(/.{76}/g, '$&\r\n');
  return [
    `From: Sender <sender@example.net>`,
    `To: jjordan@localhost`,
    `Subject: ${subject}`,
    `Message-ID: <${subject.replace(/\W/g, '')}@example.net>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="XyZ"',
    '',
    '--XyZ',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello, see the attachment.',
    '--XyZ',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; ${filenameParam}`,
    '',
    base64,
    '--XyZ--',
    '',
  ].join('\r\n');
}

/** Everything an async iterable yields (Array.fromAsync is newer than the type-check's lib). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

export interface TestWebmail {
  port: number;
  app: Webmail;
  config: Config;
  /** Move the webmail's clock (sessions, idle connections) forward. */
  advance(ms: number): void;
  browser(localAddress?: string): Browser;
  /** A browser already logged in. */
  loggedIn(username?: string, password?: string, localAddress?: string): Promise<Browser>;
}

/** The webmail in this process, pointed at `server`'s IMAP and submission ports, with a clock the test moves. */
export async function startTestWebmail(t: TestContext, server: TestServer, webmail: Partial<Config['webmail']> = {}): Promise<TestWebmail> {
  const config = mergeConfig(server.config, {
    webmail: {
      imapHost: '127.0.0.1',
      imapPort: server.server.imap.ports.imaps,
      submissionHost: '127.0.0.1',
      submissionPort: server.server.smtp.ports.smtps,
      ...webmail,
    },
  });
  const settings = await webmailSettings(config);
  let offset = 0;
  const log = createLogger({ write: (line) => server.logLines.push(line) }, 'webmail');
  const app = new Webmail({ config, settings, log, now: () => Date.now() + offset });
  const listener = await startWebmailListener({
    app,
    credentials: server.server.tls,
    host: '127.0.0.1',
    port: 0,
    limits: config.limits,
    log,
  });
  t.after(() => listener.close());
  const ca = await serverCa(server);
  const browser = (localAddress?: string) => new Browser(listener.port, ca, localAddress);
  return {
    port: listener.port,
    app,
    config,
    advance: (ms) => (offset += ms),
    browser,
    async loggedIn(username = 'jjordan', password = 'secret', localAddress?: string) {
      const b = browser(localAddress);
      const page = await b.logIn(username, password);
      assert.equal(page.status, 303, page.text);
      return b;
    },
  };
}
