// One page of a folder: the folders beside it, a search box, the messages
// (newest first) with sender, subject, date and size, checkboxes, and the
// buttons that act on the checked ones. Paging by links; no script.

import { html, url } from '../http/html.ts';
import type { Html } from '../http/html.ts';
import type { MessageSummary } from '../imap-client/client.ts';
import { dateText, senderText, subjectText } from '../mail/display.ts';
import type { FolderInfo } from '../mail/folders.ts';
import type { Session } from '../sessions.ts';
import { folderNav } from './folders.ts';
import { csrfField, formatSize, layout } from './layout.ts';

export interface ListView {
  folder: string;
  folders: FolderInfo[];
  messages: MessageSummary[];
  page: number;
  pages: number;
  total: number;
  query: string;
  scope: string;
  isTrash: boolean;
  notice: string | null;
}

export function messageListPage(session: Session, view: ListView): Html {
  const here = (page: number) => url('/mail', { folder: view.folder, page: page > 1 ? page : null, q: view.query, in: view.query ? view.scope : null });
  const current = view.folders.find((f) => f.name === view.folder);
  const title = current?.label ?? view.folder;
  const others = view.folders.filter((f) => f.selectable && f.name !== view.folder);
  return layout({
    title,
    session,
    notice: view.notice,
    body: html`<div class="columns">
${folderNav(view.folders, view.folder)}
<section aria-labelledby="folder-title">
<h1 id="folder-title">${title}${view.query ? html` <span class="muted">: search for “${view.query}”</span>` : ''}</h1>
<form method="get" action="/mail" class="search" role="search">
  <input type="hidden" name="folder" value="${view.folder}">
  <label class="visually-hidden" for="q">Search</label>
  <input type="search" id="q" name="q" value="${view.query}" placeholder="Search this folder">
  <label class="visually-hidden" for="in">Search in</label>
  <select id="in" name="in">
    <option value="headers"${view.scope !== 'text' ? html` selected` : ''}>From and subject</option>
    <option value="text"${view.scope === 'text' ? html` selected` : ''}>Whole message</option>
  </select>
  <button type="submit">Search</button>
  ${view.query ? html`<a class="button" href="${url('/mail', { folder: view.folder })}">Clear</a>` : ''}
</form>
<form method="post" action="/mail/action">
${csrfField(session)}
<input type="hidden" name="folder" value="${view.folder}">
<input type="hidden" name="back" value="${here(view.page)}">
<div class="toolbar">
  <button type="submit" name="action" value="delete">${view.isTrash ? 'Delete for good' : 'Delete'}</button>
  <button type="submit" name="action" value="read">Mark read</button>
  <button type="submit" name="action" value="unread">Mark unread</button>
  <button type="submit" name="action" value="flag">Flag</button>
  <button type="submit" name="action" value="unflag">Unflag</button>
  <label class="visually-hidden" for="target">Move to</label>
  <select id="target" name="target">${others.map((f) => html`<option value="${f.name}">${f.name}</option>`)}</select>
  <button type="submit" name="action" value="move">Move</button>
</div>
${view.messages.length === 0
  ? html`<p class="muted">${view.query ? 'No message matches.' : 'No messages in this folder.'}</p>`
  : html`<table class="messages">
<thead><tr><th><span class="visually-hidden">Select</span></th><th>From</th><th>Subject</th><th>Date</th><th>Size</th></tr></thead>
<tbody>
${view.messages.map((m) => messageRow(view.folder, m, current?.specialUse === '\\Sent' || current?.specialUse === '\\Drafts'))}
</tbody></table>`}
</form>
${view.pages > 1
  ? html`<nav class="pager" aria-label="Pages">
  ${view.page > 1 ? html`<a href="${here(view.page - 1)}" rel="prev">Newer</a>` : ''}
  <span>Page ${view.page} of ${view.pages} (${view.total} messages)</span>
  ${view.page < view.pages ? html`<a href="${here(view.page + 1)}" rel="next">Older</a>` : ''}
</nav>`
  : html`<p class="muted">${view.total} ${view.total === 1 ? 'message' : 'messages'}</p>`}
</section>
</div>`,
  });
}

/** In Sent and Drafts the interesting name is the recipient's. */
function messageRow(folder: string, m: MessageSummary, outgoing: boolean): Html {
  const flags = m.flags.map((f) => f.toLowerCase());
  const unread = !flags.includes('\\seen');
  const flagged = flags.includes('\\flagged');
  const subject = subjectText(m.envelope.subject);
  const checkbox = `select-${m.uid}`;
  return html`<tr${unread ? html` class="unread"` : ''}>
  <td><input type="checkbox" name="uid" value="${m.uid}" id="${checkbox}"><label class="visually-hidden" for="${checkbox}">Select ${subject}</label></td>
  <td class="from">${flagged ? html`<span class="flagged" title="Flagged">&#9873; </span>` : ''}${senderText(outgoing ? m.envelope.to : m.envelope.from)}</td>
  <td class="subject"><a href="${url('/message', { folder, uid: m.uid })}">${subject}</a>${unread ? html`<span class="visually-hidden"> (unread)</span>` : ''}</td>
  <td class="date">${dateText(m.envelope.date, m.internalDate)}</td>
  <td class="size">${formatSize(m.size)}</td>
</tr>`;
}
