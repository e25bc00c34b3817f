// scratch: POP3 server main-thread CPU per RETR, pipelined (window 16) and serial; copy to scripts/.poppipecpu.ts
import { readFileSync, readdirSync } from 'node:fs';
import { prepareProjectServer, POP3_SETTINGS } from './lib/bench-server.ts';
import { fillMailbox } from './lib/imap-mailbox.ts';
import { Pop3Client } from './lib/pop3-client.ts';
const server = await prepareProjectServer({ name: 'poppipecpu', listener: 'pop3', account: 'jjordan', password: 'pw', host: '127.0.0.1', parentDir: '/tmp', nodeArgs: (process.env.NARGS ?? '').split(' ').filter(Boolean), settings: POP3_SETTINGS });
await fillMailbox({ mboxPath: server.mboxPath, messages: 5000, averageSize: 5400, bigSize: 0, deadline: Date.now() + 60000 });
const run = await server.start();
const sched = () => Number(readFileSync(`/proc/${run.pid}/task/${run.pid}/schedstat`, 'utf8').split(' ')[0]);
const schedAll = () => readdirSync(`/proc/${run.pid}/task`).reduce((sum, t) => { try { return sum + Number(readFileSync(`/proc/${run.pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { return sum; } }, 0);
const deadline = Date.now() + 300000;
const c = await Pop3Client.open({ host: '127.0.0.1', port: run.port, tls: false, timeoutMs: 5000 });
await c.read(deadline);
await c.command('USER jjordan', deadline); await c.command('PASS pw', deadline);
async function pipe(total: number, window: number) {
  let sent = 0;
  for (; sent < Math.min(window, total); sent++) c.send(`RETR ${1 + (sent % 5000)}`, 'count');
  for (let done = 0; done < total; done++) { await c.read(deadline); if (sent < total) { c.send(`RETR ${1 + (sent % 5000)}`, 'count'); sent++; } }
}
await pipe(10000, 16);
const out: string[] = [];
for (const [name, n, w] of [['pipe', 10000, 16], ['serial', 3000, 1], ['pipe', 10000, 16]] as const) {
  const s0 = sched(); const a0 = schedAll();
  await pipe(n, w);
  out.push(`${name} main ${((sched() - s0) / 1e3 / n).toFixed(1)} all ${((schedAll() - a0) / 1e3 / n).toFixed(1)}`);
}
console.log((process.env.JJORDAN_BENCH_PROJECT ?? 'main').padEnd(14), out.join(' | '));
await server.remove();
process.exit(0);
