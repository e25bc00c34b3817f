// The folder list as the pages show it: every folder with its counts (LIST,
// then STATUS for each, RFC 3501 6.3.8 and 6.3.10), INBOX first, then the
// special-use folders (RFC 6154) in the order Thunderbird shows them, then
// the rest by name, children under their parents.

import type { Folder, ImapClient } from '../imap-client/client.ts';

export interface FolderInfo extends Folder {
  messages: number;
  unseen: number;
  /** 0 for a top-level folder. */
  depth: number;
  /** The last component of the name, or the usual name of a special folder. */
  label: string;
}

const SPECIAL_ORDER = ['\\Drafts', '\\Sent', '\\Archive', '\\Junk', '\\Trash'];

export async function foldersWithCounts(client: ImapClient): Promise<FolderInfo[]> {
  const folders = await client.listFolders();
  const infos: FolderInfo[] = [];
  for (const folder of folders) {
    const counts = folder.selectable ? await client.status(folder.name) : { messages: 0, unseen: 0 };
    const parts = folder.delimiter ? folder.name.split(folder.delimiter) : [folder.name];
    const label = folder.name.toUpperCase() === 'INBOX' ? 'Inbox' : parts[parts.length - 1];
    infos.push({ ...folder, ...counts, depth: parts.length - 1, label });
  }
  return infos.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

function rank(folder: FolderInfo): number {
  if (folder.name.toUpperCase() === 'INBOX') return 0;
  const top = folder.depth === 0 ? folder : null;
  const special = top?.specialUse ? SPECIAL_ORDER.indexOf(top.specialUse) : -1;
  return special >= 0 ? 1 + special : 10;
}

/** The folder with this special use (RFC 6154), or one with its usual name, or null. */
export function specialFolder(folders: readonly Folder[], use: '\\Sent' | '\\Drafts' | '\\Trash'): string | null {
  const byUse = folders.find((f) => f.specialUse?.toLowerCase() === use.toLowerCase());
  if (byUse) return byUse.name;
  const usual = use.slice(1);
  return folders.find((f) => f.name.toLowerCase() === usual.toLowerCase())?.name ?? null;
}
