// Text for SEARCH and the webmail: the decoded text of a message's text
// parts, its header as text, and the case-insensitive substring matcher
// that looks through text arriving in pieces.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { headerText, messageText } from '../../src/mime/text.ts';
import { foldForSearch, SubstringMatcher, textContains } from '../../src/mime/search-match.ts';
import { parseStructure } from '../../src/mime/structure.ts';
import { chunksOf, loadCorpus } from './helpers.ts';

const corpus = new Map(loadCorpus().map((m) => [m.name, m.bytes]));

async function textOf(chunks: Iterable<Buffer>): Promise<string> {
  let out = '';
  for await (const piece of messageText(chunks)) out += piece;
  return out;
}

test('the text parts, decoded from base64 and quoted-printable and their charsets', async () => {
  const mixed = corpus.get('mixed-attachments.eml')!;
  const expected = 'The report is attached. Voilà.\n\n<p>The report is attached. <img src="cid:photo.1@example.net"> Voilà.</p>\n';
  for (const size of [1, 2, 5, 64, mixed.length]) assert.equal(await textOf(chunksOf(mixed, size)), expected, `chunk size ${size}`);
  assert.equal(await textOf([corpus.get('encoded-subject-utf8.eml')!]), '¿Nos vemos mañana en el café?\n');
  assert.equal(await textOf([corpus.get('encoded-subject-latin1.eml')!]), 'La réunion est à 14h.\n');
  assert.equal(await textOf([corpus.get('8bit-headers.eml')!]), 'Viele Grüße!\n');
  assert.equal(await textOf([corpus.get('no-content-type.eml')!]), 'No MIME here.\nJust text.\n');
  // Embedded messages' text parts count too; attachments that are not text do not.
  const nested = await textOf([corpus.get('nested-rfc822.eml')!]);
  assert.equal(nested, "See the forwarded message.\nCarol's text.\nDave's words,\ntwo lines.\n\nJust text.");
});

test('broken input still gives text, and never throws', async () => {
  assert.equal(await textOf([corpus.get('missing-boundary.eml')!]), 'first part\nsecond part, and then the message just ends\n');
  assert.equal(await textOf([Buffer.from('Content-Type: text/plain; charset=x-klingon\nContent-Transfer-Encoding: base64\n\nw6k=\n')]), 'é');
  assert.equal(await textOf([Buffer.from('Content-Transfer-Encoding: quoted-printable\n\nhalf =E')]), 'half =E');
});

test('headerText unfolds and decodes every field', async () => {
  const root = await parseStructure([corpus.get('encoded-subject-latin1.eml')!]);
  const text = headerText(root.header);
  assert.match(text, /^From: François Léger <francois@example.fr>\n/);
  assert.match(text, /\nSubject: Réunion à 14h coût €\n/);
  assert.equal(headerText(Buffer.from(' stray continuation\nA: b\n c\n')), 'stray continuation\nA: b c\n');
});

test('matching is case-insensitive on NFC text', () => {
  assert.equal(foldForSearch('CAFE\u0301'), 'café');
  const cases: [string, string, boolean][] = [
    ['Hello World', 'WORLD', true],
    ['café', 'CAFÉ', true],
    ['cafe\u0301', 'CAFÉ', true], // e + combining accent equals é
    ['ΣΊΣΥΦΟΣ', 'σίσυφος', true],
    ['straße', 'STRASSE', false], // simple case folding, not full: said in search-match.ts
    ['abc', '', true],
    ['abc', 'abcd', false],
  ];
  for (const [text, needle, found] of cases) {
    const matcher = new SubstringMatcher(needle);
    matcher.push(text);
    assert.equal(matcher.end(), found, `${text} / ${needle}`);
  }
});

test('a match across any split of the text, even inside a combining sequence', async () => {
  const text = 'Il était une fois un cafe\u0301 à Paris. Fin.';
  for (const needle of ['CAFÉ À PARIS', 'fin.', 'il était', 'un c']) {
    for (let a = 0; a <= text.length; a++) {
      for (let b = a; b <= text.length; b++) {
        const pieces = [text.slice(0, a), text.slice(a, b), text.slice(b)];
        assert.equal(await textContains(pieces, needle), true, `${needle} at ${a}, ${b}`);
      }
    }
  }
  assert.equal(await textContains(['caf', 'e', ' à'], 'café'), false); // no accent: no match
  assert.equal(await textContains(messageText([corpus.get('alternative.eml')!]), 'second LINE.</p>'), true);
});
