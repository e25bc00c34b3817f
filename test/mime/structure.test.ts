// The structure parser beyond the corpus: its limits (depth, part count,
// header size) hold on hostile input, sizes are counted as the client sees
// them (CRLF), IMAP part numbers find the right part, and a part's body can
// be read back raw or decoded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeStructureParser, parseStructure } from '../../src/mime/structure.ts';
import { partAt } from '../../src/mime/part.ts';
import type { MimePart } from '../../src/mime/part.ts';
import { byteRange, partContent } from '../../src/mime/text.ts';
import { formatBodyStructure } from '../../src/imap/bodystructure.ts';
import { allParts, chunksOf, layout, loadCorpus, random, randomChunks, wireOctets } from './helpers.ts';

const corpus = new Map(loadCorpus().map((m) => [m.name, m.bytes]));

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const piece of source) out.push(piece);
  return Buffer.concat(out);
}

/** A multipart/mixed with `count` tiny text parts. */
function manyParts(count: number): Buffer {
  let text = 'Subject: bomb\nContent-Type: multipart/mixed; boundary=b\n\n';
  for (let i = 0; i < count; i++) text += `--b\nContent-Type: text/plain\n\npart ${i}\n`;
  return Buffer.from(text + '--b--\n');
}

test('a 5,000-part message stops at the part limit; the last part takes the rest', async () => {
  const bytes = manyParts(5000);
  const root = await parseStructure(chunksOf(bytes, 4096));
  assert.equal(allParts(root).length, 1000); // the limit counts the message itself
  assert.equal(root.children.length, 999);
  const last = root.children[998];
  assert.equal(last.bodyEnd, bytes.length); // boundaries are no longer looked for
  assert.match(bytes.subarray(last.bodyStart, last.bodyEnd).toString(), /^part 998\n--b\n[\s\S]*part 4999\n--b--\n$/);
  const small = await parseStructure([bytes], { maxParts: 10 });
  assert.equal(small.children.length, 9);
  // Well within the limit nothing changes.
  assert.equal((await parseStructure([manyParts(500)])).children.length, 500);
});

test('a part deeper than the depth limit is left unparsed', async () => {
  const root = await parseStructure([corpus.get('deep-nesting.eml')!]);
  let depth = 0;
  let part = root;
  while (part.children.length > 0) {
    part = part.children[0];
    depth++;
  }
  assert.equal(depth, 20);
  assert.equal(part.type, 'multipart'); // level 21: a multipart whose parts were not read
  assert.match(formatBodyStructure(root), /\("text" "plain" \("charset" "us-ascii"\) NIL NIL "7bit" 0 0 NIL NIL NIL NIL\) "mixed" \("boundary" "level-21"\)/);
  const shallow = await parseStructure([corpus.get('nested-rfc822.eml')!], { maxDepth: 1 });
  assert.equal(shallow.children[1].message, null); // the embedded message would be level 2
});

test('headers are kept only up to the limits, and the sizes still count everything', async () => {
  const long = 'X-Long: ' + 'a'.repeat(100_000) + '\n';
  const bytes = Buffer.from(`Subject: big header\n${long}Content-Type: text/plain\n\nbody\n`);
  for (const chunks of [[bytes], chunksOf(bytes, 1000), chunksOf(bytes, 7)]) {
    const root = await parseStructure(chunks);
    assert.equal(root.header.length, 64 * 1024);
    assert.equal(root.headerTruncated, true);
    assert.equal(root.headerOctets, wireOctets(bytes.subarray(0, root.bodyStart)));
    assert.equal(root.bodyStart, bytes.length - 5);
    assert.equal(root.type, 'text'); // Content-Type was past the limit: the default applies
  }
  // The budget for the whole message holds across many parts.
  const many = await parseStructure([manyParts(300)], { maxTotalHeaderBytes: 1000 });
  assert.equal(allParts(many).reduce((sum, p) => sum + p.header.length, 0), 1000);
});

test('CRLF and LF give the same structure; octets count CRLF once and LF twice', async () => {
  const lf = corpus.get('mixed-attachments.eml')!;
  const crlf = corpus.get('crlf.eml')!;
  assert.deepEqual(lf.toString().replace(/\n/g, '\r\n'), crlf.toString());
  const a = await parseStructure([lf]);
  const b = await parseStructure([crlf]);
  assert.equal(formatBodyStructure(a), formatBodyStructure(b));
  const mixed = Buffer.from('Subject: x\r\n\nline one\r\nline two\nend');
  const root = await parseStructure([mixed]);
  assert.equal(root.bodyOctets, 'line one\r\nline two\r\nend'.length);
  assert.equal(root.bodyLines, 2);
});

test('IMAP part numbers (RFC 3501 6.4.5) find the right parts', async () => {
  const root = await parseStructure([corpus.get('nested-rfc822.eml')!]);
  const at = (path: number[]) => partAt(root, path);
  assert.equal(at([1])!.subtype, 'plain');
  assert.equal(at([2])!.subtype, 'rfc822');
  assert.equal(at([2, 1])!.subtype, 'plain'); // in the embedded multipart
  assert.equal(at([2, 2])!.subtype, 'rfc822');
  assert.equal(at([2, 2, 1])!.bodyLines, 2); // the innermost message is single part: 1 is its body
  assert.equal(at([3, 1])!.bodyOctets, 10);
  for (const bad of [[4], [1, 1], [2, 3], [3, 2], [0], [2, 2, 1, 1]]) assert.equal(at(bad), null, bad.join('.'));
  const single = await parseStructure([corpus.get('single-part.eml')!]);
  assert.equal(partAt(single, [1]), single);
  assert.equal(partAt(single, [1, 1]), null);
  assert.equal(partAt(single, []), single);
});

test('byteRange and partContent give a part back, raw and decoded', async () => {
  const bytes = corpus.get('mixed-attachments.eml')!;
  const root = await parseStructure([bytes]);
  const pdf = partAt(root, [2])!;
  const expected = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.from(Array.from({ length: 512 }, (_, i) => i & 0xff))]);
  for (const size of [1, 3, 76, 1000, bytes.length]) {
    assert.deepEqual(await collect(partContent(chunksOf(bytes, size), pdf)), expected, `chunk size ${size}`);
    assert.deepEqual(await collect(byteRange(chunksOf(bytes, size), pdf.bodyStart, pdf.bodyEnd)), bytes.subarray(pdf.bodyStart, pdf.bodyEnd));
  }
  const text = partAt(root, [1, 1])!;
  assert.equal((await collect(partContent([bytes], text))).toString('latin1'), 'The report is attached. Voil\xe0.\n');
  // A truncated base64 part gives the whole bytes it holds.
  const cut = corpus.get('truncated-base64.eml')!;
  const data = partAt(await parseStructure([cut]), [2])!;
  const decoded = await collect(partContent([cut], data));
  assert.deepEqual(decoded, Buffer.from(Array.from({ length: decoded.length }, (_, i) => i)));
  assert.equal(decoded.length, 111);
});

test('an empty message, a lone blank line, and a body with no header', async () => {
  const empty = await parseStructure([]);
  assert.equal(formatBodyStructure(empty), '("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)');
  const blank = await parseStructure([Buffer.from('\nno header\n')]);
  assert.equal(blank.bodyStart, 1);
  assert.equal(blank.bodyOctets, 11);
  assert.equal(blank.headerOctets, 2);
});

test('big messages in random chunks: the same layout as in one piece', () => {
  // A message of a few hundred kilobytes: parts with long lines, CRLF, boundary-like lines.
  const next = random(42);
  let text = 'Content-Type: multipart/mixed; boundary="outer"\n\n';
  for (let i = 0; i < 60; i++) {
    text += `--outer\nContent-Type: ${i % 3 === 0 ? 'message/rfc822' : 'text/plain'}\n\n`;
    if (i % 3 === 0) text += 'Subject: inner\r\nContent-Type: multipart/alternative; boundary=outer-inner\r\n\r\n--outer-inner\r\n\r\nx\r\n--outer-inner--\r\n';
    text += `${'-'.repeat(Math.floor(next() * 300))}\n-- outer (a space: not a boundary)\n` + 'z'.repeat(Math.floor(next() * 5000)) + '\n';
  }
  const bytes = Buffer.from(text + '--outer--\n');
  const parse = (chunks: Buffer[]) => {
    const parser = new MimeStructureParser();
    for (const chunk of chunks) parser.push(chunk);
    return layout(parser.end());
  };
  const whole = parse([bytes]);
  for (let round = 0; round < 30; round++) assert.equal(parse(randomChunks(bytes, 1 + Math.floor(next() * 8000), next)), whole, `round ${round}`);
});

test('bodies are counted, never kept: a 20 MB part leaves only its sizes', async () => {
  async function* huge(): AsyncGenerator<Buffer> {
    yield Buffer.from('Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/octet-stream\n\n');
    const block = Buffer.alloc(1 << 20, 0x41);
    for (let i = 0; i < 20; i++) yield block;
    yield Buffer.from('\n--b--\n');
  }
  const root: MimePart = await parseStructure(huge());
  assert.equal(root.children[0].bodyOctets, 20 << 20);
  assert.equal(root.children[0].header.length, 'Content-Type: application/octet-stream\n'.length);
});
