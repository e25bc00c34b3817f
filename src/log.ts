// Logging: one line per event, `time component[session] event key=value ...`.
// The session id ties together every line about one connection and, later, the
// queue and relay lines about the same message. With `--trace` the whole
// conversation is printed as C:/S: lines so a learner can watch the protocol.

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  /** One event: `connect`, `accepted`, `refused`, ... */
  event(name: string, fields?: LogFields): void;
  /** One line of the conversation, client (C) or server (S). No-op unless tracing. */
  trace(direction: 'C' | 'S', line: string): void;
  /** True with --trace: lets callers skip preparing trace lines nobody will see. */
  readonly tracing: boolean;
  /** A logger for one session: same output, with the session id in every line. */
  child(component: string, sessionId: string): Logger;
}

export interface LogOptions {
  trace?: boolean;
  /** Where lines go; tests collect them in an array. */
  write?: (line: string) => void;
  /** Silence event lines (tests that do not read them). */
  quiet?: boolean;
}

function formatValue(value: string | number | boolean): string {
  const text = String(value);
  // Quote values with spaces or quotes so every line stays machine-splittable.
  return /[\s"=]/.test(text) || text === '' ? JSON.stringify(text) : text;
}

export function createLogger(options: LogOptions = {}, prefix = 'main'): Logger {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  return {
    event(name, fields = {}) {
      if (options.quiet) return;
      const parts = [new Date().toISOString(), prefix, name];
      for (const [key, value] of Object.entries(fields)) {
        if (value !== undefined) parts.push(`${key}=${formatValue(value)}`);
      }
      write(parts.join(' '));
    },
    tracing: options.trace === true,
    trace(direction, line) {
      if (options.trace) write(`${prefix} ${direction}: ${line}`);
    },
    child(component, sessionId) {
      return createLogger(options, `${component}[${sessionId}]`);
    },
  };
}

let counter = 0;
/**
 * Short unique ids for sessions and messages: the time, the process id, then a
 * counter. The process id matters: the server and the relay both name queue
 * files with these ids, and two processes counting from 0 could otherwise
 * pick the same one in the same millisecond.
 */
export function newId(): string {
  counter = (counter + 1) % 0x10000;
  const pid = process.pid.toString(36);
  return (Date.now().toString(36) + pid).toUpperCase() + counter.toString(16).toUpperCase().padStart(4, '0');
}
