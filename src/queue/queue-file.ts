// The outbound queue: mail our users send to other domains waits here until
// the relay process (src/relay/) delivers it. The SMTP server writes a queue
// file before it answers 250; the relay reads it. They share this module and
// nothing else.
//
// Layout, under the data directory:
//
//     queue/<id>.msg    one message: envelope, blank line, message (immutable)
//     queue/<id>.state  per-recipient results, written by the relay (later)
//     queue/tmp/        files being written; never read by the relay
//
// A .msg file is a few `key value` lines, a blank line, then the message
// exactly as it will be sent (header then body), with LF line endings, no
// dot-stuffing and no mbox quoting; the relay adds CRLF and dot-stuffing on
// the wire. Example:
//
//     jjordan-queue 1
//     id MWRA1B2C0003
//     from jjordan@example.org
//     to friend@example.net
//     to other@example.com
//     arrived 2026-11-22T03:05:51.123Z
//     auth jjordan
//     body 8bitmime
//     smtputf8 no
//
//     Received: from ...
//     Subject: hello
//     ...
//
// `from` is empty for the null sender. A value is the rest of its line after
// the first space, taken as it is, so an address may hold spaces: RFC 5321
// 4.1.2 allows a quoted local part such as `"john smith"@example.net`, and
// Postfix accepts and queues those, so we do too. What a line cannot carry
// is a line end, and RFC 5321's Mailbox grammar (smtp/address.ts) has none:
// every address RCPT accepts fits here unchanged, in the form the relay
// sends on in its own RCPT TO.
//
// Durability: written to queue/tmp/, fsync'd, renamed into queue/ and the
// directory fsync'd, so the relay sees a complete file or none, and a crash
// after our 250 cannot lose it (the same steps as safeio.ts, streamed).
// The SMTP server does it in two steps (prepareQueueFile, then commit once
// the local copies are stored), so that a message answered 4xx leaves no
// copy in the queue either (smtp/receive.ts).

import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory } from '../store/safeio.ts';

export const QUEUE_FORMAT_VERSION = 1;

export interface QueueEnvelope {
  id: string;
  /** '' for the null sender `<>`. */
  from: string;
  to: string[];
  arrived: Date;
  /** The account that submitted the message, '' if none. */
  auth: string;
  body: '7bit' | '8bitmime';
  smtputf8: boolean;
}

export function queueDir(dataDir: string): string {
  return join(dataDir, 'queue');
}

/** Where a queue file is written before it is committed (the relay never looks here; the server empties it at start). */
export function queueTmpDir(dataDir: string): string {
  return join(queueDir(dataDir), 'tmp');
}

function envelopeText(envelope: QueueEnvelope): string {
  const lines = [
    `jjordan-queue ${QUEUE_FORMAT_VERSION}`,
    `id ${envelope.id}`,
    `from ${envelope.from}`,
    ...envelope.to.map((rcpt) => `to ${rcpt}`),
    `arrived ${envelope.arrived.toISOString()}`,
    `auth ${envelope.auth}`,
    `body ${envelope.body}`,
    `smtputf8 ${envelope.smtputf8 ? 'yes' : 'no'}`,
  ];
  return lines.join('\n') + '\n\n';
}

/** A queue file written and fsync'd in queue/tmp/, not yet visible to the relay. */
export interface PreparedQueueFile {
  /** Move it into queue/ (rename, fsync the directory); resolves with its path. */
  commit(): Promise<string>;
  /** Remove it: the message is not queued after all. */
  discard(): Promise<void>;
}

/** Addresses that a one-line `key value` entry can carry: anything without a line end. */
export function canQueueAddress(address: string): boolean {
  return !/[\r\n\0]/.test(address);
}

/** Write one message into the queue, durably. Resolves with the file's path. */
export async function writeQueueFile(
  dataDir: string,
  envelope: QueueEnvelope,
  content: () => AsyncIterable<Buffer>,
): Promise<string> {
  return (await prepareQueueFile(dataDir, envelope, content)).commit();
}

/**
 * The first step of writeQueueFile: the whole file, fsync'd, in queue/tmp/,
 * where the relay never looks. A failure leaves nothing behind.
 */
export async function prepareQueueFile(
  dataDir: string,
  envelope: QueueEnvelope,
  content: () => AsyncIterable<Buffer>,
): Promise<PreparedQueueFile> {
  if (!/^[A-Za-z0-9]+$/.test(envelope.id)) throw new Error(`bad queue id ${envelope.id}`);
  for (const address of [envelope.from, ...envelope.to]) {
    if (!canQueueAddress(address)) throw new Error('queue addresses cannot contain line ends');
  }
  const dir = queueDir(dataDir);
  const tmpDir = queueTmpDir(dataDir);
  await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const tmpPath = join(tmpDir, `${envelope.id}.msg`);
  const finalPath = join(dir, `${envelope.id}.msg`);
  const file = await open(tmpPath, 'w', 0o600);
  try {
    await file.write(envelopeText(envelope));
    for await (const chunk of content()) await file.write(chunk);
    await file.sync();
  } catch (err) {
    await file.close().catch(() => {});
    await unlink(tmpPath).catch(() => {});
    throw err;
  }
  await file.close();
  return {
    async commit() {
      try {
        await rename(tmpPath, finalPath);
      } catch (err) {
        await unlink(tmpPath).catch(() => {});
        throw err;
      }
      try {
        await fsyncDirectory(dir);
      } catch (err) {
        // Not durable, so the caller will not acknowledge it: take it back.
        await unlink(finalPath).catch(() => {});
        throw err;
      }
      return finalPath;
    },
    async discard() {
      await unlink(tmpPath).catch(() => {});
    },
  };
}

/** Parse the envelope at the start of a queue file's text; `bodyOffset` is where the message starts. */
export function parseQueueEnvelope(head: Buffer): { envelope: QueueEnvelope; bodyOffset: number } {
  const end = head.indexOf('\n\n');
  if (end < 0) throw new Error('queue file: no end of envelope');
  const lines = head.subarray(0, end).toString('utf8').split('\n');
  if (lines[0] !== `jjordan-queue ${QUEUE_FORMAT_VERSION}`) throw new Error('queue file: unknown format');
  const envelope: QueueEnvelope = { id: '', from: '', to: [], arrived: new Date(0), auth: '', body: '7bit', smtputf8: false };
  for (const line of lines.slice(1)) {
    const space = line.indexOf(' ');
    const key = space < 0 ? line : line.slice(0, space);
    const value = space < 0 ? '' : line.slice(space + 1);
    if (key === 'id') envelope.id = value;
    else if (key === 'from') envelope.from = value;
    else if (key === 'to') envelope.to.push(value);
    else if (key === 'arrived') envelope.arrived = new Date(value);
    else if (key === 'auth') envelope.auth = value;
    else if (key === 'body') envelope.body = value === '8bitmime' ? '8bitmime' : '7bit';
    else if (key === 'smtputf8') envelope.smtputf8 = value === 'yes';
    else throw new Error(`queue file: unknown key ${key}`);
  }
  if (!envelope.id || envelope.to.length === 0) throw new Error('queue file: missing id or recipients');
  // An unreadable date would make the message never expire.
  if (Number.isNaN(envelope.arrived.getTime())) throw new Error('queue file: bad arrived date');
  return { envelope, bodyOffset: end + 2 };
}
