// The login page. Its form carries a signed token (http/csrf.ts) so that
// no other site can log this browser in to an account of its choosing.

import { html } from '../http/html.ts';
import { layout } from './layout.ts';
import type { Html } from '../http/html.ts';

export interface LoginPageOptions {
  csrfToken: string;
  username?: string;
  error?: string | null;
  notice?: string | null;
}

export function loginPage(options: LoginPageOptions): Html {
  return layout({
    title: 'Log in',
    error: options.error,
    notice: options.notice,
    body: html`<h1>Log in</h1>
<form method="post" action="/login" class="login">
  <input type="hidden" name="_csrf" value="${options.csrfToken}">
  <label for="username">User name</label>
  <input id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus value="${options.username ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
</form>`,
  });
}
