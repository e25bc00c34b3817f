// Event lines on stdout go out together, in writes of whole lines of at most
// PIPE_BUF (4096) bytes, rather than one write per line; none is lost when
// the process exits with lines still waiting (process.exit right after
// logging).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LOG = fileURLToPath(new URL('../../src/log.ts', import.meta.url));

test('a burst of events is one write, and every line is there, in order, after process.exit', async () => {
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOG)});
    const writes = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (chunk, ...rest) => { writes.push(String(chunk)); return write(chunk, ...rest); };
    const log = createLogger({}, 'test');
    for (let i = 0; i < 300; i++) log.event('first', { n: i });
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    const firstTurn = writes.splice(0);
    for (let i = 0; i < 300; i++) log.child('smtp', 'S1').event('second', { n: i });
    process.stderr.write(JSON.stringify(firstTurn));
    process.exit(0); // the second burst is still waiting: the exit must send it
  `;
  const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script]);
  const lines = stdout.trimEnd().split('\n');
  assert.equal(lines.length, 600);
  lines.forEach((line, i) => {
    const expected = i < 300 ? ` test first n=${i}` : ` smtp[S1] second n=${i - 300}`;
    assert.ok(line.endsWith(expected), `line ${i}: ${line}`);
  });
  const firstTurn: string[] = JSON.parse(stderr);
  const bytes = firstTurn.reduce((sum, text) => sum + Buffer.byteLength(text), 0);
  assert.ok(firstTurn.length <= Math.ceil(bytes / 4096) + 1, `${firstTurn.length} writes for ${bytes} bytes`);
  for (const text of firstTurn) assert.ok(Buffer.byteLength(text) <= 4096 && text.endsWith('\n'), 'whole lines, at most PIPE_BUF bytes');
});
