// A page for what went wrong: the status and a sentence a person can act on.

import { html } from '../http/html.ts';
import type { Reply } from '../http/reply.ts';
import { layout } from './layout.ts';

const TITLES: Record<number, string> = {
  400: 'That did not work',
  403: 'Refused',
  404: 'Not found',
  405: 'Not allowed',
  413: 'Too large',
  415: 'Not a form',
  500: 'Error',
  502: 'Mail server unavailable',
  503: 'Busy',
};

export function errorPage(status: number, message: string): Reply {
  const title = TITLES[status] ?? 'Error';
  return {
    kind: 'page',
    status,
    body: layout({ title, body: html`<h1>${title}</h1><p>${message}</p><p><a href="/mail">Back to your mail</a></p>` }),
  };
}
