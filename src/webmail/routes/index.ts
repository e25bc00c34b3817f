// The route table: every page and form of the webmail in one list, with
// what each needs before its handler runs (app.ts checks it):
// `session` routes need a logged-in browser; `body: 'form'` POSTs have
// their form read and CSRF token checked; 'multipart' handlers stream
// their own form (compose).

import type { RequestContext } from '../app.ts';
import type { Reply } from '../http/reply.ts';
import { AUTH_ROUTES } from './auth.ts';
import { FOLDER_ROUTES } from './folders.ts';
import { MESSAGE_ROUTES } from './messages.ts';
import { COMPOSE_ROUTES } from './compose.ts';
import { STATIC_ROUTES } from './static.ts';

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  access: 'public' | 'session';
  body?: 'form' | 'multipart';
  handler: (context: RequestContext) => Promise<Reply>;
}

export const ROUTES: Route[] = [...AUTH_ROUTES, ...FOLDER_ROUTES, ...MESSAGE_ROUTES, ...COMPOSE_ROUTES, ...STATIC_ROUTES];
