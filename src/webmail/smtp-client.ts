// The webmail's SMTP submission client (RFC 6409): hands a message the user
// wrote to the mail server's submission port, logged in as that user, the
// way Thunderbird does. It is the relay's SMTP client (relay/smtp-client.ts,
// which a learner reads step by step) with submission's settings:
//
// - TLS always: implicit on 465 (RFC 8314 3.3) or STARTTLS on 587, never
//   clear text, and the server's certificate verified, because the user's
//   password follows (RFC 8314 4.1);
// - AUTH PLAIN with the user's own credentials (RFC 4954), so the server
//   applies its rules for that user: which From addresses are theirs,
//   message size, where the mail goes;
// - no retries: the person is waiting for the answer and can try again.
// - XCLIENT ADDR with the browser's address where the server offers it
//   (to trusted clients only, as Postfix does): failed logins then count
//   against that browser, not against the webmail, as IMAP's ID does.

import { deliverMessage } from '../relay/smtp-client.ts';
import type { DeliveryOutcome } from '../relay/smtp-client.ts';

export interface SubmissionServer {
  host: string;
  port: number;
  tls: 'implicit' | 'starttls';
  /** The name the server's certificate must carry. */
  servername: string;
  /** PEM certificates to trust instead of the system's list. */
  ca?: string;
  /** The longest wait for any step. */
  timeoutMs: number;
}

export interface Submission {
  username: string;
  password: string;
  /** Envelope sender (MAIL FROM). */
  from: string;
  recipients: string[];
  /** The message with CRLF line ends, and its size in octets. */
  message: () => AsyncIterable<Buffer>;
  size: number;
  /** Our name for EHLO. */
  heloName: string;
  /** The browser's address, for XCLIENT ADDR. */
  clientAddress?: string;
}

export type SubmissionResult =
  /** Accepted for these recipients; `refused` lists the others with the server's reason. */
  | { ok: true; refused: { address: string; reason: string }[] }
  | { ok: false; reason: string };

export async function submitMessage(server: SubmissionServer, submission: Submission, log?: (line: string) => void): Promise<SubmissionResult> {
  const outcome: DeliveryOutcome = await deliverMessage({
    host: server.host,
    port: server.port,
    servername: server.servername,
    heloName: submission.heloName,
    from: submission.from,
    recipients: submission.recipients,
    message: submission.message,
    size: submission.size,
    // The webmail writes 7-bit messages (quoted-printable, base64, encoded-words).
    eightBit: false,
    smtputf8: [submission.from, ...submission.recipients].some((address) => /[^\x00-\x7f]/.test(address)),
    tls: server.tls === 'implicit' ? 'implicit' : 'required',
    verifyCertificate: true,
    ca: server.ca,
    auth: { username: submission.username, password: submission.password },
    xclientAddress: submission.clientAddress,
    timeouts: { connectMs: server.timeoutMs, greetingMs: server.timeoutMs, commandMs: server.timeoutMs, dataStartMs: server.timeoutMs, dataBlockMs: server.timeoutMs, dataEndMs: server.timeoutMs },
    log,
  });
  if (outcome.kind === 'failed') {
    const said = outcome.reply ? `${outcome.reply.code} ${outcome.reply.text}` : (outcome.error ?? 'failed');
    return { ok: false, reason: `${outcome.stage}: ${said}` };
  }
  const refused = outcome.recipients.filter((r) => !r.delivered).map((r) => ({ address: r.address, reason: `${r.reply.code} ${r.reply.text}` }));
  if (refused.length === outcome.recipients.length) return { ok: false, reason: refused.map((r) => `${r.address}: ${r.reason}`).join('; ') };
  return { ok: true, refused };
}
