// Logging: one line per event, `time component[session] event key=value ...`.
// The session id ties together every line about one connection and, later, the
// queue and relay lines about the same message. With `--trace` the whole
// conversation is printed as C:/S: lines so a learner can watch the protocol.
//
// Invariant: no byte a client or a remote server sent reaches the terminal
// raw. Event values and trace lines may hold what they sent (a HELO name, a
// reply, a whole command line); an ESC there could move the cursor, retitle
// the window or hide the lines before it, a CR or LF could forge a log line.
// So every control character is written as an escape a reader can still
// read: `\x1b`, `\r`, `\u202e`. This file is the one place that does it.

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

/**
 * What a terminal could act on: the C0 controls (ESC, CR, LF, BS, BEL ...),
 * DEL, the C1 controls (U+0080-U+009F: U+009B is a one-character CSI for
 * some terminals), and the Unicode format characters that reorder or hide
 * text (bidirectional overrides and isolates, zero-width characters, the
 * line and paragraph separators).
 */
const TERMINAL_CONTROLS = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** What makes an event value need quotes: spaces, quotes, `=`, backslashes, or a control (one test, not two). */
const NEEDS_QUOTES = new RegExp(`[\\s"=\\\\]|${TERMINAL_CONTROLS.source}`);

const SHORT_ESCAPES: Record<string, string> = { '\t': '\\t', '\r': '\\r', '\n': '\\n' };

/** One control character as text: `\t`, `\r`, `\n`, `\x1b`, `\u202e`. */
function escapeControl(char: string): string {
  const code = char.charCodeAt(0);
  return SHORT_ESCAPES[char] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
}

/**
 * Text from the network made safe to print: every control character a
 * terminal could act on becomes a visible escape; everything else, accented
 * letters and backslashes included, is left as it is. For trace lines and
 * tools that print remote text (scripts/mailq.ts).
 */
export function escapeForTerminal(text: string): string {
  return text.replace(TERMINAL_CONTROLS, escapeControl);
}

/**
 * A value in an event line. Plain values go as they are; a value with
 * spaces, quotes, `=`, backslashes or control characters is quoted, with
 * `"` and `\` escaped by a backslash and controls as in escapeForTerminal.
 * Every line stays machine-splittable, and inside quotes `\x1b` can only
 * mean an ESC the sender sent (their own backslash would read `\\x1b`).
 */
function formatValue(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value); // a number or a boolean never needs quotes
  const text = value;
  if (text !== '' && !NEEDS_QUOTES.test(text)) return text;
  return `"${escapeForTerminal(text.replace(/["\\]/g, '\\$&'))}"`;
}

/**
 * The time for event lines. A busy server logs several events in the same
 * millisecond: the ISO string is made once per millisecond, not per line.
 */
let lastMs = -1;
let lastTime = '';
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = new Date(ms).toISOString();
  }
  return lastTime;
}

/**
 * Lines for stdout wait here until the end of the current turn of the event
 * loop and then go out together: a busy server logs a few lines per message,
 * and one write(2) per line (a wake-up of journald or of whatever reads the
 * pipe) cost more than the line itself. A write holds at most PIPE_BUF
 * bytes of whole lines, so that it stays atomic on a pipe the relay shares:
 * lines of the two processes never cut into each other. The 'exit' handler
 * sends what is left, so process.exit() loses nothing.
 */
let stdoutPending = '';
let stdoutPendingBytes = 0;
let stdoutFlushScheduled = false;
let exitHookInstalled = false;
const PIPE_BUF = 4096;

function sendPending(): void {
  if (stdoutPending === '') return;
  const text = stdoutPending;
  stdoutPending = '';
  stdoutPendingBytes = 0;
  process.stdout.write(text);
}

function flushStdout(): void {
  stdoutFlushScheduled = false;
  sendPending();
}

function writeStdout(line: string): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', sendPending);
  }
  const bytes = Buffer.byteLength(line) + 1;
  if (stdoutPendingBytes + bytes > PIPE_BUF) sendPending();
  stdoutPending += line + '\n';
  stdoutPendingBytes += bytes;
  if (!stdoutFlushScheduled) {
    stdoutFlushScheduled = true;
    setImmediate(flushStdout);
  }
}

export function createLogger(options: LogOptions = {}, prefix = 'main'): Logger {
  const write = options.write ?? writeStdout;
  return {
    event(name, fields = {}) {
      if (options.quiet) return;
      let line = `${isoNow()} ${prefix} ${name}`;
      for (const key in fields) {
        const value = fields[key];
        if (value !== undefined) line += ` ${key}=${formatValue(value)}`;
      }
      write(line);
    },
    tracing: options.trace === true,
    trace(direction, line) {
      if (options.trace) write(`${prefix} ${direction}: ${escapeForTerminal(line)}`);
    },
    child(component, sessionId) {
      return createLogger(options, `${component}[${sessionId}]`);
    },
  };
}
