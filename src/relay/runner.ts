// The queue runner: the heart of the relay process. For each queued message
// that is due, it groups the recipients still pending by domain, finds where
// each domain's mail goes (MX records, mx.ts; or the smarthost), hands the
// message to the SMTP client (smtp-client.ts), and records every
// recipient's result in the message's state file. Then:
//   - every recipient has a final result: bounce the failures (dsn.ts) to the
//     sender, unless the sender is <>, and remove the message;
//   - some are still pending: schedule the next attempt (schedule.ts), or,
//     once the message is too old, fail them as expired (4.4.7) and bounce.
// Invariant: a message leaves the queue only after every recipient has a
// final result, and the state is saved after every attempt.

import { open } from 'node:fs/promises';
import { readRange } from '../store/file-io.ts';
import { findHeaderEnd } from '../mime/header.ts';
import { isIP } from 'node:net';
import type { FileHandle } from 'node:fs/promises';
import type { Config } from '../config.ts';
import { newId } from '../queue/queue-id.ts';
import type { Logger } from '../log.ts';
import { parseQueueEnvelope, writeQueueFile } from '../queue/queue-file.ts';
import type { QueueEnvelope } from '../queue/queue-file.ts';
import { listQueue, messagePath, readState, removeQueued, writeState } from '../queue/queue-state.ts';
import type { QueueState, RecipientState } from '../queue/queue-state.ts';
import { routeFor } from './mx.ts';
import type { MxResolver } from './mx.ts';
import type { DeliveryOutcome, DeliveryRequest } from './smtp-client.ts';
import { buildDsn, LOCAL_DIAGNOSTIC_TYPE, shouldBounce } from './dsn.ts';
import type { DsnRecipient } from './dsn.ts';
import { dkimSign, fromDomain } from './dkim.ts';
import type { DkimKey } from './dkim.ts';
import { DotWriter } from '../wire/dot-writer.ts';
import { delayWarningDue, isExpired, nextAttemptAt, retryDelayMs } from './schedule.ts';

export interface RunnerDeps {
  dataDir: string;
  config: Config;
  resolver: MxResolver;
  deliver: (request: DeliveryRequest) => Promise<DeliveryOutcome>;
  /** Deliver a notice into a local sender's mbox; false when the address is not local. */
  deliverLocally: (address: string, message: Buffer) => Promise<boolean>;
  log: Logger;
  /** DKIM keys by signing domain, lower case (relay.dkim.keys). */
  dkimKeys: Map<string, DkimKey>;
  /** CA certificates trusted instead of the system's (relay.caFile), PEM. */
  tlsCa?: Buffer;
  now?: () => Date;
  random?: () => number;
}

/** A queued message opened for one run: envelope, and where its bytes are. */
interface Opened {
  envelope: QueueEnvelope;
  file: FileHandle;
  bodyOffset: number;
  bodyBytes: number;
  /** Octets on the wire (CRLF, signature included), for SIZE=; set once the message is due. */
  wireSize: number;
  header: Buffer;
  /** `DKIM-Signature: ...` (LF line endings) to put in front, or empty. */
  signature: Buffer;
}

const HEAD_LIMIT = 1024 * 1024;

export class QueueRunner {
  private readonly deps: RunnerDeps;
  private readonly busy = new Set<string>();
  /** Messages whose last attempt threw (see processMessage): not retried before this time (ms). */
  private readonly failedUntil = new Map<string, number>();

  constructor(deps: RunnerDeps) {
    this.deps = deps;
  }

  private now(): Date {
    return this.deps.now ? this.deps.now() : new Date();
  }

  /** Attempt every message that is due (all of them when `force`, as `mailq --flush` asks). */
  async runDue(force = false): Promise<void> {
    const ids = (await listQueue(this.deps.dataDir)).filter((id) => !this.busy.has(id));
    for (const id of this.failedUntil.keys()) if (!ids.includes(id) && !this.busy.has(id)) this.failedUntil.delete(id);
    const queue = [...ids];
    const worker = async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        await this.processMessage(id, force).catch((err: Error) => this.deps.log.event('error', { id, error: err.message }));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.deps.config.relay.concurrency) }, worker));
  }

  /** One attempt at one message, if it is due. */
  async processMessage(id: string, force = false): Promise<'removed' | 'deferred' | 'not-due'> {
    if (this.busy.has(id)) return 'not-due';
    this.busy.add(id);
    let opened: Opened | null = null;
    try {
      if (!force && (this.failedUntil.get(id) ?? 0) > this.now().getTime()) return 'not-due';
      opened = await openQueued(this.deps.dataDir, id);
      const { envelope } = opened;
      const state = await readState(this.deps.dataDir, envelope);
      if (!force && new Date(state.nextAttempt) > this.now()) return 'not-due';
      const pending = state.recipients.filter((r) => r.status === 'pending');
      const byDomain = new Map<string, RecipientState[]>();
      // By domain, since each domain has its own servers; through a smarthost, all in one session.
      const viaSmarthost = this.deps.config.relay.smarthost.host !== '';
      for (const recipient of pending) {
        const domain = viaSmarthost ? '' : recipient.address.slice(recipient.address.lastIndexOf('@') + 1).toLowerCase();
        byDomain.set(domain, [...(byDomain.get(domain) ?? []), recipient]);
      }
      if (byDomain.size > 0) {
        opened.signature = await this.sign(opened);
        // RFC 1870: SIZE= counts what is sent (line ends as CRLF), the signature too.
        // Counted by the writer that will send it, so the two always agree.
        // Counted only now, for a message that is due: not on every scan of the queue.
        const counter = new DotWriter();
        for await (const chunk of this.content(opened)) counter.push(chunk);
        counter.end();
        opened.wireSize = counter.messageOctets;
      }
      for (const [domain, recipients] of byDomain) await this.deliverDomain(opened, domain, recipients);
      const result = await this.afterAttempt(opened, state);
      this.failedUntil.delete(id);
      return result;
    } catch (err) {
      // A corrupt file, a full disk: leave the message for the admin, and do
      // not try it again (nor log it again) at every scan; --flush still does.
      this.failedUntil.set(id, this.now().getTime() + retryDelayMs(1));
      throw err;
    } finally {
      await opened?.file.close().catch(() => {});
      this.busy.delete(id);
    }
  }

  /** Try the domain's hosts in order until one gives answers (RFC 5321 5.1). */
  private async deliverDomain(opened: Opened, domain: string, recipients: RecipientState[]): Promise<void> {
    const { config, log } = this.deps;
    const smarthost = config.relay.smarthost;
    let destinations: { host: string; address: string; port: number }[];
    if (smarthost.host) {
      destinations = [{ host: smarthost.host, address: smarthost.host, port: smarthost.port }];
    } else {
      const route = await routeFor(domain, this.deps.resolver, { random: this.deps.random });
      if (route.kind !== 'deliver') {
        // Our verdict (no DNS answer, no such domain, Null MX): no server said anything.
        const text = route.kind === 'permanent' && route.replyCode ? `${route.replyCode} ${route.status} ${route.reason}` : route.reason;
        for (const r of recipients) record(r, route.kind === 'permanent' ? 'failed' : 'pending', route.status, text);
        log.event('attempt', { id: opened.envelope.id, domain, result: route.kind, reason: route.reason });
        return;
      }
      destinations = route.destinations.map((d) => ({ host: d.host, address: d.address, port: config.relay.port }));
    }
    for (const destination of destinations) {
      const outcome = await this.deps.deliver(this.request(opened, destination, recipients));
      if (outcome.kind === 'done') {
        // The client answers in the order it was asked: match by position, so
        // an address listed twice gets both of its results.
        for (const [i, result] of outcome.recipients.entries()) {
          const recipient = recipients[i];
          const text = `${result.reply.code} ${result.reply.enhanced} ${result.reply.text}`.replace(/ +/g, ' ');
          const status = result.delivered ? 'delivered' : result.permanent ? 'failed' : 'pending';
          record(recipient, status, result.reply.enhanced || (result.delivered ? '2.0.0' : result.permanent ? '5.0.0' : '4.0.0'), text, `dns; ${destination.host}`);
          log.event('attempt', { id: opened.envelope.id, to: `<${result.address}>`, host: destination.host, reply: text });
        }
        return;
      }
      // A reply the server sent is quoted as the server's (Remote-MTA, smtp;);
      // anything else (no connection, a timeout, a check of ours) is our verdict.
      const text = outcome.reply
        ? `${outcome.reply.code} ${outcome.reply.enhanced} ${outcome.reply.text}`.replace(/ +/g, ' ')
        : `${outcome.stage}: ${outcome.error ?? 'failed'} (host ${destination.host})`;
      const remoteMta = outcome.reply ? `dns; ${destination.host}` : undefined;
      log.event('attempt', { id: opened.envelope.id, domain, host: destination.host, stage: outcome.stage, reply: text });
      // A refusal of the transaction itself is final; anything at connection level tries the next host.
      const final = outcome.permanent && ['mail', 'rcpt', 'data', 'dot'].includes(outcome.stage);
      for (const r of recipients) {
        record(r, final ? 'failed' : 'pending', outcome.reply?.enhanced || outcome.status || (final ? '5.0.0' : '4.4.1'), text, remoteMta);
      }
      if (final) return;
    }
  }

  private request(opened: Opened, destination: { host: string; address: string; port: number }, recipients: RecipientState[]): DeliveryRequest {
    const { config } = this.deps;
    const smarthost = config.relay.smarthost;
    const viaSmarthost = smarthost.host !== '';
    return {
      host: destination.address,
      port: destination.port,
      // RFC 6066 3: SNI carries host names only, never an address (a smarthost given by IP, an address literal).
      servername: isIP(destination.host) || destination.host.startsWith('[') ? undefined : destination.host,
      heloName: config.hostname,
      from: opened.envelope.from,
      recipients: recipients.map((r) => r.address),
      message: () => this.content(opened),
      size: opened.wireSize,
      eightBit: opened.envelope.body === '8bitmime',
      smtputf8: opened.envelope.smtputf8,
      ...this.tlsPolicy(),
      auth: viaSmarthost && smarthost.username ? { username: smarthost.username, password: smarthost.password } : undefined,
      log: this.conversationLog(opened.envelope.id),
    };
  }

  /**
   * With --trace, the SMTP client's conversation goes to the log as C:/S:
   * lines under the message's id (`relay[ID] C: MAIL FROM:<...>`), the way
   * the server traces its sessions. The client already hides credentials
   * (`AUTH PLAIN ****`). Its other lines (connecting, TLS established) are
   * events. Without --trace, no function: the client does not even format lines.
   */
  private conversationLog(id: string): DeliveryRequest['log'] {
    if (!this.deps.log.tracing) return undefined;
    const log = this.deps.log.child('relay', id);
    return (line) => {
      const spoken = /^([CS]): (.*)$/s.exec(line);
      if (spoken) log.trace(spoken[1] as 'C' | 'S', spoken[2]);
      else log.event('smtp', { note: line });
    };
  }

  /**
   * How to use TLS with the next hop. A smarthost gets our password, so its
   * certificate is verified unless the config says otherwise (RFC 8314 4.1;
   * Postfix's "secure" level). An MX gets opportunistic TLS (RFC 7435), or,
   * with relay.verifyCertificates, mandatory TLS with a verified certificate
   * (Postfix's "verify" level: verifying is pointless if a missing STARTTLS
   * is accepted instead).
   */
  private tlsPolicy(): Pick<DeliveryRequest, 'tls' | 'verifyCertificate' | 'ca'> {
    const { relay } = this.deps.config;
    const ca = this.deps.tlsCa;
    if (relay.smarthost.host !== '') {
      return { tls: relay.smarthost.tls === 'implicit' ? 'implicit' : 'required', verifyCertificate: relay.smarthost.verifyCertificate, ca };
    }
    const verify = relay.verifyCertificates;
    return { tls: relay.requireTls || verify ? 'required' : 'opportunistic', verifyCertificate: verify, ca };
  }

  /**
   * A DKIM-Signature (RFC 6376) with the key of the From: domain, so d= is
   * the domain the reader sees (DMARC alignment, RFC 7489 3.1.1). No key for
   * that domain: no signature, rather than one for another domain. If
   * signing fails the mail goes out unsigned, and the log says why: a broken
   * key must not hold up the queue.
   */
  private async sign(opened: Opened): Promise<Buffer> {
    const { dkimKeys, log } = this.deps;
    const domain = fromDomain(opened.header);
    const key = domain === null ? undefined : dkimKeys.get(domain);
    if (!key) return Buffer.alloc(0);
    const headerBytes = opened.header.length + 1; // the header and its blank line
    const body = readRange(opened.file, opened.bodyOffset + headerBytes, Math.max(0, opened.bodyBytes - headerBytes));
    try {
      const field = await dkimSign(opened.header, body, key);
      return Buffer.from(field.replace(/\r\n/g, '\n'));
    } catch (err) {
      log.event('dkim-failed', { id: opened.envelope.id, error: (err as Error).message });
      return Buffer.alloc(0);
    }
  }

  /** The message as sent: the DKIM-Signature, if any, then the stored bytes. */
  private async *content(opened: Opened): AsyncIterable<Buffer> {
    if (opened.signature.length > 0) yield opened.signature;
    yield* readRange(opened.file, opened.bodyOffset, opened.bodyBytes);
  }

  /** Save the results; bounce final failures; schedule, expire or remove. */
  private async afterAttempt(opened: Opened, state: QueueState): Promise<'removed' | 'deferred'> {
    const { config, dataDir } = this.deps;
    const { envelope } = opened;
    const now = this.now();
    state.attempts++;
    state.lastAttempt = now.toISOString();
    const pending = state.recipients.filter((r) => r.status === 'pending');
    if (pending.length > 0 && isExpired(envelope.arrived, now, config.relay.maxAgeHours)) {
      for (const r of pending) record(r, 'failed', '4.4.7', `message expired after ${config.relay.maxAgeHours} hours; last error: ${r.lastReply ?? 'none'}`);
    } else if (pending.length > 0 && delayWarningDue(envelope.arrived, now, config.relay.delayWarningHours, state.delayWarned)) {
      state.delayWarned = await this.tryNotify(opened, pending, 'delayed');
    }
    const toBounce = state.recipients.filter((r) => r.status === 'failed' && !r.notified);
    if (toBounce.length > 0 && (await this.tryNotify(opened, toBounce, 'failed'))) {
      for (const r of toBounce) r.notified = true;
    }
    // A bounce that could not be written keeps the message (and its state) for the next attempt.
    if (state.recipients.every((r) => r.status === 'delivered' || (r.status === 'failed' && r.notified))) {
      await removeQueued(dataDir, envelope.id);
      this.deps.log.event('done', { id: envelope.id, delivered: state.recipients.filter((r) => r.status === 'delivered').length, failed: toBounce.length });
      return 'removed';
    }
    state.nextAttempt = nextAttemptAt(now, state.attempts).toISOString();
    await writeState(dataDir, envelope.id, state);
    this.deps.log.event('deferred', { id: envelope.id, pending: state.recipients.filter((r) => r.status === 'pending').length, next: state.nextAttempt });
    return 'deferred';
  }

  /**
   * notify(), but a failure (a full disk, a locked INBOX) is logged and
   * reported as false instead of thrown: the results of this attempt must
   * still be saved, or the recipients just delivered would get it again.
   */
  private async tryNotify(opened: Opened, recipients: RecipientState[], action: 'failed' | 'delayed'): Promise<boolean> {
    try {
      await this.notify(opened, recipients, action);
      return true;
    } catch (err) {
      this.deps.log.event('bounce-failed', { id: opened.envelope.id, action, error: (err as Error).message });
      return false;
    }
  }

  /** A delivery status notification to the sender (RFC 3464), never to <> (RFC 5321 4.5.5). */
  private async notify(opened: Opened, recipients: RecipientState[], action: 'failed' | 'delayed'): Promise<void> {
    const { envelope } = opened;
    const { config, log } = this.deps;
    if (!shouldBounce(envelope.from)) {
      log.event('no-bounce', { id: envelope.id, reason: 'null sender', action });
      return;
    }
    const dsnRecipients: DsnRecipient[] = recipients.map((r) => ({
      address: r.address,
      action,
      status: r.statusCode ?? (action === 'failed' ? '5.0.0' : '4.0.0'),
      // RFC 3464 2.3.6: smtp; only quotes a remote server, and only then is there a Remote-MTA.
      diagnostic: r.lastReply ? `${r.remoteMta ? 'smtp' : LOCAL_DIAGNOSTIC_TYPE}; ${r.lastReply}` : undefined,
      remoteMta: r.remoteMta,
      lastAttempt: this.now(),
    }));
    const dsn = buildDsn({
      reportingMta: config.hostname,
      postmaster: `MAILER-DAEMON@${config.hostname}`,
      to: envelope.from,
      queueId: envelope.id,
      arrivalDate: envelope.arrived,
      recipients: dsnRecipients,
      originalHeader: opened.header,
      willRetryUntil: new Date(envelope.arrived.getTime() + config.relay.maxAgeHours * 3_600_000),
      now: this.now(),
    });
    if (await this.deps.deliverLocally(envelope.from, dsn)) {
      log.event('bounce', { id: envelope.id, action, to: `<${envelope.from}>`, delivered: 'local' });
      return;
    }
    const id = newId();
    // 8BITMIME only when the report carries 8-bit bytes (from the original header), or it could not go to a 7-bit server.
    const body = dsn.some((byte) => byte > 0x7f) ? '8bitmime' : '7bit';
    await writeQueueFile(this.deps.dataDir, { id, from: '', to: [envelope.from], arrived: this.now(), auth: '', body, smtputf8: false }, async function* () {
      yield dsn;
    });
    log.event('bounce', { id: envelope.id, action, to: `<${envelope.from}>`, queued: id });
  }
}

/**
 * A recipient's latest result. `remoteMta` names the server only when
 * `reply` is what that server said; for our own verdicts (no route, no
 * connection, expired) there is none, and a stale one is cleared.
 */
function record(recipient: RecipientState, status: RecipientState['status'], statusCode: string, reply: string, remoteMta?: string): void {
  recipient.status = status;
  recipient.statusCode = statusCode;
  recipient.lastReply = reply;
  if (remoteMta) recipient.remoteMta = remoteMta;
  else delete recipient.remoteMta;
}

/** Open a queue file: its envelope and its header (for DKIM and bounces). */
async function openQueued(dataDir: string, id: string): Promise<Opened> {
  const file = await open(messagePath(dataDir, id), 'r');
  try {
    const { size } = await file.stat();
    const head = Buffer.alloc(Math.min(size, HEAD_LIMIT));
    await file.read(head, 0, head.length, 0);
    const { envelope, bodyOffset } = parseQueueEnvelope(head);
    // The state file and the removal go by envelope.id: a file under another
    // name (copied, renamed) would otherwise be delivered again and again.
    if (envelope.id !== id) throw new Error(`queue file ${id}.msg holds message ${envelope.id}`);
    const message = head.subarray(bodyOffset);
    const end = findHeaderEnd(message);
    const header = end ? message.subarray(0, end.headerLength) : message;
    const bodyBytes = size - bodyOffset;
    return { envelope, file, bodyOffset, bodyBytes, wireSize: 0, header: Buffer.from(header), signature: Buffer.alloc(0) };
  } catch (err) {
    await file.close();
    throw err;
  }
}
