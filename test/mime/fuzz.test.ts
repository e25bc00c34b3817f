// No input ends a session: mutated corpus messages (a fixed number, from a
// seeded generator so a failure can be replayed) go through everything a
// FETCH or SEARCH would do. Nothing may throw, and the parser's sizes must
// still agree with the bytes it points at.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MimeStructureParser } from '../../src/mime/structure.ts';
import { formatBody, formatBodyStructure } from '../../src/imap/bodystructure.ts';
import { formatEnvelope } from '../../src/imap/envelope.ts';
import { headerText, messageText, partContent } from '../../src/mime/text.ts';
import { textContains } from '../../src/mime/search-match.ts';
import { paramText } from '../../src/mime/params.ts';
import { allParts, countLines, loadCorpus, random, randomChunks, wireOctets } from './helpers.ts';

const TOKENS = ['--', '\n', '\r\n', '\n\n', '=', '=?', '?=', '=?UTF-8?B?', '?Q?', '"', '(', ')', '<', '>', '@', ',', ';', ':', '\\',
  '\0', '\xff', '\xc3', 'Content-Type: multipart/mixed; boundary=', 'Content-Type: message/rfc822\n\n', '*0*=', "utf-8''%", '%', ' ', '\t'];

function mutate(bytes: Buffer, next: () => number): Buffer {
  const pick = (n: number) => Math.floor(next() * n);
  let out = Buffer.from(bytes);
  for (let k = 1 + pick(4); k > 0; k--) {
    const at = pick(out.length + 1);
    switch (pick(6)) {
      case 0: // flip a byte
        if (out.length > 0) out[Math.min(at, out.length - 1)] = pick(256);
        break;
      case 1: // insert a token that means something to a parser
        out = Buffer.concat([out.subarray(0, at), Buffer.from(TOKENS[pick(TOKENS.length)], 'latin1'), out.subarray(at)]);
        break;
      case 2: // delete a range
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + pick(50))]);
        break;
      case 3: // repeat a range (boundaries, headers)
        out = Buffer.concat([out.subarray(0, at + pick(80)), out.subarray(at)]);
        break;
      case 4: // truncate
        out = out.subarray(0, at);
        break;
      default: // a boundary line of the message somewhere else
        {
          const m = /\n(--[^\n]*)\n/.exec(out.toString('latin1'));
          if (m) out = Buffer.concat([out.subarray(0, at), Buffer.from(`\n${m[1]}\n`, 'latin1'), out.subarray(at)]);
        }
    }
  }
  return out;
}

async function exercise(bytes: Buffer, next: () => number): Promise<void> {
  const parser = new MimeStructureParser({ maxParts: 50, maxDepth: 5 });
  for (const chunk of randomChunks(bytes, 1 + Math.floor(next() * 200), next)) parser.push(chunk);
  const root = parser.end();
  formatEnvelope(root.header);
  formatBody(root);
  formatBodyStructure(root);
  headerText(root.header);
  for (const part of allParts(root)) {
    assert.ok(part.headerStart <= part.bodyStart && part.bodyStart <= part.bodyEnd && part.bodyEnd <= bytes.length);
    const body = bytes.subarray(part.bodyStart, part.bodyEnd);
    assert.equal(part.bodyOctets, wireOctets(body));
    assert.equal(part.bodyLines, countLines(body));
    paramText(part.params, 'name');
    for await (const piece of partContent([bytes], part)) assert.ok(piece.length >= 0);
  }
  await textContains(messageText(randomChunks(bytes, 64, next), { maxParts: 50 }), 'needle');
}

test('mutated corpus messages never throw and keep consistent sizes', async () => {
  const next = random(2026);
  let runs = 0;
  for (const message of loadCorpus()) {
    for (let round = 0; round < 60; round++) {
      const bytes = mutate(message.bytes, next);
      try {
        await exercise(bytes, next);
      } catch (err) {
        assert.fail(`${message.name} round ${round}: ${(err as Error).stack}\ninput: ${JSON.stringify(bytes.toString('latin1'))}`);
      }
      runs++;
    }
  }
  assert.ok(runs >= 1000);
});

test('random bytes never throw', async () => {
  const next = random(99);
  for (let round = 0; round < 200; round++) {
    const bytes = Buffer.from(Array.from({ length: Math.floor(next() * 400) }, () => (next() < 0.3 ? 0x0a : next() < 0.2 ? 0x2d : Math.floor(next() * 256))));
    await exercise(Buffer.concat([Buffer.from('Content-Type: multipart/mixed; boundary=-\n\n'), bytes]), next);
  }
});
