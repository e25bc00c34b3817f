// A plain-text message as HTML: every character escaped, and web addresses
// made into links (the only markup added). A link goes only to http: and
// https: addresses, opens in a new tab with no referrer and no handle back
// to this page (rel="noopener noreferrer").

import { escapeHtml, trustedHtml } from '../http/html.ts';
import type { Html } from '../http/html.ts';

// An address runs to white space or a character that cannot end one in text.
const WEB_ADDRESS = /\bhttps?:\/\/[^\s<>"'`]+/gi;
// Punctuation after an address usually belongs to the sentence, not the address.
const TRAILING = /[.,;:!?)\]}]+$/;

export function linkify(text: string): Html {
  let out = '';
  let last = 0;
  for (const match of text.matchAll(WEB_ADDRESS)) {
    let address = match[0];
    const trailing = TRAILING.exec(address);
    // Keep a closing parenthesis that closes one inside the address (Wikipedia links).
    if (trailing && !(trailing[0] === ')' && address.includes('('))) address = address.slice(0, -trailing[0].length);
    out += escapeHtml(text.slice(last, match.index));
    const safe = escapeHtml(address);
    out += `<a href="${safe}" rel="noopener noreferrer" target="_blank">${safe}</a>`;
    last = match.index + address.length;
  }
  out += escapeHtml(text.slice(last));
  return trustedHtml(out);
}
