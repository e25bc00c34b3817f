// `node scripts/bench-deaf-client.ts [--protocol pop3|smtp] [--connections 10]
//  [--megabytes 3] [--seconds 15]`
//
// Clients that send commands and never read the replies: how much memory
// does the server spend on them? Starts the project's server (a child
// process, throw-away data directory, one listener on loopback), then opens
// N connections that each write M megabytes of `CAPA` (POP3) or `NOOP`
// (SMTP) lines and never read. Prints the server's resident memory at rest,
// at its peak while the clients push, and two seconds after they are gone.
//
// With back-pressure (wire/connection.ts) the server stops reading a client
// whose replies pile up and cuts it off after the idle deadline, so the
// peak stays near the resting figure. Bounded: at most --seconds of load.

import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { startProjectServer, POP3_SETTINGS } from './lib/bench-server.ts';
import { failed, integer, UsageError } from './lib/args.ts';
import { runWhenStarted } from './lib/cli.ts';

const USAGE = 'usage: node scripts/bench-deaf-client.ts [--protocol pop3|smtp] [--connections N] [--megabytes M] [--seconds S]';

/** The server's resident set size in MiB, from /proc (Linux). */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Math.round((kib / 1024) * 10) / 10;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(argv: string[]): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        protocol: { type: 'string', default: 'pop3' },
        connections: { type: 'string', default: '10' },
        megabytes: { type: 'string', default: '3' },
        seconds: { type: 'string', default: '15' },
      },
    });
    const protocol = values.protocol;
    if (protocol !== 'pop3' && protocol !== 'smtp') throw new UsageError(`--protocol must be pop3 or smtp\n${USAGE}`);
    const connections = integer('--connections', values.connections, 1, 100);
    const megabytes = integer('--megabytes', values.megabytes, 1, 64);
    const seconds = integer('--seconds', values.seconds, 1, 120);

    const server = await startProjectServer({
      name: 'bench-deaf',
      listener: protocol,
      account: 'deaf',
      host: '127.0.0.1',
      parentDir: tmpdir(),
      nodeArgs: [],
      settings: { ...POP3_SETTINGS, limits: { maxConnectionsPerIp: connections, idleTimeoutSeconds: 5, pop3IdleTimeoutSeconds: 5 } },
    });
    try {
      await sleep(1000);
      const atRest = await rssMiB(server.pid);
      const line = protocol === 'pop3' ? 'CAPA\r\n' : 'NOOP\r\n';
      const data = Buffer.alloc(megabytes * 1024 * 1024, line);
      const sockets: Socket[] = [];
      for (let i = 0; i < connections; i++) {
        const socket = connect({ host: '127.0.0.1', port: server.port });
        socket.pause(); // never read a reply (so this side never notices a close, either)
        socket.on('error', () => {});
        socket.write(data);
        sockets.push(socket);
      }
      let peak = atRest;
      const stop = Date.now() + seconds * 1000;
      while (Date.now() < stop) {
        peak = Math.max(peak, await rssMiB(server.pid));
        await sleep(100);
      }
      const cutOff = (await server.logTail(1000)).split('\n').filter((l) => / timeout during=/.test(l)).length;
      for (const socket of sockets) socket.destroy();
      await sleep(2000);
      const after = await rssMiB(server.pid);
      console.log(`${protocol}: ${connections} clients x ${megabytes} MB of ${line.trim()} lines, never reading their replies`);
      console.log(`server RSS at rest        ${atRest} MiB`);
      console.log(`server RSS at peak        ${peak} MiB`);
      console.log(`server RSS 2 s after      ${after} MiB`);
      console.log(`clients the server timed out within ${seconds} s: ${cutOff} of ${connections}`);
    } finally {
      await server.stop();
    }
    return 0;
  } catch (err) {
    return failed('bench-deaf-client', err);
  }
}

runWhenStarted(import.meta.url, 'bench-deaf-client', main);
