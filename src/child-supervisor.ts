// Keeping a helper program running as a child process of the server (the
// relay, the webmail): restarted with a growing delay if it dies (1 s,
// doubling to a minute; back to 1 s once it has stayed up for a minute),
// stopped with the server. Children drop root themselves (relay/main.ts,
// webmail/main.ts), so they may be started before the server does.
//
// With `ipc`, the child also has a channel to us: when this process ends,
// however it ends, the channel closes and the child stops too (the webmail
// listens for that, so the server needs no code to stop it). Signals in
// `forward` (SIGHUP) are passed on.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import module from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Logger } from './log.ts';

const COMPILE_CACHE = fileURLToPath(new URL('./compile-cache.mjs', import.meta.url));

/**
 * The Node options a child shares with the server: the compile cache
 * (src/compile-cache.mjs) if the server runs with it, and the heap sizes of
 * the start command (package.json). Nothing else: a debugger port or a
 * profiler the server was started with is not the child's business.
 */
export function childNodeOptions(serverOptions: readonly string[], compileCacheOn = module.getCompileCacheDir?.() !== undefined): string[] {
  const heapSizes = serverOptions.filter((option) => /^--max-(semi|old)-space-size=\d+$/.test(option));
  return [...(compileCacheOn ? ['--import', COMPILE_CACHE] : []), ...heapSizes];
}

export interface Supervisor {
  stop(): Promise<void>;
}

export interface ChildSpec {
  /** For the log: `relay-started`, `relay-died`. */
  name: string;
  /** The program's main file. */
  main: string;
  args: string[];
  /** Give the child an IPC channel that closes when we end. */
  ipc?: boolean;
  /** Signals passed on to the child (SIGHUP: the certbot hook's "reload the certificate"). */
  forward?: NodeJS.Signals[];
}

export function superviseChild(spec: ChildSpec, log: Logger): Supervisor {
  let child: ChildProcess | null = null;
  let stopping = false;
  let delayMs = 1000;
  let restartTimer: NodeJS.Timeout | null = null;

  const start = () => {
    const startedAt = Date.now();
    const stdio = spec.ipc ? (['ignore', 'inherit', 'inherit', 'ipc'] as const) : (['ignore', 'inherit', 'inherit'] as const);
    const started = spawn(process.execPath, [...childNodeOptions(process.execArgv), spec.main, ...spec.args], { stdio: [...stdio] });
    // The channel must not keep this process alive on its own.
    started.channel?.unref();
    child = started;
    let ended = false;
    const restart = (details: Record<string, string | number | undefined>) => {
      if (ended) return;
      ended = true;
      child = null;
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) delayMs = 1000;
      log.event(`${spec.name}-died`, { ...details, restartInMs: delayMs });
      restartTimer = setTimeout(start, delayMs);
      delayMs = Math.min(delayMs * 2, 60_000);
    };
    // 'error': it could not even be started (e.g. the node binary is not
    // readable by the unprivileged user); 'exit': it ran and ended.
    // (on, not once: a signal stop() could not deliver is reported here too)
    started.on('error', (err: NodeJS.ErrnoException) =>
      restart({
        error: err.message,
        // After dropping root, a node binary under /root (as npx installs it) is out of reach.
        hint: err.code === 'EACCES' ? 'the unprivileged user cannot run this node binary: install Node system-wide' : undefined,
      }),
    );
    started.once('exit', (code, signal) => restart({ code: code ?? undefined, signal: signal ?? undefined }));
    if (started.pid) log.event(`${spec.name}-started`, { pid: started.pid });
  };
  start();
  for (const signal of spec.forward ?? []) process.on(signal, () => child?.kill(signal));

  return {
    async stop() {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const running = child;
      if (!running) return;
      const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
      // A child started a moment ago may still be root (it drops root first
      // thing, as soon as its code is loaded), and a server that already
      // dropped root cannot signal it yet (EPERM): try again until it can.
      let retry: NodeJS.Timeout | null = null;
      const terminate = () => {
        if (!running.kill('SIGTERM') && running.exitCode === null) retry = setTimeout(terminate, 100);
      };
      terminate();
      const killer = setTimeout(() => running.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      if (retry) clearTimeout(retry);
    },
  };
}
