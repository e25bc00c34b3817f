// Inline images of an HTML mail (RFC 2387 multipart/related, RFC 2392 cid:
// URLs): the HTML says <img src="cid:logo@example">, and the image is
// another part of the message whose Content-ID is <logo@example>.
//
// As Roundcube and SnappyMail do, the HTML view rewrites each such src to
// an address of this webmail that serves that one part (/message/inline,
// a signed link: http/image-links.ts says why),
// and a part the HTML shows this way is not listed again as an attachment;
// a part with a Content-ID that the HTML never mentions stays listed.
//
// Only raster formats are ever served as images. SVG can carry script, and
// a part labelled image/* may hold anything: every other type is served as
// a download (application/octet-stream, attachment), which no browser
// renders or runs.

import type { BodyPart } from '../imap-client/bodystructure.ts';

/** The image types a browser only ever decodes as pixels. */
export const INLINE_IMAGE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

export const INLINE_IMAGE_PATH = '/message/inline';

/** A Content-ID as a cid: URL names it: without the angle brackets (RFC 2392 2), compared without case. */
function normalisedId(id: string): string {
  return id.trim().replace(/^<(.*)>$/s, '$1').trim().toLowerCase();
}

/** A cid: URL's address, percent-decoded (RFC 2392 2: the addr-spec is URL-encoded). */
function cidTarget(encoded: string): string {
  try {
    return normalisedId(decodeURIComponent(encoded));
  } catch {
    return normalisedId(encoded);
  }
}

/** `src="cid:..."` in any quoting; the groups hold the attribute's start and the cid in one of three forms. */
const CID_SOURCE = /(\ssrc\s*=\s*)(?:"\s*cid:([^"]*)"|'\s*cid:([^']*)'|cid:([^\s"'>]+))/gi;

/** The Content-IDs the HTML shows as images, normalised. */
export function referencedContentIds(markup: string): Set<string> {
  const ids = new Set<string>();
  for (const match of markup.matchAll(CID_SOURCE)) ids.add(cidTarget(match[2] ?? match[3] ?? match[4]));
  return ids;
}

/** The parts of a message that have a Content-ID, by normalised id (not inside an embedded message). */
export function partsByContentId(structure: BodyPart): Map<string, BodyPart> {
  const found = new Map<string, BodyPart>();
  const visit = (part: BodyPart) => {
    if (part.type === 'multipart') for (const child of part.children) visit(child);
    else if (part.id && !found.has(normalisedId(part.id))) found.set(normalisedId(part.id), part);
  };
  visit(structure);
  return found;
}

/**
 * Does the HTML show this part as an image (so it is not an attachment to
 * list)? A part it names that we never serve as an image (SVG, say) stays
 * in the list: otherwise the reader could not get at it at all.
 */
export function isShownInline(part: BodyPart, referenced: ReadonlySet<string>): boolean {
  return part.id !== null && referenced.has(normalisedId(part.id)) && INLINE_IMAGE_TYPES.has(`${part.type}/${part.subtype}`);
}

/**
 * The HTML with each `src="cid:..."` that names a part of this message
 * pointing at /message/inline for that part. A cid naming no part is left
 * as it is: the frame's policy loads nothing from cid: anyway.
 */
export function rewriteCidSources(markup: string, structure: BodyPart, linkTo: (part: BodyPart) => string): string {
  const parts = partsByContentId(structure);
  return markup.replace(CID_SOURCE, (whole, start: string, double?: string, single?: string, bare?: string) => {
    const part = parts.get(cidTarget(double ?? single ?? bare ?? ''));
    return part ? `${start}"${linkTo(part).replaceAll('&', '&amp;')}"` : whole;
  });
}
