// The IMAP commands about mailboxes (RFC 3501 6.3): SELECT, EXAMINE, CREATE,
// DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB, STATUS, APPEND, and
// NAMESPACE (RFC 2342). Folders are mbox files (store/folders.ts); names go
// over the wire in modified UTF-7 (mutf7.ts) and are Unicode in the store.

import { lstat } from 'node:fs/promises';
import { createFolder, deleteFolder, renameFolder, setSubscribed, folderPath, isInbox, NoSuchFolderError } from '../store/folders.ts';
import { openMailbox, SYSTEM_FLAGS } from '../store/mailbox.ts';
import type { Mailbox } from '../store/mailbox.ts';
import { accountDir } from '../store/paths.ts';
import { DELIMITER } from './list-pattern.ts';
import { readMailboxName, wireName } from './mailbox-names.ts';
import { ParseError } from './parser.ts';
import { bad, no, ok } from './response.ts';
import type { ImapResponse } from './response.ts';
import { storeCall } from './errors.ts';
import { literalBytes, literalSize } from './literals.ts';
import { Selected } from './selected.ts';
import type { ImapOutcome, ImapRequest, ImapState, ImapView } from './types.ts';
import { condstore, enabling, rev2 } from './extensions.ts';
import { pendingUpdates } from './extensions.ts';

const answer = (reply: ImapResponse): ImapOutcome => ({ reply });

/** The logged-in account's directory. */
export function accountOf(session: ImapView): string {
  return accountDir(session.ctx.dataDir, session.state.account!);
}

/** Opens a folder's mailbox (shared with every session on it); NoSuchFolderError if it is not a folder one can select. */
export async function openFolder(session: ImapView, name: string): Promise<Mailbox> {
  const path = folderPath(accountOf(session), name);
  const info = await lstat(path).catch(() => null);
  if (!info?.isFile()) throw new NoSuchFolderError(`no mailbox ${JSON.stringify(name)}`);
  return openMailbox(path, { lockTimeoutMs: session.ctx.config.limits.lockTimeoutSeconds * 1000 });
}

/** SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2). */
async function select(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const name = readMailboxName(args.sp(), session.state);
  // RFC 7162 3.1.8: SELECT mailbox (CONDSTORE) switches CONDSTORE on.
  let enable: Partial<ImapState> = {};
  if (!args.atEnd()) {
    args.sp().list((r) => {
      const parameter = r.keyword();
      if (parameter !== 'CONDSTORE') throw new ParseError(`unknown SELECT parameter ${parameter}`);
      enable = enabling(session.state, 'CONDSTORE');
    });
  }
  args.end();
  const state = { ...session.state, ...enable };
  const readOnly = verb === 'EXAMINE';
  // Whatever happens, the mailbox selected before is no longer (RFC 3501 6.3.1).
  await session.state.selected?.close();
  // RFC 7162 3.2.11 (and RFC 9051 7.1): CLOSED says the old mailbox is gone before the new one's data.
  const closed = session.state.selected && (condstore(state) || rev2(state)) ? ['OK [CLOSED] Previous mailbox closed'] : [];
  const deselected: ImapOutcome = { change: { ...enable, phase: 'authenticated', selected: null } };
  const opened = await storeCall(tag, false, () => openFolder(session, name));
  if ('reply' in opened) return { ...deselected, reply: { ...opened.reply, untagged: closed } };
  const mailbox = opened.ok;
  const selected = Selected.open(name, readOnly, mailbox);
  const keywords = mailbox.keywords();
  const flags = [...SYSTEM_FLAGS, ...keywords].join(' ');
  const untagged = [
    ...closed,
    `FLAGS (${flags})`,
    // RFC 3501 7.1: \* says the client may create new keywords.
    `OK [PERMANENTFLAGS (${readOnly ? '' : `${flags} \\*`})] Flags permitted`,
    `${selected.exists} EXISTS`,
  ];
  // IMAP4rev2 has neither \Recent nor UNSEEN (RFC 9051 7.3.1, appendix E).
  if (!rev2(state)) {
    untagged.push(`${selected.recentCount} RECENT`);
    const unseen = firstUnseen(selected);
    if (unseen > 0) untagged.push(`OK [UNSEEN ${unseen}] First unseen`);
  }
  untagged.push(`OK [UIDVALIDITY ${mailbox.uidValidity}] UIDs valid`, `OK [UIDNEXT ${mailbox.uidNext}] Predicted next UID`);
  // RFC 9051 6.3.2: an IMAP4rev2 client is told the mailbox's name as the server spells it.
  if (rev2(state)) untagged.push(`LIST () "${DELIMITER}" ${wireName(name, state)}`);
  // RFC 7162 3.1.2.1: a server that keeps mod-sequences (every mailbox here
  // does, so never NOMODSEQ) sends HIGHESTMODSEQ on every successful SELECT
  // and EXAMINE, whether or not the client has switched CONDSTORE on; saying
  // it does not switch CONDSTORE on (RFC 7162 3.1: only enabling commands do).
  untagged.push(`OK [HIGHESTMODSEQ ${mailbox.highestModseq}] Highest`);
  return {
    change: { ...enable, phase: 'selected', selected },
    reply: ok(tag, `${verb} completed`, readOnly ? 'READ-ONLY' : 'READ-WRITE', untagged),
  };
}

/** The sequence number of the first message without \Seen (RFC 3501 7.1 UNSEEN), or 0. */
function firstUnseen(selected: Selected): number {
  for (let seq = 1; seq <= selected.exists; seq++) {
    const record = selected.message(selected.uidAt(seq));
    if (record && !record.flags.includes('\\Seen')) return seq;
  }
  return 0;
}

/** CREATE (RFC 3501 6.3.3); a trailing delimiter only says the client wants children later. */
async function create(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  let name = readMailboxName(args.sp(), session.state);
  args.end();
  // A server that does not need that declaration MUST ignore it (every folder here can hold subfolders).
  if (name.endsWith(DELIMITER)) name = name.slice(0, -1);
  if (isInbox(name)) return answer(no(tag, 'INBOX always exists', 'ALREADYEXISTS'));
  const done = await storeCall(tag, false, () => createFolder(accountOf(session), name));
  return answer('reply' in done ? done.reply : ok(tag, 'CREATE completed'));
}

/** DELETE (RFC 3501 6.3.4): not INBOX, not a folder with subfolders (as Dovecot's mbox). */
async function remove(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const name = readMailboxName(args.sp(), session.state);
  args.end();
  if (isInbox(name)) return answer(no(tag, 'INBOX cannot be deleted', 'CANNOT'));
  const done = await storeCall(tag, false, () => deleteFolder(accountOf(session), name));
  return answer('reply' in done ? done.reply : ok(tag, 'DELETE completed'));
}

/** RENAME (RFC 3501 6.3.5); renaming INBOX moves its messages and leaves it empty. */
async function rename(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const from = readMailboxName(args.sp(), session.state);
  const to = readMailboxName(args.sp(), session.state);
  args.end();
  if (isInbox(to)) return answer(no(tag, 'INBOX already exists', 'ALREADYEXISTS'));
  const done = await storeCall(tag, false, () => renameFolder(accountOf(session), from, to));
  return answer('reply' in done ? done.reply : ok(tag, 'RENAME completed'));
}

/** SUBSCRIBE and UNSUBSCRIBE (RFC 3501 6.3.6, 6.3.7). */
async function subscribe(session: ImapView, { tag, verb, args }: ImapRequest): Promise<ImapOutcome> {
  const name = readMailboxName(args.sp(), session.state);
  args.end();
  const done = await storeCall(tag, false, () => setSubscribed(accountOf(session), name, verb === 'SUBSCRIBE'));
  return answer('reply' in done ? done.reply : ok(tag, `${verb} completed`));
}

/** NAMESPACE (RFC 2342): one personal namespace, the root, "/" between levels. */
function namespace(_session: ImapView, { tag, args }: ImapRequest): ImapOutcome {
  args.end();
  return answer(ok(tag, 'NAMESPACE completed', undefined, [`NAMESPACE (("" "${DELIMITER}")) NIL NIL`]));
}

/** RFC 3501 6.3.10, with HIGHESTMODSEQ (RFC 7162 3.1.5), SIZE (RFC 8438) and DELETED (RFC 9051 6.3.11). */
export const STATUS_ITEMS = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'DELETED'] as const;

/** STATUS (RFC 3501 6.3.10). */
async function status(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const name = readMailboxName(args.sp(), session.state);
  const items = args.sp().list((r) => r.keyword());
  args.end();
  for (const item of items) if (!(STATUS_ITEMS as readonly string[]).includes(item)) throw new ParseError(`unknown STATUS item ${item}`);
  const opened = await storeCall(tag, false, () => openFolder(session, name));
  if ('reply' in opened) return answer(opened.reply);
  try {
    const values = statusValues(opened.ok, items);
    const line = `STATUS ${wireName(name, session.state)} (${items.map((item) => `${item} ${values[item]}`).join(' ')})`;
    return answer(ok(tag, 'STATUS completed', undefined, [line]));
  } finally {
    await opened.ok.close();
  }
}

/** The figures of STATUS (and LIST-STATUS) for the items asked; SIZE and DELETED walk the messages, so only when asked. */
export function statusValues(mailbox: Mailbox, items: readonly string[]): Record<string, number> {
  const counts = mailbox.status();
  const values: Record<string, number> = {
    MESSAGES: counts.messages,
    RECENT: counts.recent,
    UIDNEXT: counts.uidNext,
    UIDVALIDITY: counts.uidValidity,
    UNSEEN: counts.unseen,
    HIGHESTMODSEQ: counts.highestModseq,
  };
  if (items.includes('SIZE') || items.includes('DELETED')) {
    values.SIZE = 0;
    values.DELETED = 0;
    for (const uid of mailbox.snapshot().uids) {
      const record = mailbox.message(uid);
      values.SIZE += record?.size ?? 0;
      if (record?.flags.includes('\\Deleted')) values.DELETED++;
    }
  }
  return values;
}

/** APPEND mailbox [flags] [date-time] literal (RFC 3501 6.3.11), answered with APPENDUID (RFC 4315). */
async function append(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const name = readMailboxName(args.sp(), session.state);
  args.sp();
  let flags: string[] = [];
  if (args.peek() === '(') {
    flags = args.flagList();
    args.sp();
  }
  let date = new Date();
  if (args.peek() === '"') {
    date = args.dateTime();
    args.sp();
  }
  const literal = args.literal();
  args.end();
  if (literalSize(literal) === 0) return answer(no(tag, 'An empty message cannot be appended', 'CANNOT'));
  if (flags.some((flag) => flag.toLowerCase() === '\\recent')) return answer(bad(tag, '\\Recent cannot be set'));
  const target = await storeCall(tag, true, () => openFolder(session, name));
  if ('reply' in target) return answer(target.reply);
  const uidValidity = target.ok.uidValidity;
  try {
    const item = { content: () => literalBytes(literal), flags, internalDate: date };
    const appended = await storeCall(tag, true, () => target.ok.append([item]));
    if ('reply' in appended) return answer(appended.reply);
    // If it went into the selected mailbox, the client hears of it now (RFC 3501 6.3.11).
    const untagged = pendingUpdates(session.state, false);
    return answer(ok(tag, 'APPEND completed', `APPENDUID ${uidValidity} ${appended.ok[0]}`, untagged));
  } finally {
    await target.ok.close();
  }
}

export const mailboxCommands = { select, create, remove, rename, subscribe, namespace, status, append };
