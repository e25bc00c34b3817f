// The frame of every page: the bar with the account and the main links,
// the one-line notice of the last action, and the content. Plain HTML for
// any browser, a phone's too: one column, big enough targets, and every
// action a link or a button, so the keyboard reaches everything in order.

import { html } from '../http/html.ts';
import type { Html } from '../http/html.ts';
import type { Session } from '../sessions.ts';

export interface LayoutOptions {
  title: string;
  /** The logged-in session (for the bar and its logout form); absent on the login and error pages. */
  session?: Session;
  /** A message about the last action, shown once. */
  notice?: string | null;
  /** A failure to show in red. */
  error?: string | null;
  body: Html;
}

export function layout(options: LayoutOptions): Html {
  const { session } = options;
  return html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.title} - Webmail</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header class="bar">
  <a class="brand" href="/mail">Webmail</a>
  ${session
    ? html`<nav aria-label="Main">
    <a href="/mail?folder=INBOX">Inbox</a>
    <a href="/folders">Folders</a>
    <a href="/compose">Write</a>
  </nav>
  <form method="post" action="/logout" class="logout">
    ${csrfField(session)}
    <span class="user">${session.username}</span>
    <button type="submit">Log out</button>
  </form>`
    : ''}
</header>
<main>
${options.notice ? html`<p class="notice" role="status">${options.notice}</p>` : ''}
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ''}
${options.body}
</main>
</body>
</html>`;
}

/** The hidden CSRF field every form of a session starts with (http/csrf.ts). */
export function csrfField(session: Session): Html {
  return html`<input type="hidden" name="_csrf" value="${session.csrfToken}">`;
}

/** The session's notice, shown once. */
export function takeNotice(session: Session): string | null {
  const notice = session.notice;
  session.notice = null;
  return notice;
}

/** 1536 -> "1.5 KB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(bytes < 10 * 1024 ? 1 : 0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
