// The webmail's IMAP client: the commands a mail reader needs (RFC 3501 6,
// with UIDPLUS RFC 4315, MOVE RFC 6851, SPECIAL-USE RFC 6154 and ID RFC
// 2971), each a method that sends one command and reads the answer into
// plain data. Messages are named by UID (RFC 3501 2.3.1.1), which stays
// the same between page views; sequence numbers are used only to page
// through a folder from its newest message.
//
// What the server is asked for, and why:
//   LIST "" "*"                        every folder, with \Sent, \Trash ... (SPECIAL-USE)
//   STATUS f (MESSAGES UNSEEN)         the counts beside each folder
//   SELECT f                           the folder's size before a page of it
//   FETCH a:b (UID FLAGS ENVELOPE ..)  one page of the message list
//   UID SEARCH CHARSET UTF-8 ...       the search box
//   UID FETCH u (BODYSTRUCTURE BODY.PEEK[HEADER])    a message's parts and header
//   UID FETCH u (BODY.PEEK[1.2]<0.n>)  one part, in pieces (never a whole message in memory)
//   UID STORE / UID MOVE / UID EXPUNGE flags, moving, deleting
//   APPEND f (\Seen) {n}               sent mail to Sent, drafts to Drafts
//
// BODY.PEEK, never BODY: reading a part must not mark the message read by
// itself; the webmail sets \Seen when the reader opens the message.

import { decodeMailboxName } from '../../imap/mutf7.ts';
import { ImapConnection } from './connection.ts';
import type { CommandPart, CommandResult, ImapServerAddress, Trace } from './connection.ts';
import { astringArg, mailboxArg, sequenceSet, stringArg } from './command-args.ts';
import { parseBodyStructure } from './bodystructure.ts';
import type { BodyPart } from './bodystructure.ts';
import { parseEnvelope } from './envelope.ts';
import type { Envelope } from './envelope.ts';
import type { FetchValue, Untagged } from './response.ts';
import { asList, asNumber, asString } from './values.ts';
import type { ImapValue } from './values.ts';

export interface Folder {
  /** Unicode, with `delimiter` between levels. */
  name: string;
  delimiter: string | null;
  /** RFC 6154: \Sent, \Drafts, \Trash, \Junk, \Archive, or null. */
  specialUse: string | null;
  selectable: boolean;
  hasChildren: boolean;
}

export interface FolderStatus {
  messages: number;
  unseen: number;
}

export interface SelectedFolder {
  name: string;
  exists: number;
  uidValidity: number;
}

export interface MessageSummary {
  seq: number;
  uid: number;
  flags: string[];
  size: number;
  internalDate: string | null;
  envelope: Envelope;
}

export interface MessageDetails extends MessageSummary {
  structure: BodyPart;
  /** The header section as sent (at most MAX_HEADER_BYTES of it). */
  header: Buffer;
}

const SPECIAL_USES = ['\\SENT', '\\DRAFTS', '\\TRASH', '\\JUNK', '\\ARCHIVE', '\\ALL', '\\FLAGGED'];
/** A header longer than this is cut for display; the rest is still in the message. */
const MAX_HEADER_BYTES = 256 * 1024;
const SUMMARY_ITEMS = 'UID FLAGS ENVELOPE RFC822.SIZE INTERNALDATE';

export class ImapClient {
  readonly connection: ImapConnection;
  /** The folder SELECTed now, or null. */
  private selected: string | null = null;
  /**
   * Each method runs alone (one browser may ask for a page, its HTML frame
   * and an attachment at once): SELECT and the commands meant for that
   * folder must not be split by another request's SELECT.
   */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(connection: ImapConnection) {
    this.connection = connection;
  }

  static async connect(server: ImapServerAddress, trace?: Trace): Promise<ImapClient> {
    return new ImapClient(await ImapConnection.open(server, trace));
  }

  private run(parts: CommandPart[], logAs?: string): Promise<CommandResult> {
    return this.connection.run(parts, logAs);
  }

  /** Run `work` when no other method of this client is running. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.lock.then(work);
    this.lock = result.catch(() => {});
    return result;
  }

  /** SELECT `name` unless it is selected already (inside `exclusive`). */
  private async use(name: string): Promise<void> {
    if (this.selected !== name) await this.selectNow(name);
  }

  /**
   * ID (RFC 2971): who we are and, for a server that trusts us, whose
   * behalf we act on (`x-originating-ip`, so its login throttle counts the
   * browser's address, not ours).
   */
  async id(fields: Record<string, string>): Promise<void> {
    if (!this.connection.capabilities.has('ID')) return;
    const list: CommandPart[] = ['ID ('];
    Object.entries(fields).forEach(([name, value], i) => list.push(i === 0 ? '' : ' ', stringArg(name), ' ', stringArg(value)));
    list.push(')');
    await this.run(list);
  }

  /** LOGIN (RFC 3501 6.2.3). A wrong password throws ImapCommandError with code AUTHENTICATIONFAILED. */
  async login(username: string, password: string): Promise<void> {
    await this.run(['LOGIN ', astringArg(username), ' ', astringArg(password)], `LOGIN ${JSON.stringify(username)} ***`);
  }

  /** LIST "" "*" (RFC 3501 6.3.8): every folder. */
  async listFolders(): Promise<Folder[]> {
    const { untagged } = await this.run(['LIST "" "*"']);
    const folders: Folder[] = [];
    for (const data of untagged) {
      if (data.type !== 'LIST') continue;
      const name = decodeMailboxName(data.name);
      if (name === null) continue; // not valid modified UTF-7: we could not name it back
      const attributes = data.attributes.map((a) => a.toUpperCase());
      const special = SPECIAL_USES.find((s) => attributes.includes(s));
      folders.push({
        name,
        delimiter: data.delimiter,
        specialUse: special ? data.attributes[attributes.indexOf(special)] : null,
        selectable: !attributes.includes('\\NOSELECT') && !attributes.includes('\\NONEXISTENT'),
        hasChildren: attributes.includes('\\HASCHILDREN'),
      });
    }
    return folders;
  }

  /** STATUS (RFC 3501 6.3.10): counts without selecting. */
  async status(name: string): Promise<FolderStatus> {
    const { untagged } = await this.run(['STATUS ', mailboxArg(name), ' (MESSAGES UNSEEN)']);
    const status = untagged.find((u) => u.type === 'STATUS');
    const values = status?.type === 'STATUS' ? status.values : new Map<string, number>();
    return { messages: values.get('MESSAGES') ?? 0, unseen: values.get('UNSEEN') ?? 0 };
  }

  /** SELECT (RFC 3501 6.3.1), always afresh: the count of messages is news. */
  select(name: string): Promise<SelectedFolder> {
    return this.exclusive(() => this.selectNow(name));
  }

  private async selectNow(name: string): Promise<SelectedFolder> {
    this.selected = null;
    const { untagged } = await this.run(['SELECT ', mailboxArg(name)]);
    this.selected = name;
    let exists = 0;
    let uidValidity = 0;
    for (const data of untagged) {
      if (data.type === 'EXISTS') exists = data.number;
      if (data.type === 'status' && data.code?.toUpperCase().startsWith('UIDVALIDITY ')) uidValidity = Number(data.code.slice(12));
    }
    return { name, exists, uidValidity };
  }

  /** The messages with sequence numbers from..to (a page of the list), newest first. */
  summariesBySequence(folder: string, from: number, to: number): Promise<MessageSummary[]> {
    return this.exclusive(async () => {
      await this.use(folder);
      if (to < from || to < 1) return [];
      const { untagged } = await this.run([`FETCH ${Math.max(from, 1)}:${to} (${SUMMARY_ITEMS})`]);
      return fetched(untagged).map(summary).sort((a, b) => b.seq - a.seq);
    });
  }

  /** The messages with these UIDs, newest (highest UID) first. */
  summariesByUid(folder: string, uids: readonly number[]): Promise<MessageSummary[]> {
    return this.exclusive(async () => {
      await this.use(folder);
      if (uids.length === 0) return [];
      const { untagged } = await this.run([`UID FETCH ${sequenceSet(uids)} (${SUMMARY_ITEMS})`]);
      return fetched(untagged).map(summary).sort((a, b) => b.uid - a.uid);
    });
  }

  /**
   * UID SEARCH (RFC 3501 6.4.4) in `folder` with `criteria` (already
   * written search keys). CHARSET UTF-8: the search text may be any language.
   */
  search(folder: string, criteria: CommandPart[]): Promise<number[]> {
    return this.exclusive(async () => {
      await this.use(folder);
      const { untagged } = await this.run(['UID SEARCH CHARSET UTF-8 ', ...criteria]);
      return untagged.flatMap((u) => (u.type === 'SEARCH' ? u.numbers : []));
    });
  }

  /** One message's summary, structure and header; null when there is no such UID (any more). */
  message(folder: string, uid: number): Promise<MessageDetails | null> {
    return this.exclusive(async () => {
      await this.use(folder);
      const { untagged } = await this.run([`UID FETCH ${uid} (${SUMMARY_ITEMS} BODYSTRUCTURE BODY.PEEK[HEADER]<0.${MAX_HEADER_BYTES}>)`]);
      const items = fetched(untagged).find((i) => asNumber(value(i, 'UID')) === uid);
      if (!items) return null;
      const structure = parseBodyStructure(value(items, 'BODYSTRUCTURE'));
      return { ...summary(items), structure, header: bytes(items, 'BODY[HEADER]<0>') ?? Buffer.alloc(0) };
    });
  }

  /**
   * A section's bytes (transfer encoding not undone), `chunkBytes` at a
   * time with partial fetches (RFC 3501 6.4.5 <origin.octets>), so a large
   * attachment passes through without being held whole. `maxBytes` stops
   * early. Other requests may run between two pieces.
   */
  async *section(folder: string, uid: number, section: string, chunkBytes = 256 * 1024, maxBytes = Infinity): AsyncGenerator<Buffer> {
    for (let start = 0; start < maxBytes; start += chunkBytes) {
      const length = Math.min(chunkBytes, maxBytes - start);
      const chunk = await this.exclusive(async () => {
        await this.use(folder);
        const { untagged } = await this.run([`UID FETCH ${uid} (BODY.PEEK[${section}]<${start}.${length}>)`]);
        const items = fetched(untagged).find((i) => asNumber(value(i, 'UID')) === uid);
        return items ? bytes(items, `BODY[${section}]<${start}>`) : null;
      });
      if (!chunk) return; // NIL or gone: nothing (more) to give
      if (chunk.length > 0) yield chunk;
      if (chunk.length < length) return;
    }
  }

  /** UID STORE +FLAGS/-FLAGS (RFC 3501 6.4.6), silently. */
  setFlags(folder: string, uids: readonly number[], add: boolean, flags: readonly string[]): Promise<void> {
    return this.exclusive(() => this.storeFlags(folder, uids, add, flags));
  }

  private async storeFlags(folder: string, uids: readonly number[], add: boolean, flags: readonly string[]): Promise<void> {
    if (uids.length === 0) return;
    await this.use(folder);
    await this.run([`UID STORE ${sequenceSet(uids)} ${add ? '+' : '-'}FLAGS.SILENT (${flags.join(' ')})`]);
  }

  /** UID MOVE (RFC 6851), or COPY, \Deleted and UID EXPUNGE where MOVE is missing (RFC 6851 3.3). */
  move(folder: string, uids: readonly number[], to: string): Promise<void> {
    return this.exclusive(async () => {
      if (uids.length === 0) return;
      await this.use(folder);
      if (this.connection.capabilities.has('MOVE')) {
        await this.run([`UID MOVE ${sequenceSet(uids)} `, mailboxArg(to)]);
        return;
      }
      await this.run([`UID COPY ${sequenceSet(uids)} `, mailboxArg(to)]);
      await this.expungeNow(folder, uids);
    });
  }

  /** Delete for good: \Deleted, then UID EXPUNGE of just these (UIDPLUS, RFC 4315 2.1). */
  expunge(folder: string, uids: readonly number[]): Promise<void> {
    return this.exclusive(() => this.expungeNow(folder, uids));
  }

  private async expungeNow(folder: string, uids: readonly number[]): Promise<void> {
    if (uids.length === 0) return;
    await this.storeFlags(folder, uids, true, ['\\Deleted']);
    await this.run([`UID EXPUNGE ${sequenceSet(uids)}`]);
  }

  /** Every message of `folder`, deleted for good (empty Trash). */
  expungeAll(folder: string): Promise<void> {
    return this.exclusive(async () => {
      const { exists } = await this.selectNow(folder);
      if (exists === 0) return;
      await this.run(['STORE 1:* +FLAGS.SILENT (\\Deleted)']);
      await this.run(['EXPUNGE']);
    });
  }

  /**
   * APPEND (RFC 3501 6.3.11) a message of `size` octets (CRLF line ends)
   * from a stream. Returns its UID when the server says (APPENDUID, RFC
   * 4315 3), else null.
   */
  append(folder: string, flags: readonly string[], size: number, content: () => AsyncIterable<Buffer>): Promise<number | null> {
    return this.exclusive(async () => {
      const { code } = await this.run(['APPEND ', mailboxArg(folder), ` (${flags.join(' ')}) `, { stream: content, size }]);
      const appendUid = /^APPENDUID \d+ (\d+)$/i.exec(code ?? '');
      return appendUid ? Number(appendUid[1]) : null;
    });
  }

  createFolder(name: string): Promise<void> {
    return this.exclusive(async () => {
      await this.run(['CREATE ', mailboxArg(name)]);
      await this.run(['SUBSCRIBE ', mailboxArg(name)]).catch(() => {}); // RFC 3501 6.3.6: optional, for other clients
    });
  }

  renameFolder(from: string, to: string): Promise<void> {
    return this.exclusive(async () => {
      await this.leave(from);
      await this.run(['RENAME ', mailboxArg(from), ' ', mailboxArg(to)]);
    });
  }

  deleteFolder(name: string): Promise<void> {
    return this.exclusive(async () => {
      await this.leave(name);
      await this.run(['DELETE ', mailboxArg(name)]);
    });
  }

  /** UNSELECT (RFC 3691) a folder about to be renamed or deleted. */
  private async leave(name: string): Promise<void> {
    if (this.selected !== name) return;
    this.selected = null;
    await this.run([this.connection.capabilities.has('UNSELECT') ? 'UNSELECT' : 'CLOSE']);
  }

  async noop(): Promise<void> {
    await this.exclusive(() => this.run(['NOOP']));
  }

  logout(): Promise<void> {
    return this.connection.logout();
  }
}

/** The item maps of the FETCH responses. */
function fetched(untagged: Untagged[]): Map<string, FetchValue>[] {
  return untagged.flatMap((u) => (u.type === 'FETCH' ? [new Map([...u.items, ['#SEQ', u.seq]])] : []));
}

/** A FETCH item that is a value (not a body section). */
function value(items: Map<string, FetchValue>, name: string): ImapValue | undefined {
  const found = items.get(name);
  return Buffer.isBuffer(found) ? undefined : found;
}

/** A body section item: its bytes, or null for NIL or when absent. */
function bytes(items: Map<string, FetchValue>, name: string): Buffer | null {
  const found = items.get(name);
  return Buffer.isBuffer(found) ? found : null;
}

function summary(items: Map<string, FetchValue>): MessageSummary {
  return {
    seq: asNumber(value(items, '#SEQ')),
    uid: asNumber(value(items, 'UID')),
    // \Recent (RFC 3501 2.3.2) means "new to this session": nothing a reader is shown.
    flags: asList(value(items, 'FLAGS')).map(String).filter((flag) => flag.toLowerCase() !== '\\recent'),
    size: asNumber(value(items, 'RFC822.SIZE')),
    internalDate: asString(value(items, 'INTERNALDATE')),
    envelope: parseEnvelope(value(items, 'ENVELOPE')),
  };
}
