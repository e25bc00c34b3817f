// Reading one message: its header fields, its body and its attachments,
// and what can be done with it.
//
// Plain text is escaped, with web addresses made into links (linkify.ts).
// HTML is never put into this page: it is shown in an iframe whose content
// comes from its own address (/message/html) with its own Content-Security-
// Policy, and the iframe is sandboxed as well (no scripts, no same origin,
// no forms). Remote images stay blocked unless the reader asks, for this
// message only: loading them would tell the sender that, when and where the
// message was read.

import { html, url } from '../http/html.ts';
import type { Html } from '../http/html.ts';
import type { MessageDetails } from '../imap-client/client.ts';
import type { FolderInfo } from '../mail/folders.ts';
import { addressesText, dateText, subjectText } from '../mail/display.ts';
import { linkify } from '../mail/linkify.ts';
import type { MessagePlan } from '../mail/read-message.ts';
import type { Session } from '../sessions.ts';
import { csrfField, formatSize, layout } from './layout.ts';

export interface MessageView {
  folder: string;
  folders: FolderInfo[];
  message: MessageDetails;
  plan: MessagePlan;
  /** The plain text to show (null: show the HTML frame). */
  text: string | null;
  textTruncated: boolean;
  /** Show the HTML part (rather than the text) and with remote images? */
  showHtml: boolean;
  remoteImages: boolean;
  isDraft: boolean;
  notice: string | null;
}

export function messagePage(session: Session, view: MessageView): Html {
  const { folder, message, plan } = view;
  const env = message.envelope;
  const subject = subjectText(env.subject);
  const uid = message.uid;
  const flagged = message.flags.some((f) => f.toLowerCase() === '\\flagged');
  const field = (name: string, value: string) => (value ? html`<dt>${name}</dt><dd>${value}</dd>` : '');
  const others = view.folders.filter((f) => f.selectable && f.name !== folder);
  const self = (extra: Record<string, string | number>) => url('/message', { folder, uid, ...extra });
  return layout({
    title: subject,
    session,
    notice: view.notice,
    body: html`<p><a href="${url('/mail', { folder })}">&larr; ${folder}</a></p>
<article aria-labelledby="subject">
<h1 id="subject">${subject}</h1>
<dl class="headers">
  ${field('From', addressesText(env.from))}
  ${field('Reply to', env.replyTo.length > 0 && addressesText(env.replyTo) !== addressesText(env.from) ? addressesText(env.replyTo) : '')}
  ${field('To', addressesText(env.to))}
  ${field('Cc', addressesText(env.cc))}
  ${field('Date', dateText(env.date, message.internalDate))}
</dl>
<div class="toolbar">
  ${view.isDraft
    ? html`<a class="button" href="${url('/compose', { mode: 'draft', folder, uid })}">Edit the draft</a>`
    : html`<a class="button" href="${url('/compose', { mode: 'reply', folder, uid })}">Reply</a>
  <a class="button" href="${url('/compose', { mode: 'reply-all', folder, uid })}">Reply to all</a>
  <a class="button" href="${url('/compose', { mode: 'forward', folder, uid })}">Forward</a>`}
</div>
<form method="post" action="/mail/action" class="toolbar">
  ${csrfField(session)}
  <input type="hidden" name="folder" value="${folder}">
  <input type="hidden" name="uid" value="${uid}">
  <input type="hidden" name="back" value="${url('/mail', { folder })}">
  <button type="submit" name="action" value="delete">Delete</button>
  <button type="submit" name="action" value="unread">Mark unread</button>
  <button type="submit" name="action" value="${flagged ? 'unflag' : 'flag'}">${flagged ? 'Unflag' : 'Flag'}</button>
  <label class="visually-hidden" for="target">Move to</label>
  <select id="target" name="target">${others.map((f) => html`<option value="${f.name}">${f.name}</option>`)}</select>
  <button type="submit" name="action" value="move">Move</button>
</form>
${body(view, self)}
${plan.attachments.length > 0
  ? html`<h2>Attachments</h2>
<ul class="attachments">
${plan.attachments.map((a) => html`<li><a href="${url('/message/attachment', { folder, uid, part: a.part.section })}" download>${a.filename}</a> <span class="muted">${a.contentType}, ${formatSize(a.size)}</span></li>`)}
</ul>`
  : ''}
</article>`,
  });
}

function body(view: MessageView, self: (extra: Record<string, string | number>) => string): Html {
  const { plan } = view;
  if (view.showHtml && plan.html) {
    const frame = url('/message/html', { folder: view.folder, uid: view.message.uid, part: plan.html.section, images: view.remoteImages ? 1 : null });
    return html`<p class="toolbar">
  ${view.remoteImages
    ? html`<span class="muted">Remote images are shown.</span>`
    : html`<span class="muted">Remote images are blocked.</span> <a href="${self({ images: 1 })}">Show remote images in this message</a>`}
  ${plan.text ? html`<a href="${self({ view: 'text' })}">Show the plain text</a>` : ''}
</p>
<iframe class="mail" src="${frame}" sandbox="allow-popups allow-popups-to-escape-sandbox" referrerpolicy="no-referrer" title="The message"></iframe>`;
  }
  if (view.text === null) return html`<p class="muted">This message has no text to show.</p>`;
  return html`${plan.html ? html`<p><a href="${self({})}">Show the formatted (HTML) version</a></p>` : ''}
<div class="body-text">${linkify(view.text)}</div>
${view.textTruncated ? html`<p class="muted">The text is longer than shown here.</p>` : ''}`;
}
