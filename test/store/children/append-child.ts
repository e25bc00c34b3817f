// A process appending large (or small) messages to one mbox until it is
// killed, for append-crash.test.ts. Two appends run at once, so batches of one and of
// two messages both occur. Before each append it prints "start ID"; once the
// append has resolved (durable: the server would now answer 250) it prints
// "done ID". Writes to a pipe are synchronous in Node on Linux, so a line
// printed is a line the parent gets, even if SIGKILL follows at once.
//
//   node append-child.ts MBOX FIRST_ID [small]

import { MboxAppender } from '../../../src/store/mbox-append.ts';
import { CRASH_DATE, CRASH_SENDER, crashMessage } from './crash-messages.ts';

const [mbox, firstId, size] = process.argv.slice(2);
const small = size === 'small';
const appender = new MboxAppender();
let nextId = Number(firstId);

async function appendForever(): Promise<void> {
  for (;;) {
    const id = nextId++;
    const bytes = crashMessage(id, small);
    process.stdout.write(`start ${id}\n`);
    await appender.append(mbox, {
      envelopeFrom: CRASH_SENDER,
      date: CRASH_DATE,
      content: async function* () {
        for (let i = 0; i < bytes.length; i += 64 * 1024) yield bytes.subarray(i, i + 64 * 1024);
      },
    });
    process.stdout.write(`done ${id}\n`);
  }
}

await Promise.all([appendForever(), appendForever()]);
