// HTML that is safe by construction. Every page is written with the `html`
// tagged template: each value put into it is escaped unless it is already
// Html (made by `html` itself), so a subject, a sender or a file name from
// a message can only ever become text on the page, never markup.
//
//   html`<td>${subject}</td>`        subject "<script>" shows as &lt;script&gt;
//   html`<ul>${items.map(...)}</ul>` arrays of Html are joined
//
// Escaping covers text and quoted attribute values (HTML Living Standard
// 13.1.2.3 and 13.2.5): & < > " ' all become character references. URLs put
// into attributes go through `url` first (only paths on this site).

export class Html {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
  toString(): string {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text as HTML text or as a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export type HtmlValue = Html | string | number | null | undefined | false | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new Html(out);
}

/** Markup we built ourselves from escaped pieces (linkify). Never for text from outside. */
export function trustedHtml(text: string): Html {
  return new Html(text);
}

/**
 * A link to a page of the webmail: a path and its query, encoded. Only
 * paths starting with "/" (one slash: "//host", and "/\\host" which
 * browsers read the same way, would leave the site).
 */
export function url(path: string, query: Record<string, string | number | undefined | null> = {}): string {
  if (!/^\/(?![/\\])/.test(path)) throw new RangeError(`not a local path: ${path}`);
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}
