// Client autoconfiguration, Thunderbird's format ("config-v1.1.xml", the
// Mozilla autoconfig described on wiki.mozilla.org/Thunderbird:Autoconfiguration
// and in draft-bucksch-autoconfig): a mail client that is given only an
// address asks https://autoconfig.<domain>/mail/config-v1.1.xml or
// https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml and learns
// the server, ports, TLS and login name for IMAP, POP3 and SMTP.
// Thunderbird and K-9 Mail (Thunderbird for Android) both read it.
//
// Implicit TLS is listed first (RFC 8314 4.1 prefers it), then STARTTLS;
// the login name is the whole address (%EMAILADDRESS%), which the server
// takes for any of its domains (auth/login.ts).

import type { Config } from '../config.ts';
import { escapeHtml } from './http/html.ts';

interface Entry {
  type: 'imap' | 'pop3' | 'smtp';
  port: number;
  socketType: 'SSL' | 'STARTTLS';
}

export function autoconfigXml(config: Config, emailAddress: string | null): string {
  const host = config.webmail.serverName || config.hostname;
  const ports = config.ports;
  // The domain asked about, when it is ours; else every domain we serve.
  const asked = emailAddress?.split('@').pop()?.toLowerCase();
  const domains = asked && config.domains.includes(asked) ? [asked] : config.domains;
  const incoming: Entry[] = [
    { type: 'imap', port: ports.imaps, socketType: 'SSL' },
    { type: 'imap', port: ports.imap, socketType: 'STARTTLS' },
    { type: 'pop3', port: ports.pop3s, socketType: 'SSL' },
    { type: 'pop3', port: ports.pop3, socketType: 'STARTTLS' },
  ];
  const outgoing: Entry[] = [
    { type: 'smtp', port: ports.smtps, socketType: 'SSL' },
    { type: 'smtp', port: ports.submission, socketType: 'STARTTLS' },
  ];
  const server = (tag: string, entry: Entry) => `    <${tag} type="${entry.type}">
      <hostname>${escapeHtml(host)}</hostname>
      <port>${entry.port}</port>
      <socketType>${entry.socketType}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </${tag}>`;
  const enabled = (entry: Entry) => entry.port > 0;
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${escapeHtml(domains[0])}">
${domains.map((d) => `    <domain>${escapeHtml(d)}</domain>`).join('\n')}
    <displayName>${escapeHtml(domains[0])} mail</displayName>
    <displayShortName>${escapeHtml(domains[0])}</displayShortName>
${incoming.filter(enabled).map((e) => server('incomingServer', e)).join('\n')}
${outgoing.filter(enabled).map((e) => server('outgoingServer', e)).join('\n')}
  </emailProvider>
</clientConfig>
`;
}
