// `npm run adduser -- NAME [--data DIR] [--config FILE]`: create an account
// or change its password.
//
// At a terminal it asks for the password twice without echoing it. With a
// pipe (`echo secret | npm run adduser -- jjordan`, handy in scripts) it
// reads the first line of stdin. The password never appears on the command
// line, where other users could see it in `ps`.
//
// The running server notices the changed passwd file within a second, so no
// restart is needed.
//
// The data directory follows the server's rule (config.ts): --data, else the
// config's dataDir, else /var/lib/jjordan-mail when run as root and ./spool
// otherwise. Run as root, it first becomes the owner of that directory (the
// user the server runs as; privileges.ts), so the files it writes belong to
// the server and root never writes into a directory another user controls.

import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { accountDir, isValidAccountName } from '../store/paths.ts';
import { addAccount } from './account-writer.ts';
import { startedDirectly } from '../cli.ts';
import { loadConfig, dataDirOf, ConfigError } from '../config.ts';
import type { Config } from '../config.ts';
import { becomeOwnerOf, checkDataDirReachable, createDataDir, isRoot, lookupIds, restrictUmask } from '../privileges.ts';

const USAGE = 'usage: npm run adduser -- NAME [--data DIR] [--config FILE]';

// Exit codes: 2 for a usage mistake (like most Unix tools), 130 for
// Ctrl-C (128 + SIGINT, what a shell reports for an interrupted program).
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

/** Run the command; returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { data: { type: 'string' }, config: { type: 'string' } },
    });
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (args.positionals.length !== 1) return usageError('expected exactly one account name');
  const name = args.positionals[0];
  if (!isValidAccountName(name)) {
    return usageError(`invalid account name ${JSON.stringify(name)}: use lowercase a-z, 0-9, '.', '_', '-' (up to 64, starting with a letter or digit)`);
  }

  let config: Config;
  try {
    config = loadConfig(args.values.config);
  } catch (err) {
    if (err instanceof ConfigError) return usageError(err.message);
    throw err;
  }
  const dataDir = args.values.data ? resolve(args.values.data) : dataDirOf(config);
  restrictUmask(); // passwd and mailboxes are private, as the server makes them
  if (isRoot()) {
    // Before the server's first start, the directory is made as the server would make it.
    if (config.runAs.user) await createDataDir(dataDir, lookupIds(config.runAs.user, config.runAs.group));
    becomeOwnerOf(dataDir);
    checkDataDirReachable(dataDir, userInfo().username);
  }

  let password: string;
  if (process.stdin.isTTY) {
    // Ask twice, so a typo does not lock the user out.
    const first = await askHidden('Password: ');
    if (first === null) return EXIT_INTERRUPTED;
    if (first === '') return usageError('the password must not be empty', false);
    const second = await askHidden('Again: ');
    if (second === null) return EXIT_INTERRUPTED;
    if (second !== first) return usageError('the passwords do not match', false);
    password = first;
  } else {
    password = await readFirstLine();
  }
  if (password === '') return usageError('the password must not be empty', false);

  const outcome = await addAccount(dataDir, name, password);
  if (outcome === 'added') console.log(`added account ${name} (mail in ${accountDir(dataDir, name)})`);
  else console.log(`changed password of ${name}`);
  return 0;
}

// Print the problem (and the usage line, for mistakes on the command line).
function usageError(message: string, showUsage = true): number {
  console.error(showUsage ? `adduser: ${message}\n${USAGE}` : `adduser: ${message}`);
  return EXIT_USAGE;
}

// Read one line from the terminal in raw mode, so the terminal does not echo
// the keys; we handle Enter, Backspace and Ctrl-C ourselves. Returns null
// on Ctrl-C.
function askHidden(prompt: string): Promise<string | null> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((done) => {
    let typed: string[] = []; // code points, so Backspace removes a whole character
    const finish = (result: string | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      done(result);
    };
    const onData = (chunk: string) => {
      // Cursor and function keys send escape sequences; ignore them whole.
      if (chunk.startsWith('\x1b')) return;
      for (const ch of chunk) {
        if (ch === '\x03') return finish(null); // Ctrl-C
        if (ch === '\r' || ch === '\n' || ch === '\x04') return finish(typed.join('')); // Enter, Ctrl-D
        if (ch === '\x7f' || ch === '\b') typed = typed.slice(0, -1); // Backspace
        else if (ch === '\x15') typed = []; // Ctrl-U clears the line
        else if (ch >= ' ') typed.push(ch); // other control keys are ignored
      }
    };
    stdin.on('data', onData);
  });
}

// Read the first line of a pipe, without the line ending. We stop at the
// first newline rather than waiting for end of input.
async function readFirstLine(): Promise<string> {
  // Collect bytes and decode once: a chunk may end inside a UTF-8 character.
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if ((chunk as Buffer).includes(0x0a)) break;
  }
  return Buffer.concat(chunks).toString('utf8').split('\n')[0].replace(/\r$/, '');
}

if (startedDirectly(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      console.error(`adduser: ${err.message}`);
      process.exitCode = 1;
    },
  );
}
