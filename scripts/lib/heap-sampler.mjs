// Loaded into the server by scripts/bench-budget.ts (`--import`) for its
// growth run: every second, one JSON line with the process's memory as V8
// and Node see it (the heap in use and committed, memory outside the heap)
// goes to the file named by JJORDAN_HEAP_SAMPLES. RSS is read from /proc by
// the benchmark itself; this adds what only the process can tell.
//
// JavaScript, not TypeScript, so that loading it does not load Node's
// TypeScript parser into the server it measures (see src/compile-cache.mjs).

import { appendFileSync } from 'node:fs';

const file = process.env.JJORDAN_HEAP_SAMPLES;
if (file) {
  setInterval(() => {
    const m = process.memoryUsage();
    const line = { at: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
    appendFileSync(file, JSON.stringify(line) + '\n');
  }, 1000).unref();
}
