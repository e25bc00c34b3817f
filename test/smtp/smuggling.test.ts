// SMTP smuggling (2023): if a server ended DATA at something other than
// <CRLF>.<CRLF>, say a bare "\n.\n", a sender could hide a second message
// after it: "MAIL FROM:<evil@x>" and the rest would be run as commands, and
// the hidden message delivered as if it came from the sending server's own
// users. RFC 5321 4.1.1.4: only CRLF "." CRLF ends the data.
//
// Inbound, one test per sequence: the data holds the sequence followed by a
// complete second transaction. Exactly one message must be stored, holding
// the would-be commands as body text; the client hears exactly one reply for
// the whole DATA, and the next command's reply comes right after it.
//
// Bare LF and bare CR are both normalised to a line break on the way in (like
// Postfix's smtpd_forbid_bare_newline = normalize, extended to CR; the
// reasoning is in src/wire/data-reader.ts), so each test also pins down the
// exact bytes stored.
//
// Outbound, the same sequences as another program might have left them in a
// queue file: the relay delivers each to a fake server that records the raw
// bytes, and no line break reaches it other than CRLF, nor a dot after one
// that is not stuffed.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { openSession } from '../helpers/smtp-client.ts';
import { eventually, startTestServer } from '../helpers/test-server.ts';
import type { TestServer } from '../helpers/test-server.ts';
import { DataReader } from '../../src/wire/data-reader.ts';
import { startFakeServer } from '../relay/fake-smtp-server.ts';
import { queueMessage, relayEnv } from '../relay/relay-helpers.ts';

const HIDDEN = 'MAIL FROM:<evil@x>\r\nRCPT TO:<jjordan@localhost>\r\nDATA\r\n\r\nsmuggled\r\n';
/** The hidden commands as stored: CRLF became LF. */
const HIDDEN_STORED = 'MAIL FROM:<evil@x>\nRCPT TO:<jjordan@localhost>\nDATA\n\nsmuggled\n';

/** Each sequence, and what the stored body shows in its place after "before\n". */
const SEQUENCES: { name: string; sequence: string; stored: string }[] = [
  // A bare LF is a line break in the mailbox, but never the start of a line for the end marker.
  { name: '\\n.\\n', sequence: '\n.\n', stored: '\n.\n' },
  { name: '\\n.\\r\\n', sequence: '\n.\r\n', stored: '\n.\n' },
  // After a real CRLF the dot starts a line, but "." LF is not the end: the dot was stuffing.
  { name: '\\r\\n.\\n', sequence: '\r\n.\n', stored: '\n\n' },
  // A bare CR becomes a line break too, and is no line start either: the dot after it stays.
  { name: '\\r.\\r\\n', sequence: '\r.\r\n', stored: '\n.\n' },
  { name: '\\r\\n.\\r', sequence: '\r\n.\r', stored: '\n\n' },
  { name: '\\r.\\r', sequence: '\r.\r', stored: '\n.\n' },
  { name: '\\n.\\r', sequence: '\n.\r', stored: '\n.\n' },
  { name: '\\r\\n.\\r\\r\\n', sequence: '\r\n.\r\r\n', stored: '\n\n\n' },
  { name: '\\r\\n\\x00.\\r\\n', sequence: '\r\n\x00.\r\n', stored: '\n\x00.\n' },
];

async function serverFor(t: TestContext): Promise<TestServer> {
  const server = await startTestServer();
  t.after(() => server.close());
  return server;
}

for (const { name, sequence, stored } of SEQUENCES) {
  test(`"${name}" inside DATA does not end the message`, async (t) => {
    const server = await serverFor(t);
    const client = server.track(await openSession(server.port));
    assert.equal((await client.command('MAIL FROM:<honest@example.org>')).code, 250);
    assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.sendRaw(`Subject: smuggling test\r\n\r\nbefore\r\n${sequence}${HIDDEN}.\r\n`);
    const final = await client.readReply();
    assert.equal(final.code, 250);
    // The very next reply answers our NOOP: nothing hidden ran as a command.
    const noop = await client.command('NOOP');
    assert.deepEqual([noop.code, noop.lines[0]], [250, '2.0.0 Ok']);

    const messages = await server.messages('jjordan');
    assert.equal(messages.length, 1, 'exactly one message');
    assert.equal(messages[0].entry.envelopeFrom, 'honest@example.org');
    const content = messages[0].content.toString('latin1');
    const body = content.slice(content.indexOf('\n\n') + 2);
    assert.equal(body, `before\n${stored}${HIDDEN_STORED}`);
    assert.equal(server.logLines.filter((line) => / accepted id=/.test(line)).length, 1);
  });
}

test('data cut off after "\\n.\\n" is no message: no reply, and nothing stored when the client hangs up', async (t) => {
  // A server that stopped at "\n.\n" would answer 250 and store this; we must not.
  const server = await serverFor(t);
  const client = server.track(await openSession(server.port));
  assert.equal((await client.command('MAIL FROM:<honest@example.org>')).code, 250);
  assert.equal((await client.command('RCPT TO:<jjordan@localhost>')).code, 250);
  assert.equal((await client.command('DATA')).code, 354);
  client.sendRaw('Subject: cut\r\n\r\nbefore\r\n\n.\nQUIT\r\n');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(client.rest(), '', 'no reply: the message is not over');
  await client.close();
  await eventually(() => server.logLines.some((line) => / aborted /.test(line)), 'the session to end');
  assert.deepEqual(await server.messages('jjordan'), []);
});

// The same rule one level down, without sockets: the end-of-DATA reader must
// give the same answer however the bytes are cut into chunks.
test('the end-of-DATA reader finds the same end at every chunk split', () => {
  for (const { name, sequence, stored } of SEQUENCES) {
    const input = Buffer.from(`before\r\n${sequence}${HIDDEN}.\r\nQUIT\r\n`, 'latin1');
    const expected = `before\n${stored}${HIDDEN_STORED}`;
    const endAt = input.length - 'QUIT\r\n'.length;
    for (let cut = 0; cut <= input.length; cut++) {
      const reader = new DataReader();
      const out: Buffer[] = [];
      let used = 0;
      for (const piece of [input.subarray(0, cut), input.subarray(cut)]) {
        if (reader.done) break;
        const result = reader.push(piece);
        out.push(Buffer.from(result.output)); // copied: the reader reuses its output buffer
        used += result.used;
      }
      assert.equal(reader.done, true, `${name}, cut at ${cut}: end not found`);
      assert.equal(used, endAt, `${name}, cut at ${cut}: the end is at the final CRLF.CRLF`);
      assert.equal(Buffer.concat(out).toString('latin1'), expected, `${name}, cut at ${cut}`);
    }
  }
});

// --- Outbound: what the relay sends for whatever the store holds ----------

/** The definition the next hop applies: CRLF, CR and LF each end a line. */
const asLines = (text: string) => text.replace(/\r\n|\r|\n/g, '\n');

test('outbound: the relay sends every sequence with CRLF line ends only and every dot stuffed', async (t) => {
  const mx = await startFakeServer({ ehlo: ['PIPELINING', '8BITMIME'] });
  t.after(() => mx.close());
  const env = await relayEnv({ config: { relay: { port: mx.port } } });
  t.after(() => env.close());
  for (const [i, { name, sequence }] of SEQUENCES.entries()) {
    // As another program might have left it in the queue: raw CRs and LFs, unstuffed dots.
    const message = `Subject: smuggling test\n\nbefore\n${sequence}${HIDDEN}.\nafter\n`;
    const id = await queueMessage(env.dataDir, { to: ['friend@[127.0.0.1]'], message });
    assert.equal(await env.runner.processMessage(id), 'removed', name);
    const session = mx.sessions[i];
    assert.equal(session.messages.length, 1, `${name}: one message`);
    assert.deepEqual(session.commands.map((c) => c.line.split(/[ :]/)[0]), ['EHLO', 'MAIL', 'RCPT', 'DATA', 'QUIT'], `${name}: nothing ran as a command`);
    const raw = session.messages[0].toString('latin1');
    const body = raw.slice(0, -'.\r\n'.length);
    assert.doesNotMatch(body, /\r(?!\n)|(?<!\r)\n/, `${name}: every CR and LF the next hop sees is a CRLF`);
    const lines = body.split('\r\n').slice(0, -1);
    assert.ok(lines.every((line) => !line.startsWith('.') || line.startsWith('..')), `${name}: every line-leading dot is stuffed: ${JSON.stringify(raw)}`);
    assert.equal(lines.map((line) => (line.startsWith('.') ? line.slice(1) : line)).join('\n') + '\n', asLines(message), `${name}: the same lines`);
  }
});

test('outbound, the issue\'s example: "\\r.\\r" in the store reaches the next hop as a stuffed dot line', async (t) => {
  const mx = await startFakeServer({ ehlo: ['PIPELINING', 'SIZE 1000000'] });
  t.after(() => mx.close());
  const env = await relayEnv({ config: { relay: { port: mx.port } } });
  t.after(() => env.close());
  const id = await queueMessage(env.dataDir, { to: ['friend@[127.0.0.1]'], message: 'Subject: x\n\nbefore\r.\rafter\n' });
  assert.equal(await env.runner.processMessage(id), 'removed');
  assert.equal(mx.sessions[0].messages[0].toString('latin1'), 'Subject: x\r\n\r\nbefore\r\n..\r\nafter\r\n.\r\n');
  // SIZE= counts the message as it went out (RFC 1870), the bare CRs as CRLF.
  const mail = mx.sessions[0].commands.find((c) => c.line.startsWith('MAIL'))!.line;
  assert.equal(mail, `MAIL FROM:<jjordan@example.org> SIZE=${Buffer.byteLength('Subject: x\r\n\r\nbefore\r\n.\r\nafter\r\n')}`);
});
