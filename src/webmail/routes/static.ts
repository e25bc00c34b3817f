// What needs no login: the stylesheet and the mail clients' autoconfig
// document (autoconfig.ts), at both places Thunderbird looks for it.

import type { RequestContext } from '../app.ts';
import { autoconfigXml } from '../autoconfig.ts';
import type { Reply } from '../http/reply.ts';
import { STYLESHEET } from '../pages/style.ts';
import type { Route } from './index.ts';

async function stylesheet(): Promise<Reply> {
  return { kind: 'static', contentType: 'text/css; charset=utf-8', body: STYLESHEET, cacheSeconds: 3600 };
}

async function autoconfig(context: RequestContext): Promise<Reply> {
  const body = autoconfigXml(context.app.config, context.query.get('emailaddress'));
  return { kind: 'static', contentType: 'application/xml; charset=utf-8', body };
}

export const STATIC_ROUTES: Route[] = [
  { method: 'GET', path: '/style.css', access: 'public', handler: stylesheet },
  { method: 'GET', path: '/mail/config-v1.1.xml', access: 'public', handler: autoconfig },
  { method: 'GET', path: '/.well-known/autoconfig/mail/config-v1.1.xml', access: 'public', handler: autoconfig },
];
