// RFC 2047 encoded-words and charset decoding: the charsets the issue names
// (UTF-8, ISO-8859-1, ISO-8859-15, Windows-1252, US-ASCII), unknown ones,
// and the mistakes real mailers make. Nothing may throw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEncodedWords, decodeHeaderText } from '../../src/mime/encoded-words.ts';
import { decodeCharset, decodeUnlabelled, isKnownCharset, StreamTextDecoder } from '../../src/mime/charset.ts';

test('B and Q words in the named charsets', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?B?wr9Ob3MgdmVtb3M/?='), '¿Nos vemos?');
  assert.equal(decodeEncodedWords('=?utf-8?q?caf=C3=A9_cr=C3=A8me?='), 'café crème');
  assert.equal(decodeEncodedWords('=?ISO-8859-1?Q?R=E9union_=E0_14h?='), 'Réunion à 14h');
  assert.equal(decodeEncodedWords('=?ISO-8859-15?Q?=A4_=BD?='), '€ œ'); // differs from ISO-8859-1 exactly here
  assert.equal(decodeEncodedWords('=?iso-8859-1?q?=A4?='), '¤');
  assert.equal(decodeEncodedWords('=?windows-1252?Q?=93quoted=94_=80?='), '“quoted” €');
  assert.equal(decodeEncodedWords('=?US-ASCII?Q?plain_text?='), 'plain text');
});

test('white space between adjacent words goes; elsewhere it stays', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?Q?a?= =?UTF-8?Q?b?='), 'ab');
  assert.equal(decodeEncodedWords('=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?='), 'ab');
  assert.equal(decodeEncodedWords('x =?UTF-8?Q?a?= y'), 'x a y');
  assert.equal(decodeEncodedWords('=?UTF-8?Q?a_?= =?ISO-8859-1?Q?=E9?= end'), 'a é end');
});

test('a character split across two words is joined before decoding', () => {
  // "€" is E2 82 AC in UTF-8; mailers cut at a fixed length.
  assert.equal(decodeEncodedWords('=?UTF-8?Q?=E2=82?= =?UTF-8?Q?=AC?='), '€');
  assert.equal(decodeEncodedWords('=?UTF-8?B?4oI=?= =?UTF-8?B?rA==?='), '€');
});

test('common mistakes are tolerated', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?Q?a?==?UTF-8?Q?b?='), 'ab'); // no space between words
  assert.equal(decodeEncodedWords('"=?UTF-8?Q?Jos=C3=A9?=" <j@x>'), '"José" <j@x>'); // inside quotes
  assert.equal(decodeEncodedWords('pre=?UTF-8?Q?fix?='), 'prefix'); // glued to a word
  assert.equal(decodeEncodedWords('=?UTF-8?B?w6k?='), 'é'); // missing base64 padding
  assert.equal(decodeEncodedWords('=?UTF-8*en?Q?lang?='), 'lang'); // RFC 2231 language
  assert.equal(decodeEncodedWords('=?utf-8?q?bad=ZZhex?='), 'bad=ZZhex');
  assert.equal(decodeEncodedWords('=?x-unknown?Q?caf=C3=A9?='), 'café'); // unknown charset, valid UTF-8
  assert.equal(decodeEncodedWords('=?x-unknown?Q?caf=E9?='), 'café'); // unknown charset, else Windows-1252
  assert.equal(decodeEncodedWords('=?UTF-8?X?not an encoding?='), '=?UTF-8?X?not an encoding?=');
  assert.equal(decodeEncodedWords('=?UTF-8?Q?unterminated'), '=?UTF-8?Q?unterminated');
  assert.equal(decodeEncodedWords('no words at all'), 'no words at all');
});

test('raw 8-bit header bytes (RFC 6532): UTF-8 when valid, else Windows-1252', () => {
  assert.equal(decodeHeaderText(Buffer.from('Grüße ☕').toString('latin1')), 'Grüße ☕');
  assert.equal(decodeHeaderText('Zo\xeb'), 'Zoë');
  assert.equal(decodeHeaderText('\x93x\x94 =?UTF-8?Q?=C3=A9?='), '“x” é');
});

test('charset decoding never throws and knows the usual labels', () => {
  for (const label of ['utf-8', 'UTF8', '"utf-8"', 'iso-8859-1', 'latin1', 'ISO_8859-15', 'windows-1252', 'cp1252', 'us-ascii', 'koi8-r', 'iso-2022-jp']) {
    assert.ok(isKnownCharset(label), label);
  }
  for (const label of ['x-unknown', 'utf-7', '', '\0']) assert.equal(isKnownCharset(label), false, label);
  assert.equal(decodeCharset(Buffer.from([0xe9]), 'iso-8859-1'), 'é');
  assert.equal(decodeCharset(Buffer.from([0xe9]), null), 'é');
  assert.equal(decodeCharset(Buffer.from('é'), 'bogus'), 'é');
  assert.equal(decodeUnlabelled(Buffer.from([0xff, 0xfe, 0x00])), 'ÿþ\0');
});

test('a streaming decoder keeps a character split between chunks whole', () => {
  const bytes = Buffer.from('añ€😀');
  for (let cut = 0; cut <= bytes.length; cut++) {
    const decoder = new StreamTextDecoder('UTF-8');
    assert.equal(decoder.write(bytes.subarray(0, cut)) + decoder.write(bytes.subarray(cut)) + decoder.end(), 'añ€😀', `cut ${cut}`);
  }
  const latin = new StreamTextDecoder('iso-8859-15');
  assert.equal(latin.write(Buffer.from([0xa4])) + latin.end(), '€');
  const unknown = new StreamTextDecoder('x-unknown');
  assert.equal(unknown.write(Buffer.from('é')) + unknown.end(), 'é');
});
