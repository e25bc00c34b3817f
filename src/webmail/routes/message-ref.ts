// A message named by a link or a form: its folder and its UID. Every route
// that takes one (reading, downloading, the list's buttons, reply, forward,
// a draft being edited) checks it here, the same way, before it reaches IMAP.

/** A message in the user's mailbox. */
export interface MessageRef {
  folder: string;
  uid: number;
}

/** A UID from a form or a link (RFC 3501 2.3.1.1: a non-zero 32-bit number), or null. */
export function uidOf(text: string | null): number | null {
  const n = Number(text);
  return text && Number.isInteger(n) && n > 0 && n <= 0xffffffff ? n : null;
}

/** The message `folder` and `uid` name; null when either is missing or the UID is not one. */
export function messageRef(folder: string | null, uid: string | null): MessageRef | null {
  const n = uidOf(uid);
  return folder && n !== null ? { folder, uid: n } : null;
}
