// Loaded before the server's own code by the start command in package.json:
//
//     node --import ./src/compile-cache.mjs src/main.ts
//
// It turns on Node's compile cache, so that the TypeScript sources are
// type-stripped and compiled once, and read back from the cache at every
// later start.
//
// Why it matters on a small board: stripping types needs Node's TypeScript
// parser, a WebAssembly module that takes about 40 MB of memory once loaded
// and never gives it back. With the cache a restarted server, and the relay
// it starts, never load it: about 100 MB right after start without the
// cache, about 60 MB with it (README, Benchmarks; scripts/bench-budget.ts).
//
// This file is JavaScript on purpose: a .ts file here would need the parser
// itself. The cache lives in .compile-cache/ in the checkout, exactly as
// trusted as the sources it is made from; Node checks each entry against a
// hash of its source and ignores a stale one. Where the directory cannot be
// written (a read-only install), Node simply goes on without a cache.

import module from 'node:module';
import { fileURLToPath } from 'node:url';

module.enableCompileCache?.(fileURLToPath(new URL('../.compile-cache', import.meta.url)));
