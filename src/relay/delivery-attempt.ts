// One attempt at the recipients of one domain: find the hosts to try
// (routing.ts), hand the message to the SMTP client host by host until one
// gives answers (RFC 5321 5.1), and record every recipient's result
// (recipient-results.ts). The runner calls this once per domain group.

import { isIP } from 'node:net';
import type { RecipientState } from '../queue/queue-state.ts';
import type { DeliveryRequest } from './smtp-client.ts';
import { messageContent } from './queued-message.ts';
import type { QueuedMessage } from './queued-message.ts';
import { nextHops } from './routing.ts';
import type { NextHop } from './routing.ts';
import { tlsPolicy } from './tls-policy.ts';
import { record, replyText } from './recipient-results.ts';
import type { RunnerDeps } from './runner-deps.ts';

/** Try the domain's hosts in order until one gives answers (RFC 5321 5.1). */
export async function deliverToDomain(deps: RunnerDeps, message: QueuedMessage, domain: string, recipients: RecipientState[]): Promise<void> {
  const { log } = deps;
  const hops = await nextHops(domain, deps);
  if (!Array.isArray(hops)) {
    // Our verdict (no DNS answer, no such domain, Null MX): no server said anything.
    const route = hops;
    const text = route.kind === 'permanent' && route.replyCode ? `${route.replyCode} ${route.status} ${route.reason}` : route.reason;
    for (const r of recipients) record(r, route.kind === 'permanent' ? 'failed' : 'pending', route.status, text);
    log.event('attempt', { id: message.envelope.id, domain, result: route.kind, reason: route.reason });
    return;
  }
  for (const hop of hops) {
    const outcome = await deps.deliver(deliveryRequest(deps, message, hop, recipients));
    if (outcome.kind === 'done') {
      // The client answers in the order it was asked: match by position, so
      // an address listed twice gets both of its results.
      for (const [i, result] of outcome.recipients.entries()) {
        const recipient = recipients[i];
        const text = replyText(result.reply);
        const status = result.delivered ? 'delivered' : result.permanent ? 'failed' : 'pending';
        record(recipient, status, result.reply.enhanced || (result.delivered ? '2.0.0' : result.permanent ? '5.0.0' : '4.0.0'), text, `dns; ${hop.host}`);
        log.event('attempt', { id: message.envelope.id, to: `<${result.address}>`, host: hop.host, reply: text });
      }
      return;
    }
    // A reply the server sent is quoted as the server's (Remote-MTA, smtp;);
    // anything else (no connection, a timeout, a check of ours) is our verdict.
    const text = outcome.reply ? replyText(outcome.reply) : `${outcome.stage}: ${outcome.error ?? 'failed'} (host ${hop.host})`;
    const remoteMta = outcome.reply ? `dns; ${hop.host}` : undefined;
    log.event('attempt', { id: message.envelope.id, domain, host: hop.host, stage: outcome.stage, reply: text });
    // A refusal of the transaction itself is final; anything at connection level tries the next host.
    const final = outcome.permanent && ['mail', 'rcpt', 'data', 'dot'].includes(outcome.stage);
    for (const r of recipients) {
      record(r, final ? 'failed' : 'pending', outcome.reply?.enhanced || outcome.status || (final ? '5.0.0' : '4.4.1'), text, remoteMta);
    }
    if (final) return;
  }
}

/** What the SMTP client needs for one host. */
function deliveryRequest(deps: RunnerDeps, message: QueuedMessage, hop: NextHop, recipients: RecipientState[]): DeliveryRequest {
  const { config } = deps;
  const smarthost = config.relay.smarthost;
  const viaSmarthost = smarthost.host !== '';
  return {
    host: hop.address,
    port: hop.port,
    // RFC 6066 3: SNI carries host names only, never an address (a smarthost given by IP, an address literal).
    servername: isIP(hop.host) || hop.host.startsWith('[') ? undefined : hop.host,
    heloName: config.hostname,
    from: message.envelope.from,
    recipients: recipients.map((r) => r.address),
    message: () => messageContent(message),
    size: message.wireSize,
    eightBit: message.envelope.body === '8bitmime',
    smtputf8: message.envelope.smtputf8,
    ...tlsPolicy(config.relay, deps.tlsCa),
    auth: viaSmarthost && smarthost.username ? { username: smarthost.username, password: smarthost.password } : undefined,
    log: conversationLog(deps, message.envelope.id),
  };
}

/**
 * With --trace, the SMTP client's conversation goes to the log as C:/S:
 * lines under the message's id (`relay[ID] C: MAIL FROM:<...>`), the way
 * the server traces its sessions. The client already hides credentials
 * (`AUTH PLAIN ****`). Its other lines (connecting, TLS established) are
 * events. Without --trace, no function: the client does not even format lines.
 */
function conversationLog(deps: RunnerDeps, id: string): DeliveryRequest['log'] {
  if (!deps.log.tracing) return undefined;
  const log = deps.log.child('relay', id);
  return (line) => {
    const spoken = /^([CS]): (.*)$/s.exec(line);
    if (spoken) log.trace(spoken[1] as 'C' | 'S', spoken[2]);
    else log.event('smtp', { note: line });
  };
}
