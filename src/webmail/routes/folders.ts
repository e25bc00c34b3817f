// The folder page and its forms: create, rename, delete (RFC 3501 6.3.3-6.3.5)
// and empty the Trash (only the Trash, checked here and not only by which
// page shows the button: a forged form cannot empty INBOX). Each form
// posts, acts over IMAP, and redirects back with a notice
// (Post/Redirect/Get); the refusals (a name in use, a folder with
// children, INBOX) are shown as they come.

import type { RequestContext } from '../app.ts';
import type { Reply } from '../http/reply.ts';
import { ImapCommandError } from '../imap-client/connection.ts';
import type { ImapClient } from '../imap-client/client.ts';
import { foldersWithCounts, specialFolder } from '../mail/folders.ts';
import { foldersPage } from '../pages/folders.ts';
import { takeNotice } from '../pages/layout.ts';
import type { Route } from './index.ts';

/** RFC 3501 does not limit names; the store takes 200 bytes a component. Anything longer is a mistake. */
const MAX_NAME = 500;

async function showFolders(context: RequestContext): Promise<Reply> {
  const { app, session } = context;
  const folders = await app.pool.use(session, (client) => foldersWithCounts(client));
  return { kind: 'page', body: foldersPage(session, folders, takeNotice(session)) };
}

/** Run a folder change; a NO from the server becomes the folder page with the reason. */
async function change(context: RequestContext, work: (client: ImapClient) => Promise<string>): Promise<Reply> {
  const { app, session } = context;
  try {
    session.notice = await app.pool.use(session, work);
    return { kind: 'redirect', location: '/folders' };
  } catch (err) {
    if (!(err instanceof ImapCommandError)) throw err;
    const folders = await app.pool.use(session, (client) => foldersWithCounts(client));
    return { kind: 'page', status: 400, body: foldersPage(session, folders, null, `The mail server refused: ${err.message}`) };
  }
}

function folderName(value: string | null): string {
  const name = (value ?? '').trim();
  if (!name || name.length > MAX_NAME) throw new ImapCommandError('NO', null, 'Give the folder a name.', []);
  return name;
}

async function create(context: RequestContext): Promise<Reply> {
  return change(context, async (client) => {
    const name = folderName(context.form.get('name'));
    await client.createFolder(name);
    return `Folder ${name} created.`;
  });
}

async function rename(context: RequestContext): Promise<Reply> {
  return change(context, async (client) => {
    const from = folderName(context.form.get('from'));
    const to = folderName(context.form.get('to'));
    if (from === to) return 'Nothing to rename.';
    await client.renameFolder(from, to);
    return `Folder ${from} is now ${to}.`;
  });
}

async function remove(context: RequestContext): Promise<Reply> {
  return change(context, async (client) => {
    const name = folderName(context.form.get('name'));
    await client.deleteFolder(name);
    return `Folder ${name} deleted.`;
  });
}

async function empty(context: RequestContext): Promise<Reply> {
  return change(context, async (client) => {
    const name = folderName(context.form.get('name'));
    // Roundcube empties only the Trash and Junk; we have a button for the Trash alone.
    if (name !== specialFolder(await client.listFolders(), '\\Trash')) {
      throw new ImapCommandError('NO', null, `Only the Trash can be emptied, not ${name}.`, []);
    }
    await client.expungeAll(name);
    return `${name} is empty.`;
  });
}

export const FOLDER_ROUTES: Route[] = [
  { method: 'GET', path: '/folders', access: 'session', handler: showFolders },
  { method: 'POST', path: '/folders/create', access: 'session', body: 'form', handler: create },
  { method: 'POST', path: '/folders/rename', access: 'session', body: 'form', handler: rename },
  { method: 'POST', path: '/folders/delete', access: 'session', body: 'form', handler: remove },
  { method: 'POST', path: '/folders/empty', access: 'session', body: 'form', handler: empty },
];
