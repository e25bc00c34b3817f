// Content-Type and Content-Disposition parameters (RFC 2045 5.1, RFC 2183,
// RFC 2231): quoting, comments, continuations, charsets, and broken input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paramText, paramValue, parseContentType, parseDisposition, parseParams } from '../../src/mime/params.ts';

test('type, subtype and parameters; quotes and comments go, case stays', () => {
  assert.deepEqual(parseContentType('Text/HTML; Charset="UTF-8" (comment); format=flowed'), {
    type: 'Text', subtype: 'HTML', params: [{ name: 'Charset', value: 'UTF-8' }, { name: 'format', value: 'flowed' }],
  });
  assert.deepEqual(parseContentType(' (c) text / plain (c) ; charset = us-ascii (Plain text)')!.params, [{ name: 'charset', value: 'us-ascii' }]);
  assert.deepEqual(parseContentType('text/plain; name="a \\"q\\" \\\\ b"')!.params, [{ name: 'name', value: 'a "q" \\ b' }]);
  assert.equal(paramValue(parseContentType('multipart/mixed; BOUNDARY="=_a b"')!.params, 'boundary'), '=_a b');
});

test('a missing or invalid Content-Type gives null (the caller applies RFC 2045 5.2)', () => {
  for (const value of [null, '', 'text', 'textplain', '/plain', 'text/', ';charset=x']) assert.equal(parseContentType(value), null, String(value));
});

test('mistakes mailers make are read the way people meant them', () => {
  assert.deepEqual(parseParams('; name=my file (1).pdf; size=10'), [{ name: 'name', value: 'my file (1).pdf' }, { name: 'size', value: '10' }]);
  assert.deepEqual(parseParams('; name="unterminated'), [{ name: 'name', value: 'unterminated' }]);
  assert.deepEqual(parseParams('; a="1" junk; b=2'), [{ name: 'a', value: '1' }, { name: 'b', value: '2' }]);
  assert.deepEqual(parseParams('; ; garbage; =x; c=; d=4'), [{ name: 'c', value: '' }, { name: 'd', value: '4' }]);
  assert.deepEqual(parseContentType('multipart/mixed; boundary=----=_Part_1_2.3')!.params, [{ name: 'boundary', value: '----=_Part_1_2.3' }]);
});

test('RFC 2231 continuations are merged, encoded ones keep their encoding and a trailing *', () => {
  const params = parseParams(
    "; name*0*=utf-8''%C3%A9t%C3%A9; plain=1; name*2=\" final\"; name*1*=%20%E2%82%AC; title*1=\"lo\"; title*0=\"hel\"",
  );
  // Plain parameters first, then the RFC 2231 ones by name, as Dovecot sends them.
  assert.deepEqual(params, [
    { name: 'plain', value: '1' },
    { name: 'name*', value: "utf-8''%C3%A9t%C3%A9%20%E2%82%AC%20final" },
    { name: 'title', value: 'hello' },
  ]);
  assert.equal(paramText(params, 'name'), 'été € final');
  assert.equal(paramText(params, 'title'), 'hello');
});

test('RFC 2231 charsets: ISO-8859-1, a language, none, an unknown one', () => {
  const d = parseDisposition("attachment; filename*=iso-8859-1'fr'caf%E9.txt")!;
  assert.equal(d.type, 'attachment');
  assert.equal(paramText(d.params, 'filename'), 'café.txt');
  assert.equal(paramText(parseParams("; f*=''plain%20text"), 'f'), 'plain text');
  assert.equal(paramText(parseParams("; f*=x-unknown''caf%C3%A9"), 'f'), 'café'); // valid UTF-8 is read as UTF-8
  assert.equal(paramText(parseParams("; f*=x-unknown''caf%E9"), 'f'), 'café'); // else as Windows-1252
  assert.equal(paramText(parseParams('; f*=no-quotes-at-all'), 'f'), 'no-quotes-at-all');
});

test('encoded-words and raw UTF-8 in a plain parameter are decoded for people', () => {
  assert.equal(paramText(parseParams('; name="=?UTF-8?B?w6l0w6k=?=.pdf"'), 'name'), 'été.pdf');
  assert.equal(paramText(parseParams(`; name="${Buffer.from('été.pdf').toString('latin1')}"`), 'name'), 'été.pdf');
  assert.equal(paramText(parseParams('; other=1'), 'name'), null);
});

test('dispositions', () => {
  assert.deepEqual(parseDisposition('INLINE'), { type: 'INLINE', params: [] });
  assert.equal(parseDisposition(''), null);
  assert.equal(parseDisposition(null), null);
  assert.deepEqual(parseDisposition('attachment; filename=a.txt; size=3')!.params.map((p) => p.name), ['filename', 'size']);
});
