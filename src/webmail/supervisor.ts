// The server starts the webmail as a child process, like the relay
// (child-supervisor.ts): restarted if it dies; stopped when the server ends,
// through its IPC channel (webmail/main.ts stops when the channel closes),
// so the server's own shutdown needs no step for it; SIGHUP is passed on so
// the certbot hook's reload reaches the webmail's certificate too.

import { fileURLToPath } from 'node:url';
import { superviseChild } from '../child-supervisor.ts';
import type { Supervisor } from '../child-supervisor.ts';
import type { Logger } from '../log.ts';

const WEBMAIL_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

export function superviseWebmail(args: string[], log: Logger): Supervisor {
  return superviseChild({ name: 'webmail', main: WEBMAIL_MAIN, args, ipc: true, forward: ['SIGHUP'] }, log);
}
