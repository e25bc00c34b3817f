// Small helpers shared by the command-line programs (the server, adduser,
// the scripts).

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * True when the module at `moduleUrl` (pass `import.meta.url`) is the program
 * Node was started with, not a module a test imported. (`import.meta.main`
 * does this on Node 24; comparing real paths also works on Node 22.)
 */
export function startedDirectly(moduleUrl: string): boolean {
  if (process.argv[1] === undefined) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
