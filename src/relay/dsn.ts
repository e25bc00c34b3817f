// Bounce and delay messages: delivery status notifications (DSNs) the relay
// sends back to a message's envelope sender when some recipients failed for
// good ("Undelivered Mail Returned to Sender") or have waited a long time
// ("Delayed Mail (still being retried)").
//
// A DSN is a MIME multipart/report (RFC 6522) of three parts:
//   1. text/plain               for the person: what happened, to whom, why;
//   2. message/delivery-status  for programs (RFC 3464 2.2, 2.3): one block of
//                               per-message fields, one block per recipient;
//   3. text/rfc822-headers      the original message's header, so the sender
//                               can tell which message this was (RFC 6522 4;
//                               RET=HDRS of RFC 3461 4.3 - we never return
//                               the body, which keeps bounces small).
//
// Other rules followed:
//   RFC 3464 2.3.4  Status: an RFC 3463 enhanced code, class.subject.detail
//   RFC 3834 5      Auto-Submitted: auto-replied, so autoresponders stay quiet
//   RFC 5321 4.5.5  a DSN is sent with the null reverse-path MAIL FROM:<>, so
//                   a bounce can never bounce again - the caller does that,
//                   and asks shouldBounce() before building one.
//
// Everything is built with LF line endings, like the queue files; the SMTP
// client turns them into CRLF on the wire.

import { randomBytes } from 'node:crypto';
import { formatMessageDate } from '../mime/header.ts';

export interface DsnRecipient {
  address: string;
  action: 'failed' | 'delayed';
  /** RFC 3463 code, e.g. '5.1.1'. */
  status: string;
  /**
   * 'type; text'. RFC 3464 2.3.6: type smtp only for a reply a remote server
   * sent ('smtp; 550 5.1.1 user unknown'); a bare text is our own verdict and
   * gets LOCAL_DIAGNOSTIC_TYPE.
   */
  diagnostic?: string;
  /** 'type; name', e.g. 'dns; mx1.example.net': the server whose reply `diagnostic` quotes. A bare name gets type dns. */
  remoteMta?: string;
  lastAttempt?: Date;
}

export interface DsnInput {
  /** Our host name. */
  reportingMta: string;
  /** The From: address, e.g. MAILER-DAEMON@host. */
  postmaster: string;
  /** The original envelope sender: who gets this report. */
  to: string;
  /** ENVID from the original MAIL command (RFC 3461 4.4), already xtext. */
  originalEnvelopeId?: string;
  queueId: string;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  /** The original header section, LF line endings. */
  originalHeader: Buffer;
  now?: Date;
  /** For delayed recipients: when we give up. Default: arrival + 5 days. */
  willRetryUntil?: Date;
  /** Injectable for tests; otherwise random. */
  boundary?: string;
}

/**
 * The diagnostic type of the verdicts this MTA makes itself (no route, no
 * connection, expired, too large for the server's SIZE). RFC 3464 2.3.6 types
 * a diagnostic by the system that issued it, and leaves non-SMTP ones to
 * X- names; Postfix writes `Diagnostic-Code: X-Postfix; ...` for its own.
 */
export const LOCAL_DIAGNOSTIC_TYPE = 'X-jjordan-mail';

/** How long a message is retried before it bounces: Postfix's maximal_queue_lifetime. */
export const DEFAULT_QUEUE_LIFETIME_MS = 5 * 24 * 60 * 60 * 1000;

/**
 * Whether a failure may be reported to `sender`. Never to the null sender
 * '' (RFC 5321 4.5.5, 6.1: a DSN about a DSN would loop forever), and not to
 * MAILER-DAEMON@... or qmail's double-bounce address '#@[]': those are other
 * mail systems' bounce senders that forgot to use <>, and answering them is
 * how two servers end up bouncing at each other. Postmaster is NOT on the
 * list: it is a person and wants to know.
 */
export function shouldBounce(sender: string): boolean {
  const address = sender.trim().replace(/^<(.*)>$/, '$1');
  if (address === '' || address === '#@[]') return false;
  const at = address.lastIndexOf('@');
  const local = (at < 0 ? address : address.slice(0, at)).toLowerCase();
  return local !== 'mailer-daemon';
}

export function buildDsn(input: DsnInput): Buffer {
  if (input.recipients.length === 0) throw new Error('a DSN needs at least one recipient');
  for (const r of input.recipients) {
    // RFC 3464 2.3.4 / RFC 3463 2: class "." subject "." detail.
    if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status)) throw new Error(`bad status code for ${r.address}: ${r.status}`);
  }
  const now = input.now ?? new Date();
  const retryUntil = input.willRetryUntil ?? new Date(input.arrivalDate.getTime() + DEFAULT_QUEUE_LIFETIME_MS);
  // One failure makes it a bounce; delayed recipients are listed in it too.
  const bounce = input.recipients.some((r) => r.action === 'failed');

  const text = humanText(input, now, retryUntil, bounce);
  const status = deliveryStatus(input, retryUntil);
  // The original header, ending in exactly one LF (no blank line: the part ends there).
  const original = Buffer.concat([stripTrailingNewlines(input.originalHeader), Buffer.from('\n')]);
  const boundary = chooseBoundary(input, [Buffer.from(text), Buffer.from(status), original]);

  const eightBit = [text, status].some((s) => /[^\x00-\x7f]/.test(s)) || original.some((byte) => byte > 0x7f);
  const header =
    `From: "Mail Delivery System" <${oneLine(input.postmaster)}>\n` +
    `To: <${oneLine(input.to)}>\n` +
    `Subject: ${bounce ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)'}\n` +
    `Date: ${formatMessageDate(now)}\n` +
    `Message-ID: <${now.getTime().toString(36)}.${randomBytes(6).toString('hex')}.${oneLine(input.queueId)}@${oneLine(input.reportingMta)}>\n` +
    `Auto-Submitted: auto-replied\n` +
    `MIME-Version: 1.0\n` +
    `Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="${boundary}"\n` +
    // RFC 2045 6.4: a multipart may only be labelled 7bit, 8bit or binary;
    // 8bit when the original header carried 8-bit bytes (the relay then
    // needs the receiver's 8BITMIME).
    `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}\n` +
    `\n` +
    // The preamble, shown only by mail readers that do not know MIME.
    `This is a MIME-encapsulated message.\n`;

  const charset = /[^\x00-\x7f]/.test(text) ? 'utf-8' : 'us-ascii';
  // RFC 2046 5.1.1: the newline before each "--boundary" belongs to the
  // delimiter, hence the "\n--" in front of every one.
  return Buffer.concat([
    Buffer.from(header),
    Buffer.from(
      `\n--${boundary}\n` +
        `Content-Description: Notification\n` +
        `Content-Type: text/plain; charset=${charset}\n` +
        `\n` +
        text +
        `\n--${boundary}\n` +
        `Content-Description: Delivery report\n` +
        `Content-Type: message/delivery-status\n` +
        `\n` +
        status +
        `\n--${boundary}\n` +
        `Content-Description: Undelivered Message Headers\n` +
        `Content-Type: text/rfc822-headers\n` +
        `\n`,
    ),
    original,
    Buffer.from(`\n--${boundary}--\n`),
  ]);
}

/** The text/plain part, in Postfix's words, which postmasters everywhere recognise. */
function humanText(input: DsnInput, now: Date, retryUntil: Date, bounce: boolean): string {
  const failed = input.recipients.filter((r) => r.action === 'failed');
  const delayed = input.recipients.filter((r) => r.action === 'delayed');
  const lines: string[] = [`This is the mail system at host ${oneLine(input.reportingMta)}.`, ''];
  if (bounce) {
    lines.push(
      "I'm sorry to have to inform you that your message could not",
      'be delivered to one or more recipients. Its header is attached below.',
    );
  } else {
    const hours = (now.getTime() - input.arrivalDate.getTime()) / 3_600_000;
    const days = (retryUntil.getTime() - input.arrivalDate.getTime()) / 86_400_000;
    lines.push(
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      `Your message could not be delivered for ${hours.toFixed(1)} hours.`,
      `It will be retried until it is ${days.toFixed(1)} days old.`,
    );
  }
  lines.push(
    '',
    'For further assistance, please send mail to postmaster.',
    '',
    'If you do so, please include this problem report. You can',
    'delete your own text from the attached returned message.',
    '',
    '                   The mail system',
  );
  for (const r of failed) lines.push('', ...wrap(`<${oneLine(r.address)}>: ${explain(r)}`));
  if (bounce && delayed.length > 0) lines.push('', 'Delivery to these recipients is still being retried:');
  for (const r of delayed) lines.push('', ...wrap(`<${oneLine(r.address)}>: ${explain(r)}`));
  return lines.join('\n') + '\n';
}

// "host mx1.example.net said: 550 5.1.1 user unknown", as Postfix puts it.
function explain(r: DsnRecipient): string {
  const diagnostic = r.diagnostic ? oneLine(r.diagnostic) : '';
  const [type, text] = splitTyped(diagnostic);
  const [, mta] = r.remoteMta ? splitTyped(oneLine(r.remoteMta)) : ['', ''];
  if (text && type.toLowerCase() === 'smtp' && mta) return `host ${mta} said: ${text}`;
  if (text) return text;
  return `delivery ${r.action === 'failed' ? 'failed' : 'delayed'} (status ${r.status})`;
}

/** The message/delivery-status part: per-message block, then one per recipient. */
function deliveryStatus(input: DsnInput, retryUntil: Date): string {
  // RFC 3464 2.2: fields in the order of its grammar; extensions (X-) last.
  const message =
    (input.originalEnvelopeId ? field('Original-Envelope-Id', input.originalEnvelopeId) : '') +
    field('Reporting-MTA', `dns; ${input.reportingMta}`) +
    field('Arrival-Date', formatMessageDate(input.arrivalDate)) +
    field('X-Queue-ID', input.queueId);
  const blocks = input.recipients.map((r) => {
    // RFC 3464 2.3: Final-Recipient is address-type "; " address.
    let block = field('Final-Recipient', `rfc822; ${r.address}`) + field('Action', r.action) + field('Status', r.status);
    if (r.remoteMta) block += field('Remote-MTA', typed(r.remoteMta, 'dns'));
    if (r.diagnostic) block += field('Diagnostic-Code', typed(r.diagnostic, LOCAL_DIAGNOSTIC_TYPE));
    if (r.lastAttempt) block += field('Last-Attempt-Date', formatMessageDate(r.lastAttempt));
    // RFC 3464 2.3.9: only meaningful while we are still trying.
    if (r.action === 'delayed') block += field('Will-Retry-Until', formatMessageDate(retryUntil));
    return block;
  });
  // Blocks are separated by one blank line (RFC 3464 2.1).
  return [message, ...blocks].join('\n');
}

// "smtp; 550 ..." -> ['smtp', '550 ...']; no "type;" -> ['', whole].
function splitTyped(value: string): [string, string] {
  const match = /^([A-Za-z0-9-]+)\s*;\s*(.*)$/s.exec(value);
  return match ? [match[1], match[2]] : ['', value];
}

function typed(value: string, defaultType: string): string {
  const [type, text] = splitTyped(oneLine(value));
  return `${type || defaultType}; ${text}`;
}

/**
 * A header field, folded at spaces before 78 columns (RFC 5322 2.1.1, 2.2.3)
 * so a long remote reply cannot exceed the 998-octet line limit. Values
 * reach us from remote servers: newlines are flattened first so a reply can
 * never inject a field of its own.
 */
function field(name: string, value: string): string {
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of oneLine(value).split(' ')) {
    if (line.length + 1 + word.length > 78 && line.trim().length > name.length + 1) {
      lines.push(line);
      line = ''; // the space added next starts the continuation line
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines.join('\n') + '\n';
}

/** Wrap prose at 76 columns, continuation lines indented like Postfix's. */
function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > 76) {
      lines.push(line);
      line = '    ' + word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}

function oneLine(value: string): string {
  return value.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function stripTrailingNewlines(header: Buffer): Buffer {
  let end = header.length;
  while (end > 0 && (header[end - 1] === 0x0a || header[end - 1] === 0x0d)) end--;
  return header.subarray(0, end);
}

/**
 * The boundary must not occur in any part (RFC 2046 5.1.1). A random one
 * essentially never does, but we check, and pick again; an injected one
 * that collides is a test's mistake and throws.
 */
function chooseBoundary(input: DsnInput, parts: Buffer[]): string {
  const collides = (b: string) => parts.some((part) => part.includes(`--${b}`));
  if (input.boundary !== undefined) {
    // RFC 2046 5.1.1 bchars, 1 to 70 of them, not ending in a space.
    if (!/^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(input.boundary)) {
      throw new Error(`invalid MIME boundary: ${input.boundary}`);
    }
    if (collides(input.boundary)) throw new Error('the boundary occurs in the message');
    return input.boundary;
  }
  for (;;) {
    // Queue id (for a human reading the raw message) and 96 random bits; at most 55 chars.
    const boundary = `${input.queueId.replace(/[^0-9A-Za-z]/g, '').slice(0, 30)}.${randomBytes(12).toString('hex')}`;
    if (!collides(boundary)) return boundary;
  }
}
