// Transcript tests, in the manner of chasquid's .cmy files: each file in
// test/transcripts/ is a conversation replayed against a live server, and
// doubles as a worked example of the protocol for a reader.
//
// The format, one item per line:
//
//     # text       a comment (what the transcript shows)
//     C: text      the client sends `text` CRLF. Consecutive C: lines go out
//                  in one write, which is how pipelining looks on the wire.
//                  "C:" alone sends an empty line.
//     S: text      the server must send exactly this line next. A final `*`
//                  matches any rest of the line (ids, dates); `<any>`
//                  matches any text in the middle of one (IMAP's lines end
//                  in real `*`s too). "S:" alone is an empty line.
//     S: <closed>  the server must close the connection here, having sent
//                  nothing more. Every transcript ends with it.
//
// Every transcript gets a fresh server: hostname mx.example.org, mail
// accepted for example.org, accounts jjordan, alice and bob, the aliases
// "postmaster: jjordan" and "team: alice, bob", a 10 MiB size limit and
// otherwise the default limits. Files named `pop3-*.txt` and `imap-*.txt`
// talk to the POP3 and IMAP ports, with logins in clear allowed from
// loopback and two messages already in jjordan's INBOX (see MAILDROP
// below); the others talk SMTP on port 25.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '../helpers/smtp-client.ts';
import { startTestServer } from '../helpers/test-server.ts';
import { MboxAppender } from '../../src/store/mbox-append.ts';

const DIR = join(import.meta.dirname, '..', 'transcripts');

type Step =
  | { kind: 'send'; lines: string[]; lineNo: number }
  | { kind: 'expect'; text: string; lineNo: number }
  | { kind: 'closed'; lineNo: number };

function parse(name: string, text: string): Step[] {
  const steps: Step[] = [];
  let comment = false;
  text.split('\n').forEach((line, i) => {
    const lineNo = i + 1;
    if (line === '' || line.startsWith('#')) {
      comment ||= line.startsWith('# ');
      return;
    }
    const client = /^C:(?: (.*))?$/.exec(line);
    if (client) {
      const last = steps[steps.length - 1];
      if (last?.kind === 'send') last.lines.push(client[1] ?? '');
      else steps.push({ kind: 'send', lines: [client[1] ?? ''], lineNo });
      return;
    }
    if (line === 'S: <closed>') {
      steps.push({ kind: 'closed', lineNo });
      return;
    }
    const server = /^S:(?: (.*))?$/.exec(line);
    if (server) {
      steps.push({ kind: 'expect', text: server[1] ?? '', lineNo });
      return;
    }
    throw new Error(`${name}:${lineNo}: not a C:, S: or # line: ${JSON.stringify(line)}`);
  });
  if (!comment) throw new Error(`${name}: start with a # comment saying what the transcript shows`);
  if (steps[steps.length - 1]?.kind !== 'closed') throw new Error(`${name}: must end with "S: <closed>"`);
  return steps;
}

function matches(expected: string, actual: string): boolean {
  if (expected.includes('<any>')) {
    const pattern = expected.split('<any>').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    return new RegExp(`^${pattern}$`).test(actual);
  }
  return expected.endsWith('*') ? actual.startsWith(expected.slice(0, -1)) : actual === expected;
}

/** jjordan's INBOX for the POP3 transcripts: fixed bytes, so sizes and contents are known. */
const MAILDROP = [
  'From: alice@example.net\nTo: jjordan@example.org\nSubject: hello\n\nFirst message.\n.A line that starts with a dot.\n',
  'From: bob@example.net\nTo: jjordan@example.org\nSubject: second\n\nLine one.\nLine two.\nLine three.\n',
];

async function fillMaildrop(mboxPath: string): Promise<void> {
  const appender = new MboxAppender();
  for (const text of MAILDROP) {
    const content = Buffer.from(text);
    await appender.append(mboxPath, { envelopeFrom: 'sender@example.net', date: new Date('2026-11-22T03:05:51Z'), content: async function* () { yield content; } });
  }
}

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.txt'))
  .sort();

test('the transcripts directory is not empty', () => {
  assert.ok(files.length >= 4, `found ${files.join(', ')}`);
});

for (const file of files) {
  test(`transcript ${file}`, async (t) => {
    const steps = parse(file, readFileSync(join(DIR, file), 'utf8'));
    const server = await startTestServer({
      accounts: [
        { name: 'jjordan', password: 'j' },
        { name: 'alice', password: 'a' },
        { name: 'bob', password: 'b' },
      ],
      aliases: 'postmaster: jjordan\nteam: alice, bob\n',
      config: {
        hostname: 'mx.example.org',
        domains: ['example.org'],
        limits: { maxMessageBytes: 10 * 1024 * 1024 },
        auth: { allowPlaintextOnLoopback: true },
      },
    });
    t.after(() => server.close());
    const protocol = /^(pop3|imap)-/.exec(file)?.[1] ?? 'smtp';
    if (protocol !== 'smtp') await fillMaildrop(server.mboxPath('jjordan'));
    const port = { smtp: server.port, pop3: server.server.pop3.ports.pop3, imap: server.server.imap.ports.imap }[protocol]!;
    const client = server.track(await connect(port));
    const seen: string[] = []; // the conversation so far, for the failure message
    for (const step of steps) {
      const where = `${file}:${step.lineNo}`;
      if (step.kind === 'send') {
        client.sendRaw(step.lines.map((line) => line + '\r\n').join(''));
        seen.push(...step.lines.map((line) => `C: ${line}`));
      } else if (step.kind === 'expect') {
        const line = await client.readLine().catch((err: Error) => `(${err.message})`);
        assert.ok(
          line !== null && matches(step.text, line),
          `${where}: expected\n  S: ${step.text}\nbut got\n  ${line === null ? '(connection closed)' : `S: ${line}`}\nafter\n  ${seen.join('\n  ')}`,
        );
        seen.push(`S: ${line}`);
      } else {
        const line = await client.readLine().catch((err: Error) => `(${err.message})`);
        assert.equal(line, null, `${where}: expected the server to close the connection, got ${JSON.stringify(line)}`);
      }
    }
  });
}
