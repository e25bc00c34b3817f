// An HTML message made ready for its sandboxed frame. Safety does not come
// from here: the frame's Content-Security-Policy (no script, no remote
// images unless asked, no forms, an opaque origin) and the iframe's sandbox
// attribute do that, whatever the markup says (http/security-headers.ts).
// This only makes the document behave as a reader expects: decoded to
// UTF-8 (the response says so, which outranks any <meta charset> in the
// mail), links opening in a new tab rather than inside the frame, and no
// <meta http-equiv> (a refresh would take the frame to any site at all; the
// attribute is renamed, so the element does nothing).

export function htmlForFrame(decodedHtml: string): string {
  const inert = decodedHtml.replace(/http-equiv/gi, 'data-removed-http-equiv');
  return `<!doctype html><meta charset="utf-8"><base target="_blank">\n${inert}`;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

/**
 * A rough plain text of an HTML message, to quote in a reply or forward
 * when the message has no text part: blocks become lines, tags go,
 * character references are read. The result is text, escaped wherever it
 * is shown; it never goes back into a page as markup.
 */
export function htmlToText(markup: string): string {
  return markup
    .replace(/<(script|style|head)\b[\s\S]*?<\/\1\s*>/gi, '')
    .replace(/<br\b[^>]*>/gi, '\n')
    .replace(/<\/(p|div|li|tr|h[1-6]|blockquote)\s*>/gi, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, ref: string) => {
      if (ref[0] === '#') {
        const code = ref[1].toLowerCase() === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return ENTITIES[ref.toLowerCase()] ?? whole;
    })
    .replace(/[ \t]+\n/g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
