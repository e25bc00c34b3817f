// The message list, reading a message, its HTML frame, its inline images
// (mail/inline-images.ts) and attachments, and the actions on checked messages (flags, move, delete to Trash).
//
// Messages are addressed by folder and UID in every URL and form, so a
// page stays right while mail arrives or goes (RFC 3501 2.3.1.1); the
// list pages through sequence numbers from the newest message.

import type { RequestContext } from '../app.ts';
import { url } from '../http/html.ts';
import { imageSignatureValid, signedImageQuery } from '../http/image-links.ts';
import type { Reply } from '../http/reply.ts';
import { astringArg } from '../imap-client/command-args.ts';
import type { BodyPart } from '../imap-client/bodystructure.ts';
import type { CommandPart } from '../imap-client/connection.ts';
import { foldersWithCounts, specialFolder } from '../mail/folders.ts';
import { htmlForFrame } from '../mail/html-mail.ts';
import { INLINE_IMAGE_PATH, INLINE_IMAGE_TYPES, referencedContentIds, rewriteCidSources } from '../mail/inline-images.ts';
import { attachmentOf, decodedContent, decodedText, findPart, planMessage } from '../mail/read-message.ts';
import { errorPage } from '../pages/error.ts';
import { takeNotice } from '../pages/layout.ts';
import { messageListPage } from '../pages/message-list.ts';
import { messagePage } from '../pages/message.ts';
import { messageRef, uidOf } from './message-ref.ts';
import type { Route } from './index.ts';

/** Text shown on the page at most; the rest is a download away. */
const MAX_TEXT_BYTES = 2 * 1024 * 1024;
/** A search string longer than this is not a search. */
const MAX_QUERY = 500;

async function showList(context: RequestContext): Promise<Reply> {
  const { app, session, query } = context;
  const folder = query.get('folder') || 'INBOX';
  const search = (query.get('q') ?? '').trim().slice(0, MAX_QUERY);
  const scope = query.get('in') === 'text' ? 'text' : 'headers';
  const requested = Math.max(1, Math.floor(Number(query.get('page')) || 1));
  const size = app.settings.pageSize;
  const view = await app.pool.use(session, async (client) => {
    const folders = await foldersWithCounts(client);
    const selected = await client.select(folder);
    if (search) {
      // RFC 3501 6.4.4: FROM and SUBJECT are substring matches; TEXT looks in the whole message.
      const criteria: CommandPart[] = scope === 'text' ? ['TEXT ', astringArg(search)] : ['OR FROM ', astringArg(search), ' SUBJECT ', astringArg(search)];
      const uids = (await client.search(folder, criteria)).sort((a, b) => b - a);
      const pages = Math.max(1, Math.ceil(uids.length / size));
      const page = Math.min(requested, pages);
      const messages = await client.summariesByUid(folder, uids.slice((page - 1) * size, page * size));
      return { folders, messages, page, pages, total: uids.length };
    }
    const pages = Math.max(1, Math.ceil(selected.exists / size));
    const page = Math.min(requested, pages);
    const newest = selected.exists - (page - 1) * size;
    const messages = await client.summariesBySequence(folder, newest - size + 1, newest);
    return { folders, messages, page, pages, total: selected.exists };
  });
  const isTrash = view.folders.find((f) => f.name === folder)?.specialUse === '\\Trash';
  return { kind: 'page', body: messageListPage(session, { ...view, folder, query: search, scope, isTrash, notice: takeNotice(session) }) };
}

async function showMessage(context: RequestContext): Promise<Reply> {
  const { app, session, query } = context;
  const ref = messageRef(query.get('folder'), query.get('uid'));
  if (!ref) return errorPage(400, 'Which message? The link is incomplete.');
  const result = await app.pool.use(session, async (client) => {
    const message = await client.message(ref.folder, ref.uid);
    if (!message) return null;
    const folders = await foldersWithCounts(client);
    let plan = planMessage(message.structure);
    // Opening a message marks it read (BODY.PEEK never does by itself).
    if (!message.flags.some((f) => f.toLowerCase() === '\\seen')) await client.setFlags(ref.folder, [ref.uid], true, ['\\Seen']);
    const showHtml = plan.html !== null && query.get('view') !== 'text';
    if (showHtml && plan.html && plan.attachments.some((a) => a.part.id)) {
      // The images the HTML shows are in the frame, not in the list of attachments.
      const markup = await decodedText(client.section(ref.folder, ref.uid, plan.html.section, undefined, MAX_TEXT_BYTES), plan.html);
      plan = planMessage(message.structure, referencedContentIds(markup));
    }
    let text: string | null = null;
    let textTruncated = false;
    if (!showHtml && plan.text) {
      text = await decodedText(client.section(ref.folder, ref.uid, plan.text.section, undefined, MAX_TEXT_BYTES), plan.text);
      textTruncated = plan.text.size > MAX_TEXT_BYTES;
    }
    return { message, folders, plan, showHtml, text, textTruncated };
  });
  if (!result) return errorPage(404, 'This message is not there any more.');
  const isDraft = result.folders.find((f) => f.name === ref.folder)?.specialUse === '\\Drafts';
  return {
    kind: 'page',
    body: messagePage(session, { ...ref, ...result, folder: ref.folder, remoteImages: query.get('images') === '1', isDraft, notice: takeNotice(session) }),
  };
}

/** The HTML part alone, for the sandboxed iframe: only a part that is text/html is ever served as HTML. */
async function mailFrame(context: RequestContext): Promise<Reply> {
  const { app, session, query } = context;
  const ref = messageRef(query.get('folder'), query.get('uid'));
  const section = query.get('part') ?? '';
  if (!ref) return errorPage(400, 'Which message?');
  const found = await app.pool.use(session, async (client) => {
    const message = await client.message(ref.folder, ref.uid);
    const part = message && findPart(message.structure, section);
    if (!message || !part || part.type !== 'text' || part.subtype !== 'html') return null;
    const markup = await decodedText(client.section(ref.folder, ref.uid, section, undefined, MAX_TEXT_BYTES), part);
    const linkTo = (image: BodyPart) => url(INLINE_IMAGE_PATH, signedImageQuery(session, ref.folder, ref.uid, image.section));
    return { markup, rewritten: rewriteCidSources(markup, message.structure, linkTo) };
  });
  if (found === null) return errorPage(404, 'There is no such part.');
  // The policy lets the frame load from /message/inline only when the mail has images there.
  const inlineImages = found.rewritten !== found.markup ? inlineImagesSource(context) : null;
  return { kind: 'mail-frame', body: htmlForFrame(found.rewritten), remoteImages: query.get('images') === '1', inlineImages };
}

/**
 * Where the frame may load inline images from, as a CSP source with a path
 * (CSP 3 host-source: this address exactly): our own origin as the browser
 * named it. Not 'self', whose meaning in an opaque-origin (sandboxed)
 * document browsers have not always agreed on.
 */
function inlineImagesSource(context: RequestContext): string | null {
  const host = context.req.headers.host ?? '';
  return /^([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.test(host) ? `https://${host.toLowerCase()}${INLINE_IMAGE_PATH}` : null;
}

/**
 * An inline image of an HTML mail, for its frame. The frame's requests
 * come without our cookie, so the signed link says whose it is
 * (http/image-links.ts). Only raster types are served as images (never
 * SVG or HTML, which can hold script); any other part asked for here
 * comes as a download that nothing renders.
 */
async function inlineImage(context: RequestContext): Promise<Reply> {
  const { app, query } = context;
  const ref = messageRef(query.get('folder'), query.get('uid'));
  const section = query.get('part') ?? '';
  if (!ref || !/^\d+(\.\d+)*$/.test(section)) return errorPage(400, 'Which image?');
  const session = app.sessions.forImage(query.get('k'));
  if (!session || !imageSignatureValid(session, ref.folder, ref.uid, section, query.get('sig'))) return errorPage(403, 'This image link is not valid (any more).');
  const part = await app.pool.use(session, async (client) => {
    const message = await client.message(ref.folder, ref.uid);
    return message && findPart(message.structure, section);
  });
  if (!part || part.type === 'multipart') return errorPage(404, 'There is no such image.');
  const contentType = `${part.type}/${part.subtype}`;
  const body = decodedContent(app.pool.stream(session, (client) => client.section(ref.folder, ref.uid, section)), part);
  if (!INLINE_IMAGE_TYPES.has(contentType)) return { kind: 'download', contentType: 'application/octet-stream', filename: attachmentOf(part).filename, body };
  return { kind: 'inline-image', contentType, body };
}

/** An attachment (or any single part) as a download, decoded as it streams from IMAP. */
async function attachment(context: RequestContext): Promise<Reply> {
  const { app, session, query } = context;
  const ref = messageRef(query.get('folder'), query.get('uid'));
  const section = query.get('part') ?? '';
  if (!ref || !/^\d+(\.\d+)*$/.test(section)) return errorPage(400, 'Which attachment?');
  const part = await app.pool.use(session, async (client) => {
    const message = await client.message(ref.folder, ref.uid);
    return message && findPart(message.structure, section);
  });
  if (!part || part.type === 'multipart') return errorPage(404, 'There is no such attachment.');
  const { filename, contentType } = attachmentOf(part);
  const pieces = app.pool.stream(session, (client) => client.section(ref.folder, ref.uid, section));
  return { kind: 'download', contentType, filename, body: decodedContent(pieces, part) };
}

/** What the buttons of the list and of a message do. */
async function act(context: RequestContext): Promise<Reply> {
  const { app, session, form } = context;
  const folder = form.get('folder') ?? '';
  const uids = form.getAll('uid').map(uidOf).filter((uid) => uid !== null);
  const back = form.get('back') ?? '';
  // Only a path of this site: not "//host" nor "/\\host" (which browsers read as "//host"), nothing but visible ASCII.
  const location = /^\/(?![/\\])[\x21-\x7e]*$/.test(back) ? back : url('/mail', { folder });
  const action = form.get('action');
  if (!folder || uids.length === 0) {
    session.notice = 'Select one or more messages first.';
    return { kind: 'redirect', location };
  }
  const count = `${uids.length} ${uids.length === 1 ? 'message' : 'messages'}`;
  session.notice = await app.pool.use(session, async (client) => {
    switch (action) {
      case 'read':
      case 'unread':
        await client.setFlags(folder, uids, action === 'read', ['\\Seen']);
        return `${count} marked ${action}.`;
      case 'flag':
      case 'unflag':
        await client.setFlags(folder, uids, action === 'flag', ['\\Flagged']);
        return `${count} ${action}ged.`;
      case 'move': {
        const target = form.get('target') ?? '';
        if (!target || target === folder) return 'Choose another folder to move to.';
        await client.move(folder, uids, target);
        return `${count} moved to ${target}.`;
      }
      case 'delete': {
        // To the Trash, as every mail client does; in the Trash itself (or with no Trash), for good.
        const trash = specialFolder(await client.listFolders(), '\\Trash');
        if (trash && trash !== folder) {
          await client.move(folder, uids, trash);
          return `${count} moved to ${trash}.`;
        }
        await client.expunge(folder, uids);
        return `${count} deleted.`;
      }
      default:
        return 'Nothing to do.';
    }
  });
  return { kind: 'redirect', location };
}

export const MESSAGE_ROUTES: Route[] = [
  { method: 'GET', path: '/mail', access: 'session', handler: showList },
  { method: 'GET', path: '/message', access: 'session', handler: showMessage },
  { method: 'GET', path: '/message/html', access: 'session', handler: mailFrame },
  { method: 'GET', path: '/message/attachment', access: 'session', handler: attachment },
  // Public: the signed link, not the cookie, names the session (http/image-links.ts).
  { method: 'GET', path: INLINE_IMAGE_PATH, access: 'public', handler: inlineImage },
  { method: 'POST', path: '/mail/action', access: 'session', body: 'form', handler: act },
];
