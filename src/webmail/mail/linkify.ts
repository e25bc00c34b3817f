// A plain-text message as HTML: every character escaped, and web addresses
// made into links (the only markup added). A link goes only to http: and
// https: addresses, opens in a new tab with no referrer and no handle back
// to this page (rel="noopener noreferrer").

import { escapeHtml, trustedHtml } from '../http/html.ts';
import type { Html } from '../http/html.ts';

// An address runs to white space or a character that cannot end one in text.
const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// Punctuation after an address usually belongs to the sentence, not the address.
const TRAILING = '.,;:!?)]}';

/** The address without the sentence's punctuation; a ")" that closes a "(" in the address stays (Wikipedia links). */
function trimTrailing(address: string): string {
  let end = address.length;
  while (end > 0 && TRAILING.includes(address[end - 1])) {
    if (address[end - 1] === ')') {
      const kept = address.slice(0, end);
      if (kept.split('(').length > kept.split(')').length - 1) break;
    }
    end--;
  }
  return address.slice(0, end);
}

export function linkify(text: string): Html {
  let out = '';
  let last = 0;
  for (const match of text.matchAll(WEB_ADDRESS)) {
    const address = trimTrailing(match[0]);
    out += escapeHtml(text.slice(last, match.index));
    const safe = escapeHtml(address);
    out += `<a href="${safe}" rel="noopener noreferrer" target="_blank">${safe}</a>`;
    last = match.index + address.length;
  }
  out += escapeHtml(text.slice(last));
  return trustedHtml(out);
}
