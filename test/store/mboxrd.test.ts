// mboxrd quoting: the streaming quoter/unquoter against a plain line-by-line
// reference, at every chunk split (of a list of tricky lines and of random
// texts), and with a line too long to buffer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MboxrdQuoter, MboxrdUnquoter, quoteMboxrd, unquoteMboxrd, unquoteMboxrdText } from '../../src/store/mboxrd.ts';

// The definition, written the obvious way (whole text, regex per line).
const referenceQuote = (s: string) => s.replace(/^(>*From )/gm, '>$1');
const referenceUnquote = (s: string) => s.replace(/^>(>*From )/gm, '$1');

// Every case where a byte-by-byte matcher can go wrong: From at the start,
// after ">" runs, partial "From" at line and input end, "From" without the
// space, "From " not at a line start, empty lines, and no final LF.
const TRICKY = [
  'From start of input',
  'Subject: From here',
  '',
  '>From once quoted',
  '>>From twice quoted',
  '>>>',
  '>',
  'Fro',
  'From',
  'Frm x',
  'FFrom x',
  '>Fro',
  ' From indented',
  '>>>From x',
  'From ',
  '>From',
].join('\n') + '\n>>Fro';

function runChunks(t: { push(b: Buffer): Buffer; end(): Buffer }, chunks: Buffer[]): string {
  const out = chunks.map((c) => t.push(c));
  out.push(t.end());
  return Buffer.concat(out).toString('latin1');
}

test('quoteMboxrd matches the line-by-line definition', () => {
  const quoted = quoteMboxrd(Buffer.from(TRICKY)).toString();
  assert.equal(quoted, referenceQuote(TRICKY));
  assert.match(quoted, /^>From start of input\n/);
  assert.match(quoted, /\n>>>From twice quoted\n/);
  assert.match(quoted, /\nSubject: From here\n/); // not at a line start: untouched
  assert.match(quoted, /\nFro\nFrom\nFrm x\nFFrom x\n>Fro\n/); // near misses: untouched
});

test('unquote(quote(x)) gives x back, including ">From" lines', () => {
  const quoted = quoteMboxrd(Buffer.from(TRICKY));
  assert.equal(unquoteMboxrd(quoted).toString(), TRICKY);
  assert.equal(unquoteMboxrd(Buffer.from(TRICKY)).toString(), referenceUnquote(TRICKY));
});

test('quoting is the same at every two-way and three-way chunk split', () => {
  const input = Buffer.from(TRICKY);
  const expected = referenceQuote(TRICKY);
  for (let a = 0; a <= input.length; a++) {
    const parts = [input.subarray(0, a), input.subarray(a)];
    assert.equal(runChunks(new MboxrdQuoter(), parts), expected, `split at ${a}`);
  }
  for (let a = 0; a <= input.length; a += 3) {
    for (let b = a; b <= input.length; b++) {
      const parts = [input.subarray(0, a), input.subarray(a, b), input.subarray(b)];
      assert.equal(runChunks(new MboxrdQuoter(), parts), expected, `split at ${a},${b}`);
    }
  }
});

test('unquoting is the same at every chunk split', () => {
  const quoted = quoteMboxrd(Buffer.from(TRICKY));
  for (let a = 0; a <= quoted.length; a++) {
    for (const b of [a, a + 1, a + 4]) {
      const parts = [quoted.subarray(0, a), quoted.subarray(a, b), quoted.subarray(b)];
      assert.equal(runChunks(new MboxrdUnquoter(), parts), TRICKY, `split at ${a},${b}`);
    }
  }
});

// Random texts over the bytes that matter (and one that does not), with a
// fixed seed so a failure can be replayed. Each is cut at every byte into
// two chunks, and at every byte with a second cut 1, 2 or 5 bytes later.
function randomTexts(count: number, maxLength: number): string[] {
  let seed = 0x2545f491;
  const random = (n: number) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const pieces = ['>', '>', 'F', 'r', 'o', 'm', ' ', '\n', 'x', 'From ', '\n>From ', '\nFrom'];
  const texts: string[] = [];
  for (let n = 0; n < count; n++) {
    let text = '';
    for (let length = random(maxLength); text.length < length; ) text += pieces[random(pieces.length)];
    texts.push(text);
  }
  return texts;
}

test('random texts: quoting and unquoting match the definition at every chunk split', () => {
  for (const text of randomTexts(300, 40)) {
    const input = Buffer.from(text);
    const quoted = referenceQuote(text);
    const unquoted = referenceUnquote(text);
    for (let a = 0; a <= input.length; a++) {
      for (const b of [a, a + 1, a + 2, a + 5]) {
        const parts = [input.subarray(0, a), input.subarray(a, b), input.subarray(b)];
        const where = `${JSON.stringify(text)} split at ${a},${b}`;
        assert.equal(runChunks(new MboxrdQuoter(), parts), quoted, `quote ${where}`);
        assert.equal(runChunks(new MboxrdUnquoter(), parts), unquoted, `unquote ${where}`);
      }
    }
    assert.equal(unquoteMboxrd(Buffer.from(quoted)).toString(), text, `round trip ${JSON.stringify(text)}`);
  }
});

test('unquoteMboxrdText (a whole message as text) unquotes as the streaming unquoter does: the tricky lines, random texts, 8-bit bytes, and a CR that is not a line start', () => {
  const texts = [TRICKY, ...randomTexts(300, 40), '\xe9\n>From caf\xe9\n\xff>From not at a line start\n', 'a\r>From after a bare CR\n>From x\r\n', '>From', '>>From '];
  for (const text of texts) {
    const streamed = unquoteMboxrd(Buffer.from(text, 'latin1')).toString('latin1');
    assert.equal(unquoteMboxrdText(text), streamed, JSON.stringify(text));
  }
  assert.equal(unquoteMboxrdText('a\r>From x\n>>From y\n'), 'a\r>From x\n>From y\n', 'a line starts after LF only, as the store keeps lines');
});

test('one byte at a time', () => {
  const bytes = [...Buffer.from(TRICKY)].map((b) => Buffer.from([b]));
  const quoted = runChunks(new MboxrdQuoter(), bytes);
  assert.equal(quoted, referenceQuote(TRICKY));
  const back = runChunks(new MboxrdUnquoter(), [...Buffer.from(quoted, 'latin1')].map((b) => Buffer.from([b])));
  assert.equal(back, TRICKY);
});

test('a quoter or unquoter can be reused after end()', () => {
  const q = new MboxrdQuoter();
  assert.equal(runChunks(q, [Buffer.from('x\nFro')]), 'x\nFro');
  assert.equal(runChunks(q, [Buffer.from('From y\n')]), '>From y\n');
  const u = new MboxrdUnquoter();
  assert.equal(runChunks(u, [Buffer.from('>>')]), '>>');
  assert.equal(runChunks(u, [Buffer.from('>From y\n')]), 'From y\n');
});

// A line of a million ">" must stream: each push returns (almost) what went
// in, instead of holding the run until its end is known.
for (const tail of ['From x\n', 'not a from line\n']) {
  test(`a 1,000,000-">" line streams through (${tail.trim()})`, () => {
    const run = 1_000_000;
    const chunk = Buffer.alloc(4096, '>');
    const quoter = new MboxrdQuoter();
    const unquoter = new MboxrdUnquoter();
    let pushed = 0;
    let quotedOut = 0;
    let unquotedOut = 0;
    const collected: Buffer[] = [];
    const feed = (piece: Buffer) => {
      pushed += piece.length;
      const q = quoter.push(piece);
      quotedOut += q.length;
      const u = unquoter.push(q);
      unquotedOut += u.length;
      collected.push(u);
      // Nothing beyond one held ">" (unquoter) is ever kept back.
      assert.ok(quotedOut >= pushed - 5, `quoter holds ${pushed - quotedOut} bytes`);
      assert.ok(unquotedOut >= quotedOut - 6, `unquoter holds ${quotedOut - unquotedOut} bytes`);
    };
    for (let left = run; left > 0; left -= chunk.length) feed(chunk.subarray(0, Math.min(chunk.length, left)));
    feed(Buffer.from(tail));
    collected.push(unquoter.push(quoter.end()), unquoter.end());

    const isFrom = tail.startsWith('From ');
    assert.equal(quotedOut, run + tail.length + (isFrom ? 1 : 0));
    const result = Buffer.concat(collected);
    assert.equal(result.length, run + tail.length);
    assert.equal(result.subarray(run).toString(), tail);
    assert.ok(result.subarray(0, run).every((b) => b === 0x3e));
  });
}
