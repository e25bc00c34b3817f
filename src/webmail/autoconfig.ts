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
//
// Which servers: on the mail server's own machine, every port of its config
// that is on. A webmail on another machine (webmail.imapHost or
// submissionHost set) knows only the IMAP and submission ports it uses
// itself, so it lists those, on the mail server's name, and no POP3.

import type { Config } from '../config.ts';
import { escapeHtml } from './http/html.ts';

interface Entry {
  type: 'imap' | 'pop3' | 'smtp';
  host: string;
  port: number;
  socketType: 'SSL' | 'STARTTLS';
}

export function autoconfigXml(config: Config, emailAddress: string | null): string {
  // The domain asked about, when it is ours; else every domain we serve.
  const asked = emailAddress?.split('@').pop()?.toLowerCase();
  const domains = asked && config.domains.includes(asked) ? [asked] : config.domains;
  const { incoming, outgoing } = servers(config);
  const server = (tag: string, entry: Entry) => `    <${tag} type="${entry.type}">
      <hostname>${escapeHtml(entry.host)}</hostname>
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

function servers(config: Config): { incoming: Entry[]; outgoing: Entry[] } {
  const w = config.webmail;
  const ports = config.ports;
  const socketType = (tls: string) => (tls === 'implicit' ? 'SSL' : 'STARTTLS');
  if (w.imapHost || w.submissionHost) {
    // Another machine: the ports the webmail itself uses (webmail/settings.ts), on the mail server's name.
    const imapHost = w.serverName || w.imapHost || config.hostname;
    const submissionHost = w.serverName || w.submissionHost || w.imapHost || config.hostname;
    return {
      incoming: [{ type: 'imap', host: imapHost, port: w.imapPort || (w.imapTls === 'implicit' ? ports.imaps : ports.imap), socketType: socketType(w.imapTls) }],
      outgoing: [{ type: 'smtp', host: submissionHost, port: w.submissionPort || (w.submissionTls === 'implicit' ? ports.smtps : ports.submission), socketType: socketType(w.submissionTls) }],
    };
  }
  const host = w.serverName || config.hostname;
  return {
    incoming: [
      { type: 'imap', host, port: ports.imaps, socketType: 'SSL' },
      { type: 'imap', host, port: ports.imap, socketType: 'STARTTLS' },
      { type: 'pop3', host, port: ports.pop3s, socketType: 'SSL' },
      { type: 'pop3', host, port: ports.pop3, socketType: 'STARTTLS' },
    ],
    outgoing: [
      { type: 'smtp', host, port: ports.smtps, socketType: 'SSL' },
      { type: 'smtp', host, port: ports.submission, socketType: 'STARTTLS' },
    ],
  };
}
