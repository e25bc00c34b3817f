// What a login sets up for the account: its directory, INBOX and the
// special-use folders (RFC 6154: Sent, Drafts, Trash, Junk, Archive) that
// Thunderbird and K-9 look for; made at the first login, never again.

import { ensureDefaultFolders } from '../store/folders.ts';
import { accountDir } from '../store/paths.ts';
import type { ImapView } from './types.ts';

export async function afterLogin(session: ImapView, account: string): Promise<void> {
  await ensureDefaultFolders(accountDir(session.ctx.dataDir, account));
}
