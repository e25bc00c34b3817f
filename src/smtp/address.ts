// Parsing the arguments of MAIL and RCPT (RFC 5321 4.1.2):
//
//     MAIL FROM:<alice@example.org> SIZE=1024 BODY=8BITMIME
//     RCPT TO:<jjordan@localhost>
//
// A path is `<` [source route `:`] mailbox `>`; the mailbox is
// local-part `@` domain. The source route is obsolete and ignored (RFC 5321
// 4.1.1.3, appendix C). Like Postfix we accept a space after the colon,
// which some clients send.
//
// Non-ASCII addresses are allowed only when the client announced SMTPUTF8
// (RFC 6531 3.3).
//
// A quoted local part is kept in its shortest form, as Postfix does (its
// smtpd unquotes, and quotes again only where needed): `"jjordan"@x` is
// `jjordan@x` (RFC 5322 3.4.1: the two forms are the same mailbox), and
// `"john\ smith"@x` is `"john smith"@x`. A local part that needs its quotes,
// such as `"john smith"`, keeps them: the outbound queue carries it as it is
// (queue/queue-file.ts), and no local account or alias has such a name, so
// for our own domains RCPT answers 550 User unknown.

export interface ParsedPath {
  /** `local@domain` with the domain lower-cased; '' for the null sender `<>`. */
  address: string;
  localPart: string;
  domain: string;
  /** ESMTP parameters, keys upper-cased: `SIZE=100` -> SIZE: '100', `SMTPUTF8` -> SMTPUTF8: ''. */
  params: Map<string, string>;
}

/** `badUtf8`: the address held bytes that are not UTF-8 (RFC 6531 3.3), answered 553 5.6.7. */
export type PathResult = { ok: true; path: ParsedPath } | { ok: false; why: string; badUtf8?: boolean };

// RFC 5321 4.1.2 / RFC 5322 3.2.3: atext, the characters of an unquoted local part.
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+$/u;
const LABEL = /^(?:[A-Za-z0-9\u0080-\u{10FFFF}](?:[A-Za-z0-9\-\u0080-\u{10FFFF}]*[A-Za-z0-9\u0080-\u{10FFFF}])?)$/u;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

const FROM_ARGUMENT = /^FROM:\s*<([^>]*)>(.*)$/i;
const TO_ARGUMENT = /^TO:\s*<([^>]*)>(.*)$/i;

/**
 * Parse `FROM:<...> params` (keyword 'FROM') or `TO:<...> params` (keyword 'TO').
 * `utf8` says whether MAIL FROM carried SMTPUTF8 (for RCPT, which has no say of its own).
 */
export function parsePathArgument(argument: string, keyword: 'FROM' | 'TO', utf8 = false): PathResult {
  const match = (keyword === 'FROM' ? FROM_ARGUMENT : TO_ARGUMENT).exec(argument);
  if (!match) return { ok: false, why: `Syntax: ${keyword === 'FROM' ? 'MAIL FROM' : 'RCPT TO'}:<address>` };
  const [, inner, rest] = match;
  if (rest.length > 0 && !rest.startsWith(' ')) return { ok: false, why: 'Syntax error after the address' };

  const params = parseParams(rest.trim());
  if (!params) return { ok: false, why: 'Syntax error in parameters' };

  // Drop an obsolete source route: <@relay1,@relay2:user@domain>.
  const mailbox = inner.startsWith('@') ? inner.slice(inner.indexOf(':') + 1) : inner;
  if (mailbox === '') {
    if (keyword === 'FROM') return { ok: true, path: { address: '', localPart: '', domain: '', params } };
    return { ok: false, why: 'Empty recipient address' };
  }
  // RFC 5321 4.5.1: <Postmaster> with no domain is always a valid recipient.
  if (keyword === 'TO' && mailbox.toLowerCase() === 'postmaster') {
    return { ok: true, path: { address: 'postmaster', localPart: 'postmaster', domain: '', params } };
  }

  // The connection decodes lines as UTF-8; U+FFFD marks bytes that were not.
  if (mailbox.includes('\uFFFD')) return { ok: false, why: 'Address is not valid UTF-8', badUtf8: true };
  const checked = checkMailbox(mailbox);
  if (typeof checked === 'string') return { ok: false, why: checked };
  const nonAscii = /[^\x00-\x7f]/.test(mailbox);
  if (nonAscii && !utf8 && !params.has('SMTPUTF8')) return { ok: false, why: 'Non-ASCII address needs SMTPUTF8' };
  return { ok: true, path: { ...checked, params } };
}

/** `local@domain` checked against RFC 5321's Mailbox syntax, or the reason it is not. */
export function checkMailbox(mailbox: string): { address: string; localPart: string; domain: string } | string {
  const at = mailbox.lastIndexOf('@');
  if (at <= 0 || at === mailbox.length - 1) return 'Address must be local-part@domain';
  const localPart = mailbox.slice(0, at);
  const domain = mailbox.slice(at + 1).toLowerCase();
  if (Buffer.byteLength(localPart) > 64) return 'Local part longer than 64 octets'; // RFC 5321 4.5.3.1.1
  if (Buffer.byteLength(domain) > 255) return 'Domain longer than 255 octets'; // RFC 5321 4.5.3.1.2
  if (!isLocalPart(localPart)) return 'Bad local part';
  if (!isDomain(domain)) return 'Bad domain';
  const shortest = shortestLocalPart(localPart);
  return { address: `${shortest}@${domain}`, localPart: shortest, domain };
}

/** A valid local part without quotes it does not need (see the header). */
function shortestLocalPart(local: string): string {
  if (!local.startsWith('"')) return local;
  const text = local.slice(1, -1).replace(/\\(.)/gu, '$1'); // RFC 5321 4.1.2 quoted-pairSMTP
  if (text !== '' && text.split('.').every((atom) => ATEXT.test(atom))) return text;
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}

function isLocalPart(local: string): boolean {
  if (local.startsWith('"')) {
    // Quoted-string: printable characters, with \ escaping one character.
    return /^"(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10FFFF}]|\\[\x20-\x7e])*"$/u.test(local);
  }
  return local.split('.').every((atom) => ATEXT.test(atom)); // dot-string: no empty atoms
}

function isDomain(domain: string): boolean {
  if (domain.startsWith('[')) {
    // Address literal: [192.0.2.1] or [IPv6:2001:db8::1] (RFC 5321 4.1.3).
    const inner = domain.slice(1, -1);
    if (!domain.endsWith(']')) return false;
    if (/^ipv6:/i.test(inner)) return /^[0-9a-f:.]+$/i.test(inner.slice(5)) && inner.includes(':', 5);
    return IPV4.test(inner);
  }
  return domain.split('.').every((label) => label.length <= 63 && LABEL.test(label));
}

/** `KEY=VALUE KEY2` -> Map; null on a malformed parameter (RFC 5321 4.1.2 esmtp-param). */
function parseParams(text: string): Map<string, string> | null {
  const params = new Map<string, string>();
  if (text === '') return params;
  for (const word of text.split(/ +/)) {
    const match = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?$/.exec(word);
    if (!match) return null;
    params.set(match[1].toUpperCase(), match[2] ?? '');
  }
  return params;
}
