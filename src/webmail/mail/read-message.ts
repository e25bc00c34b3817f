// Which parts of a message a reader sees, and as what (RFC 2046 5.1.3-5.1.4,
// RFC 2183): the body to show (plain text, HTML, or both when the message
// offers alternatives), and everything else as attachments to download,
// except the inline images the HTML shows (inline-images.ts).
// Decoding a part for display undoes its transfer encoding and charset
// with the MIME module (transfer-decode.ts, charset.ts); file names are
// read with params.ts (RFC 2231 and RFC 2047 both).

import { StreamTextDecoder } from '../../mime/charset.ts';
import { paramText, paramValue } from '../../mime/params.ts';
import { transferDecoder } from '../../mime/transfer-decode.ts';
import type { BodyPart } from '../imap-client/bodystructure.ts';
import { isShownInline } from './inline-images.ts';

export interface Attachment {
  part: BodyPart;
  filename: string;
  /** type/subtype, lower case. */
  contentType: string;
  /** Roughly the decoded size (base64 takes 4 bytes for 3). */
  size: number;
}

export interface MessagePlan {
  text: BodyPart | null;
  html: BodyPart | null;
  attachments: Attachment[];
}

const isType = (part: BodyPart, type: string, subtype: string) => part.type === type && part.subtype === subtype;
const isAttachment = (part: BodyPart) => part.disposition?.type === 'attachment';

/** `shownInline`: the Content-IDs the HTML shows as images (inline-images.ts); those parts are not attachments. */
export function planMessage(structure: BodyPart, shownInline: ReadonlySet<string> = new Set()): MessagePlan {
  const plan: MessagePlan = { text: null, html: null, attachments: [] };
  const haveBody = () => plan.text !== null || plan.html !== null;

  const visit = (part: BodyPart, lookingForBody: boolean) => {
    if (part.type === 'multipart') {
      if (part.subtype === 'alternative' && lookingForBody && !haveBody()) {
        // RFC 2046 5.1.4: the alternatives come in order of faithfulness, the best last.
        for (const child of part.children) chooseAlternative(child, plan);
        if (haveBody()) {
          for (const child of part.children) if (child.type === 'multipart' && child.subtype === 'related') collectRest(child, plan);
          return;
        }
      }
      for (const child of part.children) visit(child, lookingForBody);
      return;
    }
    if (lookingForBody && !haveBody() && !isAttachment(part) && part.type === 'text' && (part.subtype === 'plain' || part.subtype === 'html')) {
      if (part.subtype === 'plain') plan.text = part;
      else plan.html = part;
      return;
    }
    plan.attachments.push(attachmentOf(part));
  };
  visit(structure, true);
  plan.attachments = plan.attachments.filter((a) => !isShownInline(a.part, shownInline));
  return plan;
}

/** Take the plain and HTML versions from one alternative (an HTML one may sit in multipart/related). */
function chooseAlternative(child: BodyPart, plan: MessagePlan): void {
  if (isType(child, 'text', 'plain')) plan.text = child;
  else if (isType(child, 'text', 'html')) plan.html = child;
  else if (child.type === 'multipart' && child.subtype === 'related') {
    const html = child.children.find((c) => isType(c, 'text', 'html'));
    if (html) plan.html = html;
  }
}

/** The other parts of a multipart/related (inline images): attachments unless the HTML shows them. */
function collectRest(related: BodyPart, plan: MessagePlan): void {
  for (const part of related.children) if (part !== plan.html && part.type !== 'multipart') plan.attachments.push(attachmentOf(part));
}

/** A part as something to download: its name (RFC 2183 filename, else Content-Type name), type and size. */
export function attachmentOf(part: BodyPart): Attachment {
  const named = (part.disposition && paramText(part.disposition.params, 'filename')) ?? paramText(part.params, 'name');
  const embedded = part.type === 'message' && part.subtype === 'rfc822';
  const filename = named?.trim() || `part-${part.section}${embedded ? '.eml' : ''}`;
  const size = part.encoding === 'base64' ? Math.floor((part.size * 3) / 4) : part.size;
  return { part, filename, contentType: `${part.type}/${part.subtype}`, size };
}

/** The part with this section number anywhere in the tree (inside embedded messages too), or null. */
export function findPart(part: BodyPart, section: string): BodyPart | null {
  if (part.section === section && part.type !== 'multipart') return part;
  for (const child of [...part.children, ...(part.message ? [part.message] : [])]) {
    const found = findPart(child, section);
    if (found) return found;
  }
  return null;
}

/** A part's bytes with the transfer encoding undone, as they stream. */
export async function* decodedContent(chunks: AsyncIterable<Buffer>, part: BodyPart): AsyncGenerator<Buffer> {
  const decoder = transferDecoder(part.encoding);
  for await (const chunk of chunks) {
    const out = decoder.write(chunk);
    if (out.length > 0) yield out;
  }
  const rest = decoder.end();
  if (rest.length > 0) yield rest;
}

/** A text part as a string: transfer encoding and charset undone, line ends as LF. */
export async function decodedText(chunks: AsyncIterable<Buffer>, part: BodyPart): Promise<string> {
  const charset = new StreamTextDecoder(paramValue(part.params, 'charset'));
  let text = '';
  for await (const bytes of decodedContent(chunks, part)) text += charset.write(bytes);
  return (text + charset.end()).replace(/\r\n?/g, '\n');
}
