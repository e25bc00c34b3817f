// The autoconfig document a mail client fetches (webmail/autoconfig.ts):
// on the mail server's machine every listener that is on; from a webmail
// on another machine only the IMAP and submission ports it uses itself.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaults } from '../../src/config.ts';
import type { Config } from '../../src/config.ts';
import { autoconfigXml } from '../../src/webmail/autoconfig.ts';

function configWith(change: (config: Config) => void): Config {
  const config = structuredClone(defaults);
  config.hostname = 'mail.example.org';
  config.domains = ['example.org', 'example.net'];
  change(config);
  return config;
}

/** The (type, host, port, socketType) of each server entry, in order. */
function entries(xml: string): string[] {
  return [...xml.matchAll(/<(?:incoming|outgoing)Server type="(\w+)">\s*<hostname>([^<]*)<\/hostname>\s*<port>(\d+)<\/port>\s*<socketType>(\w+)<\/socketType>/g)].map(
    (m) => `${m[1]} ${m[2]}:${m[3]} ${m[4]}`,
  );
}

test('on the mail server: IMAP, POP3 and submission, implicit TLS first, the ports that are on', () => {
  const xml = autoconfigXml(configWith(() => {}), 'ana@example.net');
  assert.deepEqual(entries(xml), [
    'imap mail.example.org:2993 SSL',
    'imap mail.example.org:2143 STARTTLS',
    'pop3 mail.example.org:2995 SSL',
    'pop3 mail.example.org:2110 STARTTLS',
    'smtp mail.example.org:2465 SSL',
    'smtp mail.example.org:2587 STARTTLS',
  ]);
  assert.match(xml, /<emailProvider id="example.net">\s*<domain>example.net<\/domain>\s*<displayName>/, 'the domain asked about');
  const off = autoconfigXml(configWith((c) => Object.assign(c.ports, { pop3: -1, pop3s: -1, smtps: -1 })), null);
  assert.deepEqual(entries(off), ['imap mail.example.org:2993 SSL', 'imap mail.example.org:2143 STARTTLS', 'smtp mail.example.org:2587 STARTTLS']);
});

test('an address in a domain we do not serve gets every domain we serve', () => {
  const xml = autoconfigXml(configWith(() => {}), 'someone@elsewhere.test');
  assert.match(xml, /<domain>example.org<\/domain>\s*<domain>example.net<\/domain>/);
});

test('a webmail on another machine lists the mail server and the ports it uses itself, and no POP3', () => {
  const xml = autoconfigXml(
    configWith((c) => Object.assign(c.webmail, { imapHost: '192.0.2.7', imapPort: 993, imapTls: 'implicit', submissionPort: 587, submissionTls: 'starttls', serverName: 'imap.example.org' })),
    null,
  );
  assert.deepEqual(entries(xml), ['imap imap.example.org:993 SSL', 'smtp imap.example.org:587 STARTTLS']);
  const unnamed = autoconfigXml(configWith((c) => Object.assign(c.webmail, { imapHost: 'a.example.org', submissionHost: 'b.example.org', submissionTls: 'starttls' })), null);
  assert.deepEqual(entries(unnamed), ['imap a.example.org:2993 SSL', 'smtp b.example.org:2587 STARTTLS']);
});
