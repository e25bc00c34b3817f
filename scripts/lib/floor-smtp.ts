// The least an SMTP receiver written in Node must do to take mail in, as a
// floor to hold this project's server against (scripts/bench-budget.ts
// --floor). Not a mail server: no limits, no checks, no queue, no relay, no
// TLS, no logging; every address is local and a recipient's local part is
// the name of its mbox file in DIR.
//
//   node scripts/lib/floor-smtp.ts PORT DIR [--no-fsync] [--record] [--lock]
//
// (PORT 0: any free port.) Its first line of output says where it listens:
// "floor-smtp listening on 127.0.0.1:PORT, pid N".
//
// What it does keep is what a server must do with the same client:
//  - answer EHLO, MAIL, RCPT, DATA, RSET, NOOP and QUIT (RFC 5321 4.1.1),
//    one reply per command, and find the end of DATA (CRLF "." CRLF);
//  - store each message as the real server stores it: a "From " line, LF
//    line ends, the dots of dot-stuffing removed, ">From " quoting (mboxrd);
//  - make it durable before the 250 (unless --no-fsync: then it measures
//    the protocol and a write into the page cache, a ceiling no durable
//    server can pass with this client):
//    group commit per mbox, every message waiting for a file written in one
//    write and made durable by one fsync, then each one answered;
//  - with --record, before each batch, a 512-byte record rewritten in place
//    in a side file and fdatasync'd (what the real server's append journal
//    does for a small batch, src/store/append-journal.ts: a crash must never
//    leave half a message);
//  - with --lock, each batch under a dot-lock (a hard link to a stamp file,
//    then its removal; src/store/dotlock.ts), so mutt stays safe.
// The figures it gives (bench-budget's "floor" columns) say how far above
// the least work the real server is, and what no server can reach here.
//
// Safe: listens on 127.0.0.1 only; stops on SIGTERM.

import { fdatasync, fsync, link, openSync, unlink, write, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { promisify } from 'node:util';

const [portText, dir, ...flags] = process.argv.slice(2);
const durable = !flags.includes('--no-fsync');
const withRecord = flags.includes('--record');
const withLock = flags.includes('--lock');

const fsyncAsync = promisify(fsync);
const fdatasyncAsync = promisify(fdatasync);
const writeAsync = promisify(write);
const linkAsync = promisify(link);
const unlinkAsync = promisify(unlink);

const END_OF_DATA = Buffer.from('\r\n.\r\n');
const STAMP = `${dir}/.floor-stamp`;

/** One recipient's mbox: its open file and the messages waiting for the next write. */
interface Mbox {
  path: string;
  fd: number;
  recordFd: number;
  size: number;
  waiting: { bytes: Buffer; answer: () => void }[];
  writing: boolean;
}

const mboxes = new Map<string, Mbox>();

function mboxOf(local: string): Mbox {
  let mbox = mboxes.get(local);
  if (!mbox) {
    const path = `${dir}/${local}`;
    const fd = openSync(path, 'a');
    const recordFd = withRecord ? openSync(`${dir}/.${local}.record`, 'w') : -1;
    mbox = { path, fd, recordFd, size: 0, waiting: [], writing: false };
    mboxes.set(local, mbox);
  }
  return mbox;
}

/** Group commit: everything waiting goes in one write and one fsync, then every sender hears 250. */
async function commit(mbox: Mbox): Promise<void> {
  if (mbox.writing) return; // the running loop takes what arrives meanwhile
  mbox.writing = true;
  while (mbox.waiting.length > 0) {
    const batch = mbox.waiting.splice(0);
    const bytes = Buffer.concat(batch.map((m) => m.bytes));
    if (withLock) await linkAsync(STAMP, `${mbox.path}.lock`);
    if (withRecord) {
      const record = Buffer.alloc(512, ' ');
      record.write(`batch start=${mbox.size} end=${mbox.size + bytes.length}\n`);
      writeSync(mbox.recordFd, record, 0, record.length, 0);
      await fdatasyncAsync(mbox.recordFd);
    }
    await writeAsync(mbox.fd, bytes);
    mbox.size += bytes.length;
    if (durable) await fsyncAsync(mbox.fd);
    if (withLock) await unlinkAsync(`${mbox.path}.lock`);
    for (const message of batch) message.answer();
  }
  mbox.writing = false;
}

/** The DATA as an mbox entry: From line, LF line ends, dots unstuffed, From lines quoted. */
function mboxEntry(data: Buffer): Buffer {
  const text = data
    .toString('latin1')
    .replaceAll('\r\n', '\n')
    .replaceAll('\n..', '\n.')
    .replace(/^(>*From )/gm, '>$1');
  return Buffer.from(`From floor@localhost ${new Date().toUTCString()}\n${text}\n`, 'latin1');
}

function session(socket: Socket): void {
  let input: Buffer = Buffer.alloc(0);
  let inData = false;
  let recipient = '';
  socket.on('error', () => socket.destroy());
  socket.write('220 floor ESMTP\r\n');
  socket.on('data', (chunk: Buffer) => {
    input = input.length > 0 ? Buffer.concat([input, chunk]) : chunk;
    for (;;) {
      if (inData) {
        const end = input.indexOf(END_OF_DATA);
        if (end < 0) return;
        const entry = mboxEntry(input.subarray(0, end + 2));
        input = input.subarray(end + END_OF_DATA.length);
        inData = false;
        const mbox = mboxOf(recipient);
        mbox.waiting.push({ bytes: entry, answer: () => socket.write('250 stored\r\n') });
        void commit(mbox);
        continue;
      }
      const lf = input.indexOf(0x0a);
      if (lf < 0) return;
      const line = input.toString('latin1', 0, lf).trimEnd();
      input = input.subarray(lf + 1);
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') socket.write('250-floor\r\n250 8BITMIME\r\n');
      else if (verb === 'MAIL' || verb === 'RSET' || verb === 'NOOP') socket.write('250 ok\r\n');
      else if (verb === 'RCPT') {
        recipient = /<([^@>/]+)@/.exec(line)?.[1] ?? 'nobody';
        socket.write('250 ok\r\n');
      } else if (verb === 'DATA') {
        inData = true;
        socket.write('354 end with .\r\n');
      } else if (verb === 'QUIT') {
        socket.end('221 bye\r\n');
        return;
      } else socket.write('500 not here\r\n');
    }
  });
}

if (withLock) writeFileSync(STAMP, `${process.pid}\n`);
const server = createServer(session);
server.listen(Number(portText), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  console.log(`floor-smtp listening on 127.0.0.1:${port}, pid ${process.pid}`);
});
process.on('SIGTERM', () => process.exit(0));
