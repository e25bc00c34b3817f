// multipart/form-data (RFC 7578, on RFC 2046 5.1.1's multipart syntax),
// parsed by hand as the request streams in: the compose form with its
// attachments. Text fields are kept in memory (each up to a limit); files
// go straight to temporary files, so an upload of any allowed size costs a
// few chunks of memory.
//
//   --BOUNDARY CRLF
//   Content-Disposition: form-data; name="to" CRLF
//   CRLF
//   ana@example.org
//   CRLF --BOUNDARY CRLF
//   Content-Disposition: form-data; name="file"; filename="a.pdf" CRLF
//   Content-Type: application/pdf CRLF
//   CRLF
//   ...bytes...
//   CRLF --BOUNDARY-- CRLF
//
// The parser is a small state machine (preamble, headers, body, done) over
// a buffer that holds at most one header block or a delimiter's length of
// body bytes; the CRLF before a delimiter belongs to the delimiter (RFC
// 2046 5.1.1). Limits: the whole body, each header block, each text field,
// the number of fields and of files. `onField` sees each text field as soon
// as it is complete, so the CSRF token (the form's first field) is checked
// before a byte of any file is stored; throwing there stops the parse.

import { open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { headerValue, splitHeaderFields } from '../../mime/header.ts';
import { paramText, parseContentType, parseDisposition } from '../../mime/params.ts';
import { BodyError } from './form.ts';

export interface MultipartLimits {
  maxTotalBytes: number;
  maxFieldBytes: number;
  maxFields: number;
  maxFiles: number;
  maxHeaderBytes: number;
}

export interface UploadedFile {
  field: string;
  /** As the browser named it (only the last path component). */
  filename: string;
  contentType: string;
  /** The temporary file holding it; `MultipartForm.discard()` removes it. */
  path: string;
  size: number;
}

export class MultipartForm {
  readonly fields = new Map<string, string[]>();
  readonly files: UploadedFile[] = [];

  get(name: string): string {
    return this.fields.get(name)?.[0] ?? '';
  }

  getAll(name: string): string[] {
    return this.fields.get(name) ?? [];
  }

  async discard(): Promise<void> {
    await Promise.all(this.files.map((file) => rm(file.path, { force: true })));
  }
}

const CRLF_CRLF = Buffer.from('\r\n\r\n');

interface PartSink {
  name: string;
  file: { handle: FileHandle; info: UploadedFile } | null;
  text: Buffer[];
  textBytes: number;
}

export async function parseMultipart(
  body: AsyncIterable<Buffer>,
  boundary: string,
  limits: MultipartLimits,
  tmpDir: string,
  onField: (name: string, value: string) => void = () => {},
): Promise<MultipartForm> {
  const form = new MultipartForm();
  // The first delimiter may start the body; later ones follow a CRLF.
  const firstDelimiter = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let state: 'preamble' | 'headers' | 'after-delimiter' | 'body' | 'done' = 'preamble';
  let buffer: Buffer = Buffer.alloc(0);
  let total = 0;
  let part: PartSink | null = null;
  let fieldCount = 0;

  const startPart = async (header: Buffer) => {
    const fields = splitHeaderFields(header);
    const disposition = parseDisposition(headerValue(fields, 'content-disposition'));
    const name = disposition ? paramText(disposition.params, 'name') : null;
    if (!disposition || disposition.type.toLowerCase() !== 'form-data' || name === null) throw new BodyError(400, 'a form part without a name');
    if (++fieldCount > limits.maxFields) throw new BodyError(413, 'too many form fields');
    const filename = paramText(disposition.params, 'filename');
    part = { name, file: null, text: [], textBytes: 0 };
    if (filename === null) return;
    if (filename === '') {
      part.name = ''; // an empty file input: nothing was chosen; skip the part
      return;
    }
    if (form.files.length >= limits.maxFiles) throw new BodyError(413, 'too many files');
    const type = parseContentType(headerValue(fields, 'content-type'));
    const path = join(tmpDir, `upload-${randomBytes(12).toString('hex')}`);
    const info: UploadedFile = {
      field: name,
      filename: filename.split(/[/\\]/).pop()!.slice(0, 255),
      contentType: type ? `${type.type}/${type.subtype}`.toLowerCase() : 'application/octet-stream',
      path,
      size: 0,
    };
    form.files.push(info);
    part.file = { handle: await open(path, 'wx', 0o600), info };
  };

  const partData = async (data: Buffer) => {
    if (!part || data.length === 0) return;
    if (part.file) {
      part.file.info.size += data.length;
      await part.file.handle.write(data);
      return;
    }
    part.textBytes += data.length;
    if (part.textBytes > limits.maxFieldBytes) throw new BodyError(413, `the field ${part.name} is too long`);
    part.text.push(Buffer.from(data));
  };

  const endPart = async () => {
    const done = part as PartSink | null;
    part = null;
    if (!done) return;
    if (done.file) return done.file.handle.close();
    if (done.name === '') return;
    const value = Buffer.concat(done.text).toString('utf8');
    onField(done.name, value);
    form.fields.set(done.name, [...(form.fields.get(done.name) ?? []), value]);
  };

  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > limits.maxTotalBytes) throw new BodyError(413, 'the form is larger than allowed');
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      // Work through the buffer until it needs more bytes.
      for (;;) {
        if (state === 'preamble') {
          const at = buffer.indexOf(firstDelimiter);
          if (at < 0) {
            buffer = buffer.subarray(Math.max(0, buffer.length - firstDelimiter.length)); // the preamble is ignored
            break;
          }
          buffer = buffer.subarray(at + firstDelimiter.length);
          state = 'after-delimiter';
        } else if (state === 'after-delimiter') {
          if (buffer.length < 2) break;
          if (buffer[0] === 0x2d && buffer[1] === 0x2d) {
            state = 'done'; // "--": the close delimiter; the epilogue is ignored
            break;
          }
          // RFC 2046 5.1.1: transport padding (spaces) may follow a delimiter before its CRLF.
          const lineEnd = buffer.indexOf('\r\n');
          if (lineEnd < 0) {
            if (buffer.length > 256) throw new BodyError(400, 'malformed multipart delimiter');
            break;
          }
          buffer = buffer.subarray(lineEnd + 2);
          state = 'headers';
        } else if (state === 'headers') {
          // A part with no header fields at all starts with its blank line.
          const end = buffer[0] === 0x0d && buffer[1] === 0x0a ? -2 : buffer.indexOf(CRLF_CRLF);
          if (end === -1) {
            if (buffer.length > limits.maxHeaderBytes) throw new BodyError(413, 'form part header too large');
            break;
          }
          const header = end === -2 ? Buffer.alloc(0) : buffer.subarray(0, end + 2);
          if (header.length > limits.maxHeaderBytes) throw new BodyError(413, 'form part header too large');
          buffer = buffer.subarray(end === -2 ? 2 : end + 4);
          await startPart(header);
          state = 'body';
        } else if (state === 'body') {
          const at = buffer.indexOf(delimiter);
          if (at < 0) {
            // Keep what could be the start of a delimiter cut by the chunk's end.
            const safe = Math.max(0, buffer.length - (delimiter.length - 1));
            await partData(buffer.subarray(0, safe));
            buffer = buffer.subarray(safe);
            break;
          }
          await partData(buffer.subarray(0, at));
          await endPart();
          buffer = buffer.subarray(at + delimiter.length);
          state = 'after-delimiter';
        } else {
          buffer = Buffer.alloc(0);
          break;
        }
      }
    }
    if (state !== 'done') throw new BodyError(400, 'the form ended early');
    return form;
  } catch (err) {
    const open = part as PartSink | null;
    await open?.file?.handle.close().catch(() => {});
    await form.discard();
    throw err;
  }
}
