// What the small setup commands (make-cert.ts, dkim-keygen.ts,
// dns-records.ts, mailq.ts) do alike: run `main` when started as a program,
// answer a bad command line with the usage and exit status 2, and check
// whether a file they would replace is already there.

import { stat } from 'node:fs/promises';
import { startedDirectly } from '../../src/cli.ts';

const EXIT_USAGE = 2;

/**
 * When the module at `moduleUrl` (pass `import.meta.url`) is the program Node
 * was started with: runs `main` on the arguments, its result the exit
 * status; an error it throws prints "program: message" and exits with 1.
 */
export function runWhenStarted(moduleUrl: string, program: string, main: (argv: string[]) => Promise<number>): void {
  if (!startedDirectly(moduleUrl)) return;
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      console.error(`${program}: ${err.message}`);
      process.exitCode = 1;
    },
  );
}

/**
 * The command's `usageError(message, showUsage = true)`: prints
 * "program: message" on stderr, then the usage unless told not to, and
 * returns the exit status for a bad command line.
 */
export function usageErrorFor(program: string, usage: string): (message: string, showUsage?: boolean) => number {
  return (message, showUsage = true) => {
    console.error(showUsage ? `${program}: ${message}\n${usage}` : `${program}: ${message}`);
    return EXIT_USAGE;
  };
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
