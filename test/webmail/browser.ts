// A small HTTPS "browser" for the webmail tests, on node:https: it keeps
// cookies (as a browser would, honouring Max-Age=0 as a deletion), verifies
// the webmail's certificate, sends forms urlencoded or multipart, and reads
// the CSRF token out of a page. No redirects are followed unless asked,
// so tests see each 303.

import { request } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { randomBytes } from 'node:crypto';

export interface Page {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  location: string | undefined;
}

export interface FileField {
  filename: string;
  contentType: string;
  content: Buffer;
}

export class Browser {
  readonly cookies = new Map<string, string>();
  readonly port: number;
  readonly ca: string;
  /** The address the browser connects from (127.0.0.x: another machine, as far as the server can tell). */
  readonly localAddress: string;

  constructor(port: number, ca: string, localAddress = '127.0.0.1') {
    this.port = port;
    this.ca = ca;
    this.localAddress = localAddress;
  }

  async request(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Page> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: this.port,
          method,
          path,
          ca: this.ca,
          localAddress: this.localAddress,
          headers: {
            // The name a browser would have in its address bar (the certificate's name).
            host: `localhost:${this.port}`,
            ...(cookie ? { cookie } : {}),
            ...(body ? { 'content-length': String(body.length) } : {}),
            ...headers,
          },
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            for (const line of [res.headers['set-cookie'] ?? []].flat()) {
              const [pair] = line.split(';');
              const eq = pair.indexOf('=');
              const name = pair.slice(0, eq);
              if (/Max-Age=0\b/i.test(line)) this.cookies.delete(name);
              else this.cookies.set(name, pair.slice(eq + 1));
            }
            const bodyBytes = Buffer.concat(chunks);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: bodyBytes, text: bodyBytes.toString('utf8'), location: res.headers.location });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  get(path: string, headers?: Record<string, string>): Promise<Page> {
    return this.request('GET', path, undefined, headers);
  }

  /** A urlencoded form, as a browser posts it from our own page. */
  post(path: string, fields: Record<string, string | string[]>, headers: Record<string, string> = {}): Promise<Page> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(fields)) for (const v of [value].flat()) params.append(key, v);
    return this.request('POST', path, Buffer.from(params.toString()), {
      'content-type': 'application/x-www-form-urlencoded',
      origin: `https://localhost:${this.port}`,
      'sec-fetch-site': 'same-origin',
      ...headers,
    });
  }

  /** multipart/form-data (RFC 7578) with the fields in the order given, then the files. */
  postMultipart(path: string, fields: [string, string][], files: [string, FileField][] = []): Promise<Page> {
    const boundary = `----test${randomBytes(8).toString('hex')}`;
    const parts: Buffer[] = [];
    for (const [name, value] of fields) parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`));
    for (const [name, file] of files) {
      parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${file.filename}"\r\nContent-Type: ${file.contentType}\r\n\r\n`));
      parts.push(file.content, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from(`--${boundary}--\r\n`));
    return this.request('POST', path, Buffer.concat(parts), {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      origin: `https://localhost:${this.port}`,
      'sec-fetch-site': 'same-origin',
    });
  }

  /** Log in through the form; returns the 303 (or the page when refused). */
  async logIn(username: string, password: string): Promise<Page> {
    const form = await this.get('/login');
    return this.post('/login', { _csrf: csrfToken(form.text), username, password });
  }
}

/** The CSRF token of the first form on a page. */
export function csrfToken(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match) throw new Error(`no CSRF token on the page:\n${html.slice(0, 2000)}`);
  return match[1];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };
const unescape = (text: string) => text.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ENTITIES[e]);

/**
 * The fields a browser would submit from the form posting to `action`, in
 * page order: inputs with a value (hidden, text; checkboxes only when
 * checked) and textareas. Buttons are left out: the test adds the one it
 * "clicks".
 */
export function formFields(html: string, action: string): [string, string][] {
  const start = html.indexOf(`action="${action}"`);
  if (start < 0) throw new Error(`no form posting to ${action}`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const fields: [string, string][] = [];
  for (const match of form.matchAll(/<input ([^>]*)>|<textarea ([^>]*)>\n?([\s\S]*?)<\/textarea>/g)) {
    const attributes = match[1] ?? match[2];
    const name = /name="([^"]*)"/.exec(attributes)?.[1];
    if (!name) continue;
    if (match[2] !== undefined) {
      fields.push([name, unescape(match[3])]);
      continue;
    }
    const type = /type="([^"]*)"/.exec(attributes)?.[1] ?? 'text';
    if (type === 'file' || type === 'submit') continue;
    if (type === 'checkbox' && !/\bchecked\b/.test(attributes)) continue;
    fields.push([name, unescape(/value="([^"]*)"/.exec(attributes)?.[1] ?? '')]);
  }
  return fields;
}

/** `fields` with some values replaced (or added at the end), order kept. */
export function withValues(fields: [string, string][], values: Record<string, string>): [string, string][] {
  const out = fields.map(([name, value]): [string, string] => [name, Object.hasOwn(values, name) ? values[name] : value]);
  for (const [name, value] of Object.entries(values)) if (!fields.some(([n]) => n === name)) out.push([name, value]);
  return out;
}
