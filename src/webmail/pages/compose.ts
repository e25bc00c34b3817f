// The compose form: To, Cc, Bcc, Subject, the text, files to attach (and,
// for a forward or a draft, the original's attachments to keep), Send and
// Save as draft. It posts as multipart/form-data (RFC 7578), with the CSRF
// token as its first field so the server checks it before any file.

import { html } from '../http/html.ts';
import type { Html } from '../http/html.ts';
import type { Attachment } from '../mail/read-message.ts';
import type { ComposeFields, ComposeMode } from '../mail/reply.ts';
import type { Session } from '../sessions.ts';
import { csrfField, formatSize, layout } from './layout.ts';

export interface ComposeView {
  mode: ComposeMode;
  from: string;
  fields: ComposeFields;
  /** The message replied to, forwarded or reopened. */
  source: { folder: string; uid: number } | null;
  /** The source's attachments that can be sent along (forward, draft). */
  attachments: Attachment[];
  /** Sections of those that stay ticked. */
  kept: Set<string>;
  draftUid: number | null;
  error: string | null;
  maxUploadBytes: number;
}

const TITLES: Record<ComposeMode, string> = { new: 'New message', reply: 'Reply', 'reply-all': 'Reply to all', forward: 'Forward', draft: 'Draft' };

export function composePage(session: Session, view: ComposeView): Html {
  const f = view.fields;
  return layout({
    title: TITLES[view.mode],
    session,
    error: view.error,
    body: html`<h1>${TITLES[view.mode]}</h1>
<form method="post" action="/compose" enctype="multipart/form-data" class="compose">
  ${csrfField(session)}
  <input type="hidden" name="mode" value="${view.mode}">
  <input type="hidden" name="source_folder" value="${view.source?.folder ?? ''}">
  <input type="hidden" name="source_uid" value="${view.source?.uid ?? ''}">
  <input type="hidden" name="draft_uid" value="${view.draftUid ?? ''}">
  <input type="hidden" name="in_reply_to" value="${f.inReplyTo}">
  <input type="hidden" name="references" value="${f.references}">
  <p class="muted">From: ${view.from}</p>
  <label for="to">To</label>
  <input type="text" id="to" name="to" value="${f.to}" autocomplete="email"${view.mode === 'reply' || view.mode === 'reply-all' ? '' : html` autofocus`}>
  <label for="cc">Cc</label>
  <input type="text" id="cc" name="cc" value="${f.cc}">
  <label for="bcc">Bcc</label>
  <input type="text" id="bcc" name="bcc" value="${f.bcc}">
  <label for="subject">Subject</label>
  <input type="text" id="subject" name="subject" value="${f.subject}">
  <label for="text">Message</label>
  <textarea id="text" name="text" rows="16"${view.mode === 'reply' || view.mode === 'reply-all' ? html` autofocus` : ''}>
${f.text}</textarea>
  ${view.attachments.length > 0
    ? html`<fieldset><legend>Attachments of the original</legend>
${view.attachments.map((a) => html`<label><input type="checkbox" name="keep" value="${a.part.section}"${view.kept.has(a.part.section) ? html` checked` : ''}> ${a.filename} <span class="muted">(${formatSize(a.size)})</span></label>`)}
</fieldset>`
    : ''}
  <label for="attachments">Attach files <span class="muted">(at most ${formatSize(view.maxUploadBytes)} in all)</span></label>
  <input type="file" id="attachments" name="attachments" multiple>
  <div class="buttons">
    <button type="submit" name="action" value="send" class="primary">Send</button>
    <button type="submit" name="action" value="draft">Save as draft</button>
  </div>
</form>`,
  });
}
