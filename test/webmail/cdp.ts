// A small client for the Chrome DevTools Protocol (chromedevtools.github.io/
// devtools-protocol), over the WebSocket client built into Node: start
// Debian's headless Chromium, open a tab, send commands, wait for events.
// Enough to drive the webmail like a person: navigate, type, press Enter,
// click, read the page, take screenshots.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's package installs /usr/bin/chromium; CHROMIUM names another. */
export function findChromium(): string | null {
  for (const path of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[]) {
    if (existsSync(path)) return path;
  }
  return null;
}

interface Pending {
  resolve: (value: Record<string, unknown>) => void;
  reject: (error: Error) => void;
}

export class Chromium {
  private readonly process: ChildProcess;
  private readonly socket: WebSocket;
  private readonly profile: string;
  private next = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Set<(method: string, params: Record<string, unknown>, sessionId?: string) => void>();

  private constructor(process: ChildProcess, socket: WebSocket, profile: string) {
    this.process = process;
    this.socket = socket;
    this.profile = profile;
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };
      if (message.id !== undefined) {
        const waiting = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error) waiting?.reject(new Error(message.error.message));
        else waiting?.resolve(message.result ?? {});
      } else if (message.method) {
        for (const listener of this.listeners) listener(message.method, message.params ?? {}, message.sessionId);
      }
    });
  }

  /** Start headless Chromium with a fresh profile, trusting `spki` (the webmail's certificate key) and mapping localhost to 127.0.0.1. */
  static async launch(executable: string, spki: string): Promise<Chromium> {
    const profile = await mkdtemp(join(tmpdir(), 'webmail-chromium-'));
    const child = spawn(executable, [
      '--headless=new',
      '--no-sandbox', // tests run as root; Chromium's sandbox refuses root
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      `--user-data-dir=${profile}`,
      '--remote-debugging-port=0',
      '--remote-debugging-address=127.0.0.1',
      `--ignore-certificate-errors-spki-list=${spki}`,
      '--host-resolver-rules=MAP localhost 127.0.0.1',
      '--window-size=1100,900',
      'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const endpoint = await new Promise<string>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => reject(new Error(`Chromium did not start:\n${output}`)), 30_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        output += chunk;
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`Chromium exited (${code}):\n${output}`)));
    });
    const socket = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      socket.addEventListener('open', resolve, { once: true });
      socket.addEventListener('error', () => reject(new Error('cannot reach the DevTools endpoint')), { once: true });
    });
    return new Chromium(child, socket, profile);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  /** The next event `method` (of `sessionId`) that `accept` likes. */
  waitFor(method: string, sessionId: string | undefined, timeoutMs = 15_000, accept: (params: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const listener = (m: string, params: Record<string, unknown>, s?: string) => {
        if (m !== method || s !== sessionId || !accept(params)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(params);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`no ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(listener);
    });
  }

  async newTab(): Promise<Tab> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const tab = new Tab(this, String(sessionId));
    await tab.send('Page.enable');
    await tab.send('Runtime.enable');
    return tab;
  }

  async close(): Promise<void> {
    await this.send('Browser.close').catch(() => {});
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    if (this.process.exitCode === null) await exited;
    clearTimeout(killer);
    this.socket.close();
    await rm(this.profile, { recursive: true, force: true });
  }
}

export class Tab {
  private readonly browser: Chromium;
  readonly sessionId: string;

  constructor(browser: Chromium, sessionId: string) {
    this.browser = browser;
    this.sessionId = sessionId;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** Do something that loads a new page (navigation, a form sent) and wait until it has loaded, frames and all. */
  async loading(action: () => Promise<unknown>): Promise<void> {
    const loaded = this.browser.waitFor('Page.loadEventFired', this.sessionId);
    await action();
    await loaded;
  }

  goto(url: string): Promise<void> {
    return this.loading(() => this.send('Page.navigate', { url }));
  }

  /** Evaluate an expression in the page (DevTools' own evaluation: the page's CSP does not apply to it). */
  async evaluate<T>(expression: string): Promise<T> {
    const { result, exceptionDetails } = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (exceptionDetails) throw new Error(`${expression}: ${exceptionDetails.text}`);
    return result.value;
  }

  /** Focus a field and type into it, as a keyboard would (Input.insertText). */
  async type(selector: string, text: string): Promise<void> {
    await this.evaluate(`document.querySelector(${JSON.stringify(selector)}).focus()`);
    await this.send('Input.insertText', { text });
  }

  /** Press a key (Enter submits the form of the focused field). */
  async press(key: 'Enter' | 'Tab'): Promise<void> {
    const code = key === 'Enter' ? 13 : 9;
    await this.send('Input.dispatchKeyEvent', { type: 'keyDown', key, code: key, windowsVirtualKeyCode: code, text: key === 'Enter' ? '\r' : undefined });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', key, code: key, windowsVirtualKeyCode: code });
  }

  async screenshot(): Promise<Buffer> {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    return Buffer.from(String(data), 'base64');
  }
}
