// Who a message says it is from: the addresses of its From: field(s)
// (RFC 5322 3.6.2), so the submission server can check them against the
// logged-in user's own addresses before anything is signed and sent.
//
// A small reader of RFC 5322 3.4 address lists: display names (quoted or
// not), angle-bracketed addresses, bare addresses, comments, groups. It only
// has to find the addr-specs; it returns them lower-cased for comparison.

import { splitHeaderFields } from '../mime/header.ts';

/** Every address in every From: field of a header section (LF line endings). */
export function headerSenders(header: Buffer): string[] {
  const addresses: string[] = [];
  for (const field of splitHeaderFields(header)) {
    if (field.name.toLowerCase() !== 'from') continue;
    const raw = field.raw.toString('utf8');
    const value = raw.slice(raw.indexOf(':') + 1).replace(/\r?\n[ \t]/g, ' '); // unfold (RFC 5322 2.2.3)
    addresses.push(...addressesIn(value));
  }
  return addresses;
}

/** The addr-specs of an address list, lower-cased. */
export function addressesIn(value: string): string[] {
  const found: string[] = [];
  for (const item of splitOutsideQuotes(stripComments(value), ',')) {
    let text = item.trim();
    // A group: `Friends: a@b.c, d@e.f;` (the name and the semicolon go).
    const colon = indexOutsideQuotes(text, ':');
    const angle = indexOutsideQuotes(text, '<');
    if (colon >= 0 && (angle < 0 || colon < angle)) text = text.slice(colon + 1).trim();
    text = text.replace(/;\s*$/, '').trim();
    if (text === '') continue;
    const open = indexOutsideQuotes(text, '<');
    let spec = open >= 0 ? text.slice(open + 1, text.indexOf('>', open) < 0 ? undefined : text.indexOf('>', open)) : text;
    spec = spec.slice(spec.lastIndexOf(':') + 1).trim(); // an obsolete route @a,@b:user@host
    found.push(spec.toLowerCase());
  }
  return found;
}

/** The text without RFC 5322 comments `(...)` (nested, escapes), keeping quoted strings whole. */
function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (text[i + 1] ?? '');
      i++;
    } else if (depth === 0 && c === '"') {
      quoted = !quoted;
      out += c;
    } else if (!quoted && c === '(') {
      depth++;
    } else if (!quoted && depth > 0 && c === ')') {
      depth--;
    } else if (depth === 0) {
      out += c;
    }
  }
  return out;
}

function indexOutsideQuotes(text: string, wanted: string): number {
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && quoted) i++;
    else if (text[i] === '"') quoted = !quoted;
    else if (!quoted && text[i] === wanted) return i;
  }
  return -1;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === '<') angle = true;
    else if (!quoted && c === '>') angle = false;
    else if (!quoted && !angle && c === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
