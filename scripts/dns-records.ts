// `node scripts/dns-records.ts --domain example.org --host mail.example.org
//  [--ip 203.0.113.5] [--selector mail --key PATH]`: print the DNS records a
// mail domain needs, in zone-file syntax, each with a sentence saying what
// it is for.
//
// Other servers find us, and decide whether to trust mail that claims to
// be from us, through DNS alone:
//  - MX (RFC 5321 5.1) says which host receives mail for the domain;
//  - A/AAAA give that host's address, and the PTR (reverse DNS) of the
//    address should name the host again, which many receivers check;
//  - SPF (RFC 7208) lists the hosts allowed to send with our envelope sender;
//  - DKIM (RFC 6376 3.6) publishes the public key our signatures check against;
//  - DMARC (RFC 7489) tells receivers what to do with mail whose From is our
//    domain but which passes neither SPF nor DKIM for it, and where to report.
// Nothing here talks to DNS: it prints what to enter at your DNS provider.

import { createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { checkDkimName, dkimRecordName, dkimTxtRecord } from '../src/relay/dkim.ts';
import { runWhenStarted, usageErrorFor } from './lib/cli.ts';
import { txtStrings } from './dkim-keygen.ts';

const USAGE =
  'usage: node scripts/dns-records.ts --domain DOMAIN --host MAILHOST [--ip ADDRESS] [--selector mail --key PATH]';
const usageError = usageErrorFor('dns-records', USAGE);

/** Run the command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        domain: { type: 'string' },
        host: { type: 'string' },
        ip: { type: 'string', multiple: true, default: [] },
        selector: { type: 'string' },
        key: { type: 'string' },
      },
    }));
  } catch (err) {
    return usageError((err as Error).message);
  }
  const { domain, host, ip: addresses, key } = values;
  if (!domain || !host) return usageError('--domain and --host are required');
  try {
    checkDkimName('domain', domain);
    checkDkimName('domain', host);
    if (values.selector !== undefined) checkDkimName('selector', values.selector);
  } catch (err) {
    return usageError((err as Error).message.replace(/^dkim: /, ''));
  }
  const badIp = addresses.find((address) => isIP(address) === 0);
  if (badIp !== undefined) return usageError(`--ip ${JSON.stringify(badIp)} is not an IPv4 or IPv6 address`);
  if (values.selector !== undefined && key === undefined) return usageError('--selector needs --key');

  let dkimRecord: string | null = null;
  if (key !== undefined) {
    try {
      dkimRecord = dkimTxtRecord(createPrivateKey(await readFile(key, 'utf8')));
    } catch (err) {
      return usageError(`--key ${key}: ${(err as Error).message}`, false);
    }
  }
  const selector = values.selector ?? 'mail';

  const out: string[] = [`; DNS records for ${domain}, mail handled by ${host}`, ''];
  const record = (explanation: string, ...lines: string[]) => out.push(`; ${explanation}`, ...lines, '');

  record(
    `MX: mail for ${domain} is delivered to ${host} (the 10 is a preference; lower is tried first).`,
    `${domain}. IN MX 10 ${host}.`,
  );
  if (addresses.length > 0) {
    record(
      `A/AAAA: the address other servers connect to for ${host}. Also ask whoever runs the address for a PTR (reverse DNS) record naming ${host}: many receivers distrust mail from addresses without one.`,
      ...addresses.map((address) => `${host}. IN ${isIP(address) === 6 ? 'AAAA' : 'A'} ${address}`),
    );
  } else {
    record(
      `A/AAAA: ${host} needs an A record (IPv4) and/or an AAAA record (IPv6) with this server's address, and the address a PTR record naming ${host}. Pass --ip to print them.`,
    );
  }
  record(
    `SPF: only the hosts in ${domain}'s MX records may send mail whose envelope sender (MAIL FROM) is at ${domain}; "-all" asks receivers to reject the rest.`,
    `${domain}. IN TXT "v=spf1 mx -all"`,
  );
  if (dkimRecord !== null) {
    record(
      `DKIM: the public key receivers use to check the signatures the relay adds (selector "${selector}"); it must match the private key the relay is configured with.`,
      `${dkimRecordName(selector, domain)}. IN TXT ( ${txtStrings(dkimRecord)} )`,
    );
  } else {
    record(`DKIM: no key given. Make one with scripts/dkim-keygen.ts, then pass --selector and --key to print its record.`);
  }
  record(
    `DMARC: mail with a From at ${domain} that passes neither SPF nor DKIM for ${domain} should be put in quarantine (spam folder), and daily reports go to postmaster@${domain}. Start with p=none if you want to watch the reports first.`,
    `_dmarc.${domain}. IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@${domain}"`,
  );
  console.log(out.join('\n').trimEnd());
  return 0;
}

runWhenStarted(import.meta.url, 'dns-records', main);
