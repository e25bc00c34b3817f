// LIST and LSUB: which folders there are (RFC 3501 6.3.8, 6.3.9), with the
// extended LIST of RFC 5258 (selection options, several patterns, RETURN
// options), its STATUS return option (LIST-STATUS, RFC 5819), and the
// attributes of CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154).
//
//     LIST "" "%"                                       the top level
//     LIST (SUBSCRIBED) "" "*"                           what the user subscribed to
//     LIST "" ("INBOX" "Sent") RETURN (STATUS (MESSAGES UNSEEN))

import { listFolders, subscriptions } from '../store/folders.ts';
import type { FolderEntry } from '../store/folders.ts';
import { listMatcher, DELIMITER } from './list-pattern.ts';
import { ParseError } from './parser.ts';
import type { ArgReader } from './parser.ts';
import { ok } from './response.ts';
import { decodeName, wireName } from './mailbox-names.ts';
import { accountOf, openFolder, statusValues, STATUS_ITEMS } from './mailbox-commands.ts';
import type { ImapOutcome, ImapRequest, ImapView } from './types.ts';

const SELECTION = ['SUBSCRIBED', 'REMOTE', 'RECURSIVEMATCH', 'SPECIAL-USE'];

interface ListRequest {
  selection: string[];
  reference: string;
  patterns: string[];
  /** RETURN (...): SUBSCRIBED, CHILDREN, SPECIAL-USE; `status` its STATUS items. */
  returns: string[];
  status: string[];
}

function readList(session: ImapView, args: ArgReader): ListRequest {
  const request: ListRequest = { selection: [], reference: '', patterns: [], returns: [], status: [] };
  args.sp();
  if (args.peek() === '(') {
    request.selection = args.list((r) => r.keyword());
    for (const option of request.selection) if (!SELECTION.includes(option)) throw new ParseError(`unknown LIST selection option ${option}`);
    // RFC 5258 3: RECURSIVEMATCH only qualifies another selection option; alone (or with REMOTE only) it is BAD.
    if (request.selection.includes('RECURSIVEMATCH') && !request.selection.some((option) => option !== 'RECURSIVEMATCH' && option !== 'REMOTE')) {
      throw new ParseError('RECURSIVEMATCH needs another selection option');
    }
    args.sp();
  }
  request.reference = decodeName(args.listMailbox(), session.state);
  args.sp();
  const patterns = args.peek() === '(' ? args.list((r) => r.listMailbox()) : [args.listMailbox()];
  request.patterns = patterns.map((pattern) => decodeName(pattern, session.state));
  if (!args.atEnd()) {
    if (args.sp().keyword() !== 'RETURN') throw new ParseError('expected RETURN');
    args.sp().list((r) => {
      const option = r.keyword();
      request.returns.push(option);
      if (option === 'STATUS') {
        request.status = r.sp().list((x) => x.keyword());
        for (const item of request.status) if (!(STATUS_ITEMS as readonly string[]).includes(item)) throw new ParseError(`unknown STATUS item ${item}`);
      } else if (!['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE'].includes(option)) {
        throw new ParseError(`unknown LIST return option ${option}`);
      }
    });
  }
  args.end();
  return request;
}

/** LIST, plain or extended. */
export async function list(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const request = readList(session, args);
  const extended = request.selection.length > 0 || request.returns.length > 0 || request.patterns.length > 1;
  // RFC 3501 6.3.8: an empty pattern asks for the delimiter and the root.
  if (!extended && request.patterns[0] === '') return { reply: ok(tag, 'LIST completed', undefined, [`LIST (\\Noselect) "${DELIMITER}" ""`]) };
  const account = accountOf(session);
  const matchers = request.patterns.map((pattern) => listMatcher(request.reference, pattern));
  const matches = (name: string) => matchers.some((match) => match(name));
  const subscribed = request.selection.includes('SUBSCRIBED') || request.returns.includes('SUBSCRIBED') ? await subscriptions(account) : new Set<string>();
  const folders = await listFolders(account);
  const byName = new Map(folders.map((folder) => [folder.name, folder]));

  // What to list: every folder, or (SUBSCRIBED) the subscribed names, existing or not (RFC 5258 3.1).
  let names = folders.map((folder) => folder.name);
  if (request.selection.includes('SUBSCRIBED')) names = [...subscribed].sort();
  if (request.selection.includes('SPECIAL-USE')) names = names.filter((name) => byName.get(name)?.specialUse);
  const lines: string[] = [];
  const listed = new Set<string>();
  for (const name of names) {
    if (!matches(name)) continue;
    listed.add(name);
    lines.push(listLine('LIST', name, byName.get(name), subscribed, request, session));
  }
  // RECURSIVEMATCH: a parent that is not itself selected but has a subscribed child gets CHILDINFO (RFC 5258 3.5).
  if (request.selection.includes('RECURSIVEMATCH') && request.selection.includes('SUBSCRIBED')) {
    for (const folder of folders) {
      if (listed.has(folder.name) || !matches(folder.name)) continue;
      if ([...subscribed].some((name) => name.startsWith(folder.name + DELIMITER))) {
        lines.push(`${listLine('LIST', folder.name, folder, subscribed, request, session)} ("CHILDINFO" ("SUBSCRIBED"))`);
      }
    }
  }
  // LIST-STATUS (RFC 5819): a STATUS response after each selectable folder.
  if (request.status.length > 0) {
    const withStatus: string[] = [];
    for (const line of lines) {
      withStatus.push(line);
      const name = [...listed].find((n) => line.endsWith(` ${wireName(n, session.state)}`));
      if (name && byName.get(name)?.selectable) withStatus.push(await statusLine(session, name, request.status));
    }
    return { reply: ok(tag, 'LIST completed', undefined, withStatus) };
  }
  return { reply: ok(tag, 'LIST completed', undefined, lines) };
}

/** `LIST (\HasNoChildren \Sent \Subscribed) "/" Sent` */
function listLine(kind: string, name: string, folder: FolderEntry | undefined, subscribed: ReadonlySet<string>, request: ListRequest, session: ImapView): string {
  const attributes: string[] = [];
  if (!folder) attributes.push('\\NonExistent'); // subscribed, but not there (RFC 5258 3.4)
  else {
    if (!folder.selectable) attributes.push('\\Noselect');
    attributes.push(folder.hasChildren ? '\\HasChildren' : '\\HasNoChildren');
    if (folder.specialUse) attributes.push(folder.specialUse);
  }
  if (subscribed.has(name) && (request.returns.includes('SUBSCRIBED') || request.selection.includes('SUBSCRIBED'))) attributes.push('\\Subscribed');
  return `${kind} (${attributes.join(' ')}) "${DELIMITER}" ${wireName(name, session.state)}`;
}

async function statusLine(session: ImapView, name: string, items: readonly string[]): Promise<string> {
  const mailbox = await openFolder(session, name);
  try {
    const values = statusValues(mailbox, items);
    return `STATUS ${wireName(name, session.state)} (${items.map((item) => `${item} ${values[item]}`).join(' ')})`;
  } finally {
    await mailbox.close();
  }
}

/** LSUB (RFC 3501 6.3.9): the subscribed names that match. */
export async function lsub(session: ImapView, { tag, args }: ImapRequest): Promise<ImapOutcome> {
  const reference = decodeName(args.sp().listMailbox(), session.state);
  const pattern = decodeName(args.sp().listMailbox(), session.state);
  args.end();
  const matches = listMatcher(reference, pattern);
  const account = accountOf(session);
  const existing = new Map((await listFolders(account)).map((folder) => [folder.name, folder]));
  const lines: string[] = [];
  for (const name of [...(await subscriptions(account))].sort()) {
    if (!matches(name)) continue;
    const attributes = existing.get(name)?.selectable ? '' : '\\Noselect';
    lines.push(`LSUB (${attributes}) "${DELIMITER}" ${wireName(name, session.state)}`);
  }
  return { reply: ok(tag, 'LSUB completed', undefined, lines) };
}
