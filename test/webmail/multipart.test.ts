// The multipart/form-data parser (RFC 7578) on its own: any cut of the
// stream gives the same form, files land byte for byte in temporary files,
// every limit holds, and a refused first field stops it before a file is
// stored.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMultipart } from '../../src/webmail/http/multipart.ts';
import type { MultipartLimits } from '../../src/webmail/http/multipart.ts';
import { BodyError } from '../../src/webmail/http/form.ts';

const LIMITS: MultipartLimits = { maxTotalBytes: 1 << 20, maxFieldBytes: 1000, maxFields: 10, maxFiles: 2, maxHeaderBytes: 500 };
const BOUNDARY = 'xYz';
// A file with what looks nearly like a delimiter (a browser picks a boundary that does not occur in it, RFC 2046 5.1.1).
const FILE = Buffer.concat([Buffer.from('--xY\r\n\r\n--x\r\n-'), Buffer.from([0, 13, 10, 255]), Buffer.from('\r\n--xY')]);
const BODY = Buffer.concat([
  Buffer.from('preamble\r\n--xYz\r\nContent-Disposition: form-data; name="_csrf"\r\n\r\ntoken\r\n'),
  Buffer.from('--xYz\r\nContent-Disposition: form-data; name="text"\r\n\r\nline one\r\nline two\r\n'),
  Buffer.from('--xYz\r\nContent-Disposition: form-data; name="attachments"; filename="C:\\\\Users\\\\me\\\\r\u00e9sum\u00e9.pdf"\r\nContent-Type: Application/PDF\r\n\r\n'),
  FILE,
  Buffer.from('\r\n--xYz\r\nContent-Disposition: form-data; name="attachments"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n'),
  Buffer.from('\r\n--xYz--\r\nepilogue'),
]);

async function* pieces(body: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < body.length; i += size) yield body.subarray(i, i + size);
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'webmail-multipart-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('the same form whatever the chunk size; the file byte for byte; an empty file input is skipped', async (t) => {
  const dir = await tempDir(t);
  for (const size of [1, 2, 3, 5, 7, 16, 64, BODY.length]) {
    const form = await parseMultipart(pieces(BODY, size), BOUNDARY, LIMITS, dir);
    assert.equal(form.get('_csrf'), 'token', `chunks of ${size}`);
    assert.equal(form.get('text'), 'line one\r\nline two');
    assert.equal(form.files.length, 1);
    const [file] = form.files;
    assert.equal(file.filename, 'résumé.pdf', 'only the last path component, UTF-8 read');
    assert.equal(file.contentType, 'application/pdf');
    assert.equal(file.size, FILE.length);
    assert.ok((await readFile(file.path)).equals(FILE), `chunks of ${size}: the file`);
    await form.discard();
  }
  assert.deepEqual(await readdir(dir), [], 'discard() removes the files');
});

test('limits: total size, a field, the number of files, a header; a truncated form; nothing left behind', async (t) => {
  const dir = await tempDir(t);
  const refuse = async (body: Buffer, limits: Partial<MultipartLimits>, status: number) => {
    await assert.rejects(parseMultipart(pieces(body, 10), BOUNDARY, { ...LIMITS, ...limits }, dir), (err: unknown) => err instanceof BodyError && err.status === status);
    assert.deepEqual(await readdir(dir), [], 'no temporary file stays');
  };
  await refuse(BODY, { maxTotalBytes: 100 }, 413);
  await refuse(BODY, { maxFieldBytes: 10 }, 413);
  await refuse(BODY, { maxFiles: 0 }, 413);
  await refuse(BODY, { maxHeaderBytes: 50 }, 413);
  await refuse(BODY, { maxFields: 2 }, 413);
  await refuse(BODY.subarray(0, BODY.length - 20), {}, 400);
});

test('a first field the caller refuses stops the parse before any file is written', async (t) => {
  const dir = await tempDir(t);
  let seen = 0;
  await assert.rejects(
    parseMultipart(pieces(BODY, 4), BOUNDARY, LIMITS, dir, (name) => {
      seen++;
      if (name === '_csrf') throw new BodyError(403, 'bad token');
    }),
    (err: unknown) => err instanceof BodyError && err.status === 403,
  );
  assert.equal(seen, 1);
  assert.deepEqual(await readdir(dir), []);
});
