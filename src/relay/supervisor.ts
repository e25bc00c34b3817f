// The server keeps the relay running as a child process (child-supervisor.ts:
// restarted with a growing delay if it dies, stopped with the server). The
// relay drops root itself (relay/main.ts), so it may be started before the
// server does.

import { fileURLToPath } from 'node:url';
import { superviseChild } from '../child-supervisor.ts';
import type { Supervisor } from '../child-supervisor.ts';
import type { Logger } from '../log.ts';

export type { Supervisor } from '../child-supervisor.ts';

const RELAY_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

export function superviseRelay(args: string[], log: Logger): Supervisor {
  return superviseChild({ name: 'relay', main: RELAY_MAIN, args }, log);
}
