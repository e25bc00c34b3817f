// The corpus (test/mime/corpus/, see its README): each message's ENVELOPE,
// BODY and BODYSTRUCTURE must be exactly as expected, whatever way the
// message is cut into chunks, and every size the parser reports must agree
// with the bytes of the part it points at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeStructureParser, parseStructure } from '../../src/mime/structure.ts';
import type { MimePart } from '../../src/mime/part.ts';
import { formatBody, formatBodyStructure } from '../../src/imap/bodystructure.ts';
import { formatEnvelope } from '../../src/imap/envelope.ts';
import { allParts, chunksOf, layout, countLines, loadCorpus, random, randomChunks, reusedBuffer, splitAt, wireOctets } from './helpers.ts';

const corpus = loadCorpus();

function describe(root: MimePart): string {
  return `ENVELOPE ${formatEnvelope(root.header)}\nBODY ${formatBody(root)}\nBODYSTRUCTURE ${formatBodyStructure(root)}`;
}

function expectedText(expected: Map<string, string>): string {
  return `ENVELOPE ${expected.get('ENVELOPE')}\nBODY ${expected.get('BODY')}\nBODYSTRUCTURE ${expected.get('BODYSTRUCTURE')}`;
}

function parseChunks(chunks: Iterable<Buffer>): MimePart {
  const parser = new MimeStructureParser();
  for (const chunk of chunks) parser.push(chunk);
  return parser.end();
}

test('the corpus has the messages the issue lists', () => {
  const names = corpus.map((m) => m.name);
  for (const name of [
    'single-part.eml', 'alternative.eml', 'mixed-attachments.eml', 'nested-rfc822.eml', 'rfc2231-filename.eml',
    'encoded-subject-utf8.eml', 'encoded-subject-latin1.eml', 'missing-boundary.eml', 'no-content-type.eml',
    '8bit-headers.eml', 'deep-nesting.eml', 'crlf.eml', 'truncated-base64.eml', 'nul-control.eml',
  ]) assert.ok(names.includes(name), name);
});

for (const message of corpus) {
  test(`${message.name}: ENVELOPE, BODY and BODYSTRUCTURE are exactly as expected`, async () => {
    const root = await parseStructure([message.bytes]);
    assert.equal(describe(root), expectedText(message.expected));
  });

  test(`${message.name}: sizes and line counts match the bytes of each part`, () => {
    const root = parseChunks([message.bytes]);
    for (const part of allParts(root)) {
      assert.ok(part.headerStart <= part.bodyStart && part.bodyStart <= part.bodyEnd && part.bodyEnd <= message.bytes.length);
      const body = message.bytes.subarray(part.bodyStart, part.bodyEnd);
      assert.equal(part.bodyOctets, wireOctets(body), `octets of part at ${part.headerStart}`);
      assert.equal(part.bodyLines, countLines(body), `lines of part at ${part.headerStart}`);
      assert.equal(part.headerOctets, wireOctets(message.bytes.subarray(part.headerStart, part.bodyStart)));
      // The kept header is the start of the header section.
      assert.ok(message.bytes.subarray(part.headerStart).subarray(0, part.header.length).equals(part.header));
    }
  });

  test(`${message.name}: the same structure at every two-way chunk split`, () => {
    // The layout holds each part's offsets, sizes and header bytes: all BODYSTRUCTURE is made of.
    const whole = layout(parseChunks([message.bytes]));
    for (let cut = 0; cut <= message.bytes.length; cut++) {
      assert.equal(layout(parseChunks(splitAt(message.bytes, cut))), whole, `split at ${cut}`);
    }
  });

  test(`${message.name}: the same structure in small, random and reused chunks`, () => {
    const whole = layout(parseChunks([message.bytes]));
    for (let size = 1; size <= 9; size++) assert.equal(layout(parseChunks(chunksOf(message.bytes, size))), whole, `size ${size}`);
    const next = random(message.bytes.length);
    for (let round = 0; round < 20; round++) {
      assert.equal(layout(parseChunks(randomChunks(message.bytes, 64, next))), whole, `round ${round}`);
    }
    // The caller may overwrite a chunk after push(): nothing of it may be kept by reference.
    assert.equal(layout(parseChunks(reusedBuffer(chunksOf(message.bytes, 5)))), whole);
    assert.equal(describe(parseChunks(chunksOf(message.bytes, 3))), expectedText(message.expected));
  });

  test(`${message.name}: the listener gets exactly the body bytes of each leaf`, () => {
    for (const size of [1, 2, 3, 7, 64, message.bytes.length || 1]) {
      const bodies = new Map<MimePart, Buffer[]>();
      const parser = new MimeStructureParser({}, {
        partHeader: (part) => void bodies.set(part, []),
        bodyData: (part, data) => bodies.get(part)!.push(Buffer.from(data)),
      });
      for (const chunk of chunksOf(message.bytes, size)) parser.push(chunk);
      parser.end();
      for (const [part, pieces] of bodies) {
        assert.deepEqual(Buffer.concat(pieces), message.bytes.subarray(part.bodyStart, part.bodyEnd), `chunk size ${size}, part at ${part.headerStart}`);
      }
    }
  });
}
