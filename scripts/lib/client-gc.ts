// The benchmark client's own garbage, collected between measurements.
//
// A phase that keeps 50,000 FETCH lines leaves the client's heap large; a
// full collection of it (5–9 ms) may then start inside a later phase's
// timed commands, and the round trip it delays would count against the
// server. Collecting before each timed part keeps the client's pauses out
// of the figures, for this server and any other measured alike.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A full collection of this process's heap, now. */
export function collectClientGarbage(): void {
  gc();
}
