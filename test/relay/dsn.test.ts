// Bounce and delay reports (src/relay/dsn.ts), read back the way a mail
// reader or a bounce processor would: split at the boundary, each part's
// Content-Type checked, the delivery-status fields parsed into blocks. Then
// Python's `email` package parses the same bytes, as an independent MIME
// reader (skipped without python3).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { buildDsn, shouldBounce } from '../../src/relay/dsn.ts';
import type { DsnInput } from '../../src/relay/dsn.ts';

const ORIGINAL_HEADER = 'Received: from client.example.org\n\tby mail.example.org\nFrom: J Jordan <jjordan@example.org>\nSubject: lunch?\nMessage-ID: <abc@example.org>\n\n';

function failedInput(extra: Partial<DsnInput> = {}): DsnInput {
  return {
    reportingMta: 'mail.example.org',
    postmaster: 'MAILER-DAEMON@mail.example.org',
    to: 'jjordan@example.org',
    originalEnvelopeId: 'QQ314159',
    queueId: 'MWRA1B2C0003',
    arrivalDate: new Date('2026-11-22T03:05:51Z'),
    now: new Date('2026-11-22T03:10:00Z'),
    boundary: 'TESTBOUNDARY',
    recipients: [
      {
        address: 'friend@example.net',
        action: 'failed',
        status: '5.1.1',
        diagnostic: 'smtp; 550 5.1.1 user unknown',
        remoteMta: 'dns; mx1.example.net',
        lastAttempt: new Date('2026-11-22T03:09:58Z'),
      },
    ],
    originalHeader: Buffer.from(ORIGINAL_HEADER),
    ...extra,
  };
}

const delayedInput = (): DsnInput =>
  failedInput({
    now: new Date('2026-11-22T07:05:51Z'),
    recipients: [
      {
        address: 'slow@example.com',
        action: 'delayed',
        status: '4.4.1',
        // No connection, so no reply: our own verdict, with no Remote-MTA.
        diagnostic: 'connect to mx.example.com[192.0.2.1]:25: Connection timed out',
      },
    ],
  });

interface Part {
  header: Map<string, string>;
  body: string;
}

/** Header fields, unfolded (RFC 5322 2.2.3), keyed by lower-case name. */
function parseFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.replace(/\n[ \t]/g, ' ').split('\n').filter(Boolean)) {
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `not a field: ${line}`);
    fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return fields;
}

function splitPart(text: string): Part {
  const blank = text.indexOf('\n\n');
  return { header: parseFields(text.slice(0, blank)), body: text.slice(blank + 2) };
}

/** The message header and its parts, by the boundary its Content-Type names. */
function parseReport(message: Buffer): { header: Map<string, string>; parts: Part[] } {
  const { header, body } = splitPart(message.toString('utf8'));
  const boundary = /boundary="([^"]+)"/.exec(header.get('content-type') ?? '')?.[1];
  assert.ok(boundary, 'a boundary parameter');
  const pieces = body.split(`\n--${boundary}`);
  assert.equal(pieces.at(-1), '--\n', 'ends with the close delimiter');
  // pieces[0] is the preamble; each part starts after the delimiter's newline.
  const parts = pieces.slice(1, -1).map((piece) => {
    assert.ok(piece.startsWith('\n'));
    return splitPart(piece.slice(1));
  });
  return { header, parts };
}

/** message/delivery-status: blocks of fields separated by blank lines. */
function statusBlocks(body: string): Map<string, string>[] {
  return body.trimEnd().split('\n\n').map(parseFields);
}

test('a bounce: header fields', () => {
  const { header } = parseReport(buildDsn(failedInput()));
  assert.equal(header.get('from'), '"Mail Delivery System" <MAILER-DAEMON@mail.example.org>');
  assert.equal(header.get('to'), '<jjordan@example.org>');
  assert.equal(header.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.equal(header.get('date'), 'Sun, 22 Nov 2026 03:10:00 +0000');
  assert.match(header.get('message-id') ?? '', /^<[^<>\s]+@mail\.example\.org>$/);
  assert.equal(header.get('auto-submitted'), 'auto-replied');
  assert.equal(header.get('mime-version'), '1.0');
  assert.equal(header.get('content-type'), 'multipart/report; report-type=delivery-status; boundary="TESTBOUNDARY"');
  assert.equal(header.get('content-transfer-encoding'), '7bit');
});

test('a bounce: three parts, their types, and every status field', () => {
  const message = buildDsn(failedInput());
  assert.ok(!message.includes('\r'), 'LF line endings only');
  const { parts } = parseReport(message);
  assert.deepEqual(
    parts.map((p) => p.header.get('content-type')),
    ['text/plain; charset=us-ascii', 'message/delivery-status', 'text/rfc822-headers'],
  );

  const [perMessage, recipient, ...rest] = statusBlocks(parts[1].body);
  assert.equal(rest.length, 0);
  assert.deepEqual(Object.fromEntries(perMessage), {
    'original-envelope-id': 'QQ314159',
    'reporting-mta': 'dns; mail.example.org',
    'arrival-date': 'Sun, 22 Nov 2026 03:05:51 +0000',
    'x-queue-id': 'MWRA1B2C0003',
  });
  assert.deepEqual(Object.fromEntries(recipient), {
    'final-recipient': 'rfc822; friend@example.net',
    action: 'failed',
    status: '5.1.1',
    'remote-mta': 'dns; mx1.example.net',
    'diagnostic-code': 'smtp; 550 5.1.1 user unknown',
    'last-attempt-date': 'Sun, 22 Nov 2026 03:09:58 +0000',
  });

  const text = parts[0].body;
  assert.match(text, /This is the mail system at host mail\.example\.org\./);
  assert.match(text, /could not\nbe delivered/);
  assert.match(text, /<friend@example\.net>: host mx1\.example\.net said: 550 5\.1\.1 user unknown/);

  // The original header, whole, without the blank line that ended it.
  assert.equal(parts[2].body, ORIGINAL_HEADER.trimEnd() + '\n');
});

test('a delay warning: subject, wording, Action delayed and Will-Retry-Until', () => {
  const { header, parts } = parseReport(buildDsn(delayedInput()));
  assert.equal(header.get('subject'), 'Delayed Mail (still being retried)');
  const text = parts[0].body;
  assert.match(text, /THIS IS A WARNING ONLY/);
  assert.match(text, /could not be delivered for 4\.0 hours\.\nIt will be retried until it is 5\.0 days old\./);
  assert.match(text, /<slow@example\.com>: connect to mx\.example\.com\[192\.0\.2\.1\]:25: Connection\n {4}timed out/);
  const [, recipient] = statusBlocks(parts[1].body);
  assert.deepEqual(Object.fromEntries(recipient), {
    'final-recipient': 'rfc822; slow@example.com',
    action: 'delayed',
    status: '4.4.1',
    'diagnostic-code': 'X-jjordan-mail; connect to mx.example.com[192.0.2.1]:25: Connection timed out',
    'will-retry-until': 'Fri, 27 Nov 2026 03:05:51 +0000', // arrival + 5 days
  });
  const explicit = parseReport(buildDsn({ ...delayedInput(), willRetryUntil: new Date('2026-11-24T00:00:00Z') }));
  assert.equal(statusBlocks(explicit.parts[1].body)[1].get('will-retry-until'), 'Tue, 24 Nov 2026 00:00:00 +0000');
});

test('failed and delayed recipients in one report: a bounce listing both', () => {
  const input = failedInput();
  input.recipients.push(...delayedInput().recipients);
  const { header, parts } = parseReport(buildDsn(input));
  assert.equal(header.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.match(parts[0].body, /still being retried:\n\n<slow@example\.com>/);
  const actions = statusBlocks(parts[1].body).slice(1).map((b) => b.get('action'));
  assert.deepEqual(actions, ['failed', 'delayed']);
  assert.equal(statusBlocks(parts[1].body)[1].get('will-retry-until'), undefined, 'not for a failed recipient');
});

test('remote text cannot inject fields, and long values are folded', () => {
  const long = `smtp; 550-5.1.1 first line\r\n550 5.1.1 ${'very '.repeat(40)}long\nInjected: yes`;
  const input = failedInput();
  input.recipients[0].diagnostic = long;
  const message = buildDsn(input).toString();
  assert.ok(!/^Injected:/m.test(message), 'no line starts a new field');
  assert.ok(message.split('\n').every((line) => line.length <= 78), 'every line within 78 columns');
  const { parts } = parseReport(Buffer.from(message));
  assert.match(statusBlocks(parts[1].body)[1].get('diagnostic-code') ?? '', /^smtp; 550-5\.1\.1 first line 550 5\.1\.1 very very/);
});

test('8-bit original headers make the report 8bit', () => {
  const input = failedInput({ originalHeader: Buffer.from('Subject: caf\u00e9\n') });
  const { header, parts } = parseReport(buildDsn(input));
  assert.equal(header.get('content-transfer-encoding'), '8bit');
  assert.equal(parts[2].body, 'Subject: caf\u00e9\n');
});

test('boundaries: random ones differ, a colliding injected one is refused', () => {
  const boundaryOf = (m: Buffer) => /boundary="([^"]+)"/.exec(m.toString())?.[1];
  const a = boundaryOf(buildDsn(failedInput({ boundary: undefined })));
  const b = boundaryOf(buildDsn(failedInput({ boundary: undefined })));
  assert.ok(a && b && a !== b && a.startsWith('MWRA1B2C0003.'));
  assert.throws(() => buildDsn(failedInput({ originalHeader: Buffer.from('X-Trap: --TESTBOUNDARY\n') })), /boundary occurs/);
  assert.throws(() => buildDsn(failedInput({ boundary: 'bad"boundary' })), /invalid MIME boundary/);
});

test('bad input is refused', () => {
  assert.throws(() => buildDsn(failedInput({ recipients: [] })), /at least one recipient/);
  const input = failedInput();
  input.recipients[0].status = '550';
  assert.throws(() => buildDsn(input), /bad status code/);
});

test('shouldBounce: never to the null sender or to other bounce senders', () => {
  assert.equal(shouldBounce(''), false);
  assert.equal(shouldBounce('<>'), false);
  assert.equal(shouldBounce('MAILER-DAEMON@example.net'), false);
  assert.equal(shouldBounce('mailer-daemon@example.net'), false);
  assert.equal(shouldBounce('MAILER-DAEMON'), false);
  assert.equal(shouldBounce('#@[]'), false);
  assert.equal(shouldBounce('jjordan@example.org'), true);
  assert.equal(shouldBounce('postmaster@example.org'), true);
  assert.equal(shouldBounce('daemon@example.org'), true);
});

const python = spawnSync('python3', ['-c', 'import email'], { encoding: 'utf8' });
const havePython = python.status === 0;

// Prints the structure Python sees, as JSON.
const PARSE_REPORT = `
import email, json, sys
from email import policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
parts = m.get_payload()
status = parts[1].get_payload()
print(json.dumps({
  "type": m.get_content_type(),
  "report_type": m.get_param("report-type"),
  "defects": [str(d) for d in m.defects] + [str(d) for p in parts for d in p.defects],
  "parts": [p.get_content_type() for p in parts],
  "blocks": [dict(b.items()) for b in status],
  "text": parts[0].get_content(),
  "original_subject": email.message_from_string(parts[2].get_payload())["Subject"],
}))
`;

test('Python email parses it as multipart/report with 3 parts', { skip: !havePython && 'python3 not available' }, () => {
  for (const input of [failedInput(), delayedInput()]) {
    const run = spawnSync('python3', ['-c', PARSE_REPORT], { input: buildDsn(input), encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    const seen = JSON.parse(run.stdout);
    assert.equal(seen.type, 'multipart/report');
    assert.equal(seen.report_type, 'delivery-status');
    assert.deepEqual(seen.defects, []);
    assert.deepEqual(seen.parts, ['text/plain', 'message/delivery-status', 'text/rfc822-headers']);
    assert.equal(seen.blocks.length, 2);
    assert.equal(seen.blocks[0]['Reporting-MTA'], 'dns; mail.example.org');
    assert.equal(seen.blocks[1]['Action'], input.recipients[0].action);
    assert.equal(seen.blocks[1]['Status'], input.recipients[0].status);
    assert.match(seen.text, new RegExp(`<${input.recipients[0].address}>`));
    assert.equal(seen.original_subject, 'lunch?');
  }
});
