// The folder page: every folder with its unread and total counts, and the
// forms to create, rename and delete folders and to empty the Trash. Also
// the short folder list shown beside the message list.

import { html, url } from '../http/html.ts';
import type { Html } from '../http/html.ts';
import type { FolderInfo } from '../mail/folders.ts';
import type { Session } from '../sessions.ts';
import { csrfField, layout } from './layout.ts';

/** The folders as links, with unread counts, the current one marked. */
export function folderNav(folders: readonly FolderInfo[], current: string): Html {
  return html`<nav class="folders" aria-label="Folders"><ul>
${folders.filter((f) => f.selectable).map((f) => html`<li><a href="${url('/mail', { folder: f.name })}"${f.name === current ? html` class="current" aria-current="page"` : ''}>
  <span>${'\u00a0\u00a0'.repeat(f.depth)}${f.label}</span>${f.unseen > 0 ? html`<span class="unread-count">${f.unseen}<span class="visually-hidden"> unread</span></span>` : ''}</a></li>`)}
</ul></nav>`;
}

export function foldersPage(session: Session, folders: readonly FolderInfo[], notice: string | null, error: string | null = null): Html {
  const rows = folders.map((f) => {
    const isInbox = f.name.toUpperCase() === 'INBOX';
    return html`<li>
  <a href="${url('/mail', { folder: f.name })}">${f.name}</a>
  <span class="count">${f.unseen} unread, ${f.messages} in all</span>
  ${!isInbox
    ? html`<form method="post" action="/folders/rename">${csrfField(session)}
    <input type="hidden" name="from" value="${f.name}">
    <label class="visually-hidden" for="${`rename-${f.name}`}">New name for ${f.name}</label>
    <input id="${`rename-${f.name}`}" name="to" value="${f.name}" required>
    <button type="submit">Rename</button>
  </form>
  <form method="post" action="/folders/delete">${csrfField(session)}
    <input type="hidden" name="name" value="${f.name}">
    <button type="submit">Delete${f.messages > 0 ? ' with its messages' : ''}</button>
  </form>`
    : ''}
  ${f.specialUse === '\\Trash' && f.messages > 0
    ? html`<form method="post" action="/folders/empty">${csrfField(session)}
    <input type="hidden" name="name" value="${f.name}">
    <button type="submit">Empty the Trash</button>
  </form>`
    : ''}
</li>`;
  });
  return layout({
    title: 'Folders',
    session,
    notice,
    error,
    body: html`<h1>Folders</h1>
<ul class="folder-admin">${rows}</ul>
<h2>New folder</h2>
<form method="post" action="/folders/create">${csrfField(session)}
  <label for="new-folder">Name (use / for a folder inside another)</label>
  <input id="new-folder" name="name" required>
  <button type="submit">Create</button>
</form>`,
  });
}
