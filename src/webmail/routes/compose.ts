// Writing mail: the compose form (new, reply, reply to all, forward, a
// draft reopened) and what its buttons do.
//
// Send: the form streams in (http/multipart.ts: CSRF token first, files to
// temporary files, every size limited), the message is written to a
// temporary file (mail/compose-message.ts), handed to the mail server's
// submission port as the user (smtp-client.ts), then stored in Sent with
// APPEND, and the original is marked \Answered or $Forwarded (the
// keywords Thunderbird uses). Save as draft: the same message, APPENDed to
// Drafts with \Draft (RFC 3501 2.3.2), replacing the previous version.

import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RequestContext } from '../app.ts';
import type { ImapClient } from '../imap-client/client.ts';
import { tokensMatch } from '../http/csrf.ts';
import { BodyError, multipartBoundary } from '../http/form.ts';
import { parseMultipart } from '../http/multipart.ts';
import type { MultipartForm } from '../http/multipart.ts';
import type { Reply } from '../http/reply.ts';
import { url } from '../http/html.ts';
import { submitMessage } from '../smtp-client.ts';
import { newMessageId, writeMessage } from '../mail/compose-message.ts';
import type { OutgoingAttachment, Recipient } from '../mail/compose-message.ts';
import { specialFolder } from '../mail/folders.ts';
import { htmlToText } from '../mail/html-mail.ts';
import { attachmentOf, decodedContent, decodedText, findPart, planMessage } from '../mail/read-message.ts';
import type { Attachment } from '../mail/read-message.ts';
import { messageIds, parseRecipients } from '../mail/recipients.ts';
import { EMPTY_FIELDS, draftFields, forwardFields, replyFields } from '../mail/reply.ts';
import type { ComposeFields, ComposeMode } from '../mail/reply.ts';
import { composePage } from '../pages/compose.ts';
import { messageRef, uidOf } from './message-ref.ts';
import type { MessageRef } from './message-ref.ts';
import { errorPage } from '../pages/error.ts';
import type { Route } from './index.ts';

const MODES: readonly ComposeMode[] = ['new', 'reply', 'reply-all', 'forward', 'draft'];
/** RFC 5321 4.5.3.1.8: the server takes 100 recipients; so do we. */
const MAX_RECIPIENTS = 100;
/** The quoted original in a reply: enough for any conversation. */
const MAX_QUOTED_BYTES = 512 * 1024;

/** The user's address: the login name if it is an address, else name@first domain (what the server lets them send as). */
function ownAddress(context: RequestContext): string {
  const name = context.session.username;
  return name.includes('@') ? name : `${name}@${context.app.settings.defaultDomain}`;
}

/** A composed message, ready to be put into a folder (its bytes spooled in a file), and where it came from. */
interface Composed {
  size: number;
  content: () => AsyncIterable<Buffer>;
  /** The draft this message replaces, to be removed once it is saved or sent. */
  draftUid: number | null;
  source: MessageRef | null;
}

async function showCompose(context: RequestContext): Promise<Reply> {
  const { app, session, query } = context;
  const mode = (MODES as readonly string[]).includes(query.get('mode') ?? '') ? (query.get('mode') as ComposeMode) : 'new';
  const source = mode === 'new' ? null : messageRef(query.get('folder'), query.get('uid'));
  if (mode !== 'new' && !source) return errorPage(400, 'Which message? The link is incomplete.');
  let fields: ComposeFields = { ...EMPTY_FIELDS, to: (query.get('to') ?? '').slice(0, 1000) };
  let attachments: Attachment[] = [];
  if (source) {
    const loaded = await app.pool.use(session, async (client) => {
      const message = await client.message(source.folder, source.uid);
      if (!message) return null;
      const plan = planMessage(message.structure);
      const part = plan.text ?? plan.html;
      let text = part ? await decodedText(client.section(source.folder, source.uid, part.section, undefined, MAX_QUOTED_BYTES), part) : '';
      if (part && part === plan.html) text = htmlToText(text);
      return { message, plan, text };
    });
    if (!loaded) return errorPage(404, 'This message is not there any more.');
    const { message, plan, text } = loaded;
    if (mode === 'reply' || mode === 'reply-all') fields = replyFields(message, text, mode === 'reply-all', ownAddress(context));
    else if (mode === 'forward') fields = forwardFields(message, text);
    else fields = draftFields(message, text);
    if (mode === 'forward' || mode === 'draft') attachments = plan.attachments;
  }
  return {
    kind: 'page',
    body: composePage(session, {
      mode,
      from: ownAddress(context),
      fields,
      source,
      attachments,
      kept: new Set(attachments.map((a) => a.part.section)),
      draftUid: mode === 'draft' && source ? source.uid : null,
      error: null,
      maxUploadBytes: app.settings.maxUploadBytes,
    }),
  };
}

/** The form, streamed in with its limits; the CSRF token must come first. */
async function readComposeForm(context: RequestContext): Promise<MultipartForm> {
  const { app, session, req } = context;
  const boundary = multipartBoundary(req);
  if (!boundary) throw new BodyError(415, 'expected multipart/form-data');
  // The text and fields are small; the files are what maxUploadBytes limits.
  const maxTotalBytes = app.settings.maxUploadBytes + 4 * 1024 * 1024;
  if (Number(req.headers['content-length'] ?? 0) > maxTotalBytes) throw new BodyError(413, 'The message with its attachments is larger than allowed.');
  await mkdir(app.settings.tmpDir, { recursive: true, mode: 0o700 });
  let first = true;
  return parseMultipart(
    req,
    boundary,
    { maxTotalBytes, maxFieldBytes: 2 * 1024 * 1024, maxFields: 200, maxFiles: 50, maxHeaderBytes: 16 * 1024 },
    app.settings.tmpDir,
    (name, value) => {
      // Lock 2 of http/csrf.ts, before a single byte of any file is stored.
      if (first && (name !== '_csrf' || !tokensMatch(session.csrfToken, value))) throw new BodyError(403, 'This form has expired. Go back, reload the page and try again.');
      first = false;
    },
  );
}

async function sendOrSave(context: RequestContext): Promise<Reply> {
  const form = await readComposeForm(context);
  const messageFile = join(context.app.settings.tmpDir, `message-${randomBytes(12).toString('hex')}`);
  try {
    return await handleComposed(context, form, messageFile);
  } finally {
    await form.discard();
    await rm(messageFile, { force: true });
  }
}

async function handleComposed(context: RequestContext, form: MultipartForm, messageFile: string): Promise<Reply> {
  const { app, session } = context;
  const mode = (MODES as readonly string[]).includes(form.get('mode')) ? (form.get('mode') as ComposeMode) : 'new';
  const source = messageRef(form.get('source_folder'), form.get('source_uid'));
  const draftUid = uidOf(form.get('draft_uid'));
  const saveDraft = form.get('action') === 'draft';
  const fields: ComposeFields = {
    to: form.get('to'),
    cc: form.get('cc'),
    bcc: form.get('bcc'),
    subject: form.get('subject'),
    text: form.get('text'),
    inReplyTo: messageIds(form.get('in_reply_to'))[0] ?? '',
    references: messageIds(form.get('references')).join(' '),
  };
  const kept = new Set(form.getAll('keep'));
  // The form again, with what was typed and why it did not go.
  const again = async (status: number, error: string): Promise<Reply> => {
    const attachments = source && (mode === 'forward' || mode === 'draft') ? await sourceAttachments(context, source) : [];
    const body = composePage(session, { mode, from: ownAddress(context), fields, source, attachments, kept, draftUid, error, maxUploadBytes: app.settings.maxUploadBytes });
    return { kind: 'page', status, body };
  };

  const parsed = { to: parseRecipients(fields.to), cc: parseRecipients(fields.cc), bcc: parseRecipients(fields.bcc) };
  const bad = [...parsed.to.bad, ...parsed.cc.bad, ...parsed.bcc.bad];
  const everyone = [...parsed.to.recipients, ...parsed.cc.recipients, ...parsed.bcc.recipients];
  const filesNote = form.files.length > 0 ? ' Choose the files to attach again.' : '';
  if (bad.length > 0) return again(400, `These are not e-mail addresses: ${bad.join(', ')}.${filesNote}`);
  if (!saveDraft && everyone.length === 0) return again(400, `Who should get this message? Fill in To.${filesNote}`);
  if (everyone.length > MAX_RECIPIENTS) return again(400, `At most ${MAX_RECIPIENTS} recipients, please.${filesNote}`);

  const attachments: OutgoingAttachment[] = form.files.map((file) => ({
    filename: file.filename,
    contentType: file.contentType,
    content: () => createReadStream(file.path),
  }));
  if (source && kept.size > 0) attachments.unshift(...(await keptAttachments(context, source, kept)));
  const from: Recipient = { name: null, address: ownAddress(context) };
  const references = messageIds(fields.references);
  const size = await writeMessage(
    {
      from,
      to: parsed.to.recipients,
      cc: parsed.cc.recipients,
      bcc: parsed.bcc.recipients,
      keepBcc: saveDraft,
      subject: fields.subject,
      text: fields.text,
      inReplyTo: fields.inReplyTo || null,
      references,
      attachments,
      messageId: newMessageId(app.settings.hostname),
      date: new Date(),
    },
    messageFile,
  );
  if (size > app.settings.maxUploadBytes) return again(413, `The message is larger than allowed (${app.settings.maxUploadBytes} bytes).${filesNote}`);
  const content = () => createReadStream(messageFile);

  if (saveDraft) return keepDraft(context, { size, content, draftUid, source }, (error) => again(502, `${error}${filesNote}`));

  const result = await submitMessage(app.settings.submission, {
    username: session.username,
    password: session.password,
    from: from.address,
    recipients: everyone.map((r) => r.address),
    message: content,
    size,
    heloName: app.settings.hostname,
    clientAddress: context.clientAddress,
  });
  if (!result.ok) {
    app.log.event('webmail-send-failed', { user: session.username, reason: result.reason });
    return again(502, `The message was not sent: ${result.reason}.${filesNote}`);
  }
  app.log.event('webmail-sent', { user: session.username, recipients: everyone.length, size });
  const after = await afterSending(context, { size, content, draftUid, source, mode });
  const refused = result.refused.length > 0 ? ` Not accepted: ${result.refused.map((r) => `${r.address} (${r.reason})`).join(', ')}.` : '';
  session.notice = `Message sent${after.notice}.${refused}`;
  // Back to the original's folder, unless it could not be reached there (deleted meanwhile, say).
  return { kind: 'redirect', location: url('/mail', { folder: source && mode !== 'draft' && after.sourceUpdated ? source.folder : 'INBOX' }) };
}

/**
 * Saving a draft: the new version goes into Drafts (made again if the user
 * deleted it), then the older version it replaces is removed. Once the new
 * version is in, nothing here turns into an error page (the user would
 * save it again): a failure to remove the older one is said in the notice.
 * If the new version could not be put in, `formAgain` shows the form as
 * typed, with why.
 */
async function keepDraft(
  { app, session }: RequestContext,
  draft: Composed,
  formAgain: (error: string) => Promise<Reply>,
): Promise<Reply> {
  const { size, content, draftUid, source } = draft;
  let saved: { name: string; note: string };
  try {
    saved = await app.pool.use(session, async (client) => {
      const name = await folderFor(client, '\\Drafts');
      await client.append(name, ['\\Draft', '\\Seen'], size, content);
      if (!draftUid || !source) return { name, note: '' };
      try {
        await client.expunge(source.folder, [draftUid]); // the older version
        return { name, note: '' };
      } catch (err) {
        app.log.event('webmail-after-draft-failed', { user: session.username, error: (err as Error).message });
        return { name, note: `; the older version could not be removed: ${(err as Error).message}` };
      }
    });
  } catch (err) {
    // Nothing was saved: no Drafts folder could be found or made, or the mailbox could not be reached.
    app.log.event('webmail-draft-failed', { user: session.username, error: (err as Error).message });
    return formAgain(`The draft was not saved: ${(err as Error).message}.`);
  }
  session.notice = `Draft saved in ${saved.name}${saved.note}.`;
  return { kind: 'redirect', location: url('/mail', { folder: saved.name }) };
}

/**
 * What follows a send in the mailbox: the copy in Sent, the draft it came
 * from removed, the original marked answered or forwarded. The message has
 * gone by then, so nothing here may turn into an error page (the user would
 * send it again): each failure is logged and said in the notice it returns
 * (to follow "Message sent"). `sourceUpdated` is false when the original's
 * folder could not be updated.
 */
async function afterSending(
  { app, session }: RequestContext,
  sent: Composed & { mode: ComposeMode },
): Promise<{ notice: string; sourceUpdated: boolean }> {
  const { size, content, draftUid, source, mode } = sent;
  const failed = (what: string, err: unknown): string => {
    app.log.event('webmail-after-send-failed', { user: session.username, step: what, error: (err as Error).message });
    return `${what}: ${(err as Error).message}`;
  };
  try {
    return await app.pool.use(session, async (client) => {
      let copied: string;
      try {
        const folder = await folderFor(client, '\\Sent');
        await client.append(folder, ['\\Seen'], size, content);
        copied = `; a copy is in ${folder}`;
      } catch (err) {
        copied = `, but ${failed('no copy could be kept in Sent', err)}`;
      }
      try {
        if (draftUid && source) await client.expunge(source.folder, [draftUid]);
        // The keywords Thunderbird and Dovecot's clients use (RFC 3501 2.3.2; $Forwarded, RFC 5788 registry).
        if (source && (mode === 'reply' || mode === 'reply-all')) await client.setFlags(source.folder, [source.uid], true, ['\\Answered']);
        if (source && mode === 'forward') await client.setFlags(source.folder, [source.uid], true, ['$Forwarded']);
      } catch (err) {
        const what = mode === 'draft' ? 'the draft could not be removed' : `the original could not be marked ${mode === 'forward' ? 'forwarded' : 'answered'}`;
        return { notice: `${copied}; ${failed(what, err)}`, sourceUpdated: false };
      }
      return { notice: copied, sourceUpdated: true };
    });
  } catch (err) {
    // Every step above catches its own failure: this is the mailbox not reached at all, so nothing was done.
    return { notice: `, but ${failed('no copy could be kept in Sent', err)}`, sourceUpdated: false };
  }
}

/**
 * The folder for sent mail or drafts: the one marked for that use (RFC
 * 6154), or one with its usual name; if the user deleted it, made again
 * under that name, as Thunderbird does, so no copy is lost without a word.
 */
async function folderFor(client: ImapClient, use: '\\Sent' | '\\Drafts'): Promise<string> {
  const found = specialFolder(await client.listFolders(), use);
  if (found) return found;
  const name = use.slice(1);
  await client.createFolder(name);
  return name;
}

async function sourceAttachments(context: RequestContext, source: MessageRef): Promise<Attachment[]> {
  const message = await context.app.pool.use(context.session, (client) => client.message(source.folder, source.uid));
  return message ? planMessage(message.structure).attachments : [];
}

/** The original's attachments the user kept, streamed from IMAP into the new message. */
async function keptAttachments(context: RequestContext, source: MessageRef, kept: Set<string>): Promise<OutgoingAttachment[]> {
  const { app, session } = context;
  const message = await app.pool.use(session, (client) => client.message(source.folder, source.uid));
  if (!message) return [];
  const chosen: OutgoingAttachment[] = [];
  for (const section of kept) {
    const part = findPart(message.structure, section);
    if (!part) continue;
    const { filename, contentType } = attachmentOf(part);
    chosen.push({ filename, contentType, content: () => decodedContent(app.pool.stream(session, (client) => client.section(source.folder, source.uid, section)), part) });
  }
  return chosen;
}

export const COMPOSE_ROUTES: Route[] = [
  { method: 'GET', path: '/compose', access: 'session', handler: showCompose },
  { method: 'POST', path: '/compose', access: 'session', body: 'multipart', handler: sendOrSave },
];
