// DKIM signing (src/relay/dkim.ts), checked by the independent verifier in
// dkim-verify.ts, against the RFC 8463 Appendix A example, and through the
// two scripts that make keys and print DNS records, run as real processes.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { splitHeaderFields } from '../../src/mime/header.ts';
import { dkimSign, dkimTxtRecord, fromDomain, headerHashInput, loadDkimKey, signHeaderData } from '../../src/relay/dkim.ts';
import type { DkimAlgorithm, DkimKey, DkimOptions } from '../../src/relay/dkim.ts';
import { publicKeyFromTxt, relaxedBody, verifyDkim } from './dkim-verify.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ed = generateKeyPairSync('ed25519').privateKey;
const keyFor = (privateKey: KeyObject, algorithm: DkimAlgorithm): DkimKey => ({
  domain: 'example.org',
  selector: 'mail',
  algorithm,
  privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
});
const KEYS = [
  { key: keyFor(rsa, 'rsa-sha256'), pub: publicKeyFromTxt(dkimTxtRecord(rsa)) },
  { key: keyFor(ed, 'ed25519-sha256'), pub: publicKeyFromTxt(dkimTxtRecord(ed)) },
];
const NOW = new Date('2025-03-01T12:00:00Z');

const HEADER = [
  'Received: from laptop.example.org by mail.example.org; Sat, 1 Mar 2025 12:00:00 +0000',
  'From: Ann <ann@example.org>',
  'To: bob@example.net',
  'Subject: Lunch\ttomorrow?   ',
  'Date: Sat, 1 Mar 2025 12:00:00 +0000',
  'Message-ID: <1@example.org>',
  'X-Mailer: hand',
  'MIME-Version: 1.0',
  'Content-Type: text/plain;',
  ' charset=utf-8',
].join('\n');
const BODY = 'Hi Bob,\n\nShall we   meet at noon?  \n\n-- \nAnn\n\n\n';

async function* chunks(...parts: (string | Buffer)[]): AsyncIterable<Buffer> {
  for (const part of parts) yield Buffer.from(part);
}

/**
 * Signs header+body and returns the whole message as sent: the field, then
 * the message with CRLF line ends (wire/dot-writer.ts sends LF, CR LF and a
 * bare CR each as one CRLF).
 */
async function signed(header: string, body: string, key = KEYS[0].key, opts: DkimOptions = { now: NOW }): Promise<string> {
  const field = await dkimSign(Buffer.from(header), chunks(body), key, opts);
  return field + `${header}\n\n${body}`.replace(/\r\n|\r|\n/g, '\r\n');
}

/** The bh= a signature carries. */
async function bodyHashOf(body: string | Buffer[]): Promise<string> {
  const field = await dkimSign(Buffer.from('From: a@example.org\n'), typeof body === 'string' ? chunks(body) : chunks(...body), KEYS[1].key);
  return /bh=([^;]+);/.exec(field)![1];
}

test('rsa-sha256 and ed25519-sha256 signatures verify with an independent verifier', async () => {
  for (const { key, pub } of KEYS) {
    const message = await signed(HEADER, BODY, key);
    const result = verifyDkim(message, pub);
    assert.equal(result.reason, 'pass', key.algorithm);
    assert.equal(result.tags.get('a'), key.algorithm);
    assert.equal(result.tags.get('c'), 'relaxed/relaxed');
    assert.equal(result.tags.get('d'), 'example.org');
    assert.equal(result.tags.get('s'), 'mail');
    assert.equal(result.tags.get('t'), String(NOW.getTime() / 1000));
  }
});

test('the field: tags in order, folded within 78 columns, ending in CRLF', async () => {
  const field = await dkimSign(Buffer.from(HEADER), chunks(BODY), KEYS[0].key, { now: NOW });
  assert.match(field, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.org; s=mail;\r\n t=1740830400; h=from:/);
  assert.ok(field.endsWith('\r\n') && !field.endsWith('\r\n\r\n'));
  for (const line of field.slice(0, -2).split('\r\n')) assert.ok(line.length <= 78, line);
  assert.match(field.replace(/\r\n /g, ' '), /; bh=[^;]+; b=[A-Za-z0-9+/= ]+\r\n$/);
});

test('h= lists the wanted fields present, in header order, with From once more', async () => {
  const { tags } = verifyDkim(await signed(HEADER, BODY), KEYS[0].pub);
  assert.equal(tags.get('h')!.replace(/\s+/g, ''), 'from:to:subject:date:message-id:mime-version:content-type:from');
  // A custom list replaces the default, but From is always signed.
  const custom = await signed(HEADER, BODY, KEYS[0].key, { now: NOW, headers: ['Subject', 'X-Mailer'] });
  assert.equal(verifyDkim(custom, KEYS[0].pub).tags.get('h')!.replace(/\s+/g, ''), 'from:subject:x-mailer:from');
  // No From at all: its absence is signed, so the signature still meets RFC 6376 6.1.1.
  const noFrom = await signed('Subject: hi', 'x\n');
  assert.equal(verifyDkim(noFrom, KEYS[0].pub).tags.get('h')!.replace(/\s+/g, ''), 'subject:from');
  assert.equal(verifyDkim(noFrom, KEYS[0].pub).reason, 'pass');
});

test('a changed body or signed header fails; unsigned and whitespace-only changes pass', async () => {
  for (const { key, pub } of KEYS) {
    const message = await signed(HEADER, BODY, key);
    assert.equal(verifyDkim(message.replace('noon', 'one'), pub).reason, 'body hash mismatch');
    assert.equal(verifyDkim(message.replace('Subject: Lunch', 'Subject: Dinner'), pub).reason, 'signature mismatch');
    assert.equal(verifyDkim(message.replace('To: bob@', 'To: eve@'), pub).reason, 'signature mismatch');
    assert.equal(verifyDkim(message.replace('charset=utf-8', 'charset=latin1'), pub).reason, 'signature mismatch');
    // Oversigning: a second From, above or below the first, breaks it.
    assert.equal(verifyDkim(message.replace('\r\nTo:', '\r\nFrom: eve@evil.example\r\nTo:'), pub).reason, 'signature mismatch');
    assert.equal(verifyDkim(message.replace('\r\n\r\n', '\r\nFrom: eve@evil.example\r\n\r\n'), pub).reason, 'signature mismatch');
    // Relaxed canonicalisation survives what servers do in transit.
    assert.equal(verifyDkim(message.replace('X-Mailer: hand', 'X-Mailer: other'), pub).reason, 'pass');
    assert.equal(verifyDkim(message.replace('Received:', 'Received: from relay.example.net;\r\nReceived:'), pub).reason, 'pass');
    assert.equal(verifyDkim(message.replace('Subject: Lunch\t', 'SUBJECT:Lunch\r\n  '), pub).reason, 'pass');
    assert.equal(verifyDkim(message.replace('Ann\r\n', 'Ann   \r\n\r\n\r\n'), pub).reason, 'pass');
  }
});

test('several instances of a signed field are signed from the bottom up', async () => {
  const header = 'From: a@example.org\nTo: first@example.net\nSubject: s\nTo: second@example.net\nTo: third@example.net';
  for (const { key, pub } of KEYS) {
    const message = await signed(header, 'x\n', key);
    const result = verifyDkim(message, pub);
    assert.equal(result.reason, 'pass');
    assert.equal(result.tags.get('h')!.replace(/\s+/g, ''), 'from:to:subject:to:to:from');
    // Swapping two To fields changes what each h= entry refers to.
    const swapped = message.replace('first@', 'TMP@').replace('third@', 'first@').replace('TMP@', 'third@');
    assert.equal(verifyDkim(swapped, pub).reason, 'signature mismatch');
    assert.equal(verifyDkim(message.replace('To: second@example.net\r\n', ''), pub).reason, 'signature mismatch');
  }
});

test('body: LF and CRLF, trailing blank lines, whitespace runs and the empty body', async () => {
  const emptyHash = '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='; // SHA-256 of nothing: RFC 6376 3.4.4's empty body
  assert.equal(await bodyHashOf(''), emptyHash);
  assert.equal(await bodyHashOf('\r\n\r\n\n'), emptyHash);
  assert.equal(await bodyHashOf(' \t \n  \r\n'), emptyHash);

  const hi = await bodyHashOf('Hi\r\n');
  for (const same of ['Hi', 'Hi\n', 'Hi\n\n\n', 'Hi \t\r\n\r\n', 'Hi\r\n \r\n\t\r\n']) assert.equal(await bodyHashOf(same), hi, JSON.stringify(same));
  assert.notEqual(await bodyHashOf(' Hi\r\n'), hi); // leading WSP shrinks to one space, it is not removed
  assert.notEqual(await bodyHashOf('\r\nHi\r\n'), hi); // leading empty lines count

  const crlf = 'a  b\t\tc \r\n\r\n  d\r\ne\r\n';
  const expected = await bodyHashOf(crlf);
  assert.equal(await bodyHashOf(crlf.replace(/\r\n/g, '\n')), expected);
  assert.equal(await bodyHashOf('a b c\r\n\r\n d\r\ne\r\n'), expected);
  assert.notEqual(await bodyHashOf('ab c\r\n\r\n d\r\ne\r\n'), expected); // runs shrink, they do not vanish

  // Every way of cutting the body into chunks gives the same hash (a CR
  // and its LF, or a run of WSP, split across two chunks).
  const tricky = Buffer.from('x \t\r\n\r \n  y\r\r\n\n\r\n z \r\n\r\n');
  const whole = await bodyHashOf([tricky]);
  for (let cut = 0; cut <= tricky.length; cut++) {
    assert.equal(await bodyHashOf([tricky.subarray(0, cut), tricky.subarray(cut)]), whole, `cut at ${cut}`);
  }
  assert.equal(await bodyHashOf([...tricky].map((byte) => Buffer.from([byte]))), whole);
  // And the verifier, working on the whole string, agrees.
  const message = await signed('From: a@example.org', tricky.toString('latin1'), KEYS[1].key);
  assert.equal(verifyDkim(message, KEYS[1].pub).reason, 'pass');
  // A bare CR is hashed as the line end the receiver will see, not as data.
  assert.equal(message.includes('y\r\n\r\n'), true);
  assert.equal(await bodyHashOf('x\r\n\r\n \r\n  y\r\n\r\n\n\r\n z \r\n\r\n'), whole);
});

test('8-bit header bytes are signed as they are', async () => {
  const header = Buffer.from('From: Zoë <zoe@example.org>\nSubject: Grüße\n');
  for (const { key, pub } of KEYS) {
    const field = await dkimSign(header, chunks('ok\n'), key);
    const message = Buffer.concat([Buffer.from(field), Buffer.from(header.toString().replace(/\n/g, '\r\n')), Buffer.from('\r\nok\r\n')]);
    assert.equal(verifyDkim(message, pub).reason, 'pass');
    assert.equal(verifyDkim(Buffer.from(message.toString().replace('Grüße', 'Grüsse')), pub).reason, 'signature mismatch');
  }
});

test('a 20 MB body streams through in bounded memory', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const CHUNK = 64 * 1024;
  const COUNT = 320; // 20 MiB
  const chunkAt = (i: number) => Buffer.alloc(CHUNK, `line ${i % 7}  with\t trailing space \n`); // a fresh buffer each time
  const inUse = () => {
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
  gc();
  const before = inUse();
  let peak = 0;
  async function* body(): AsyncIterable<Buffer> {
    for (let i = 0; i < COUNT; i++) {
      if (i % 16 === 0) {
        gc(); // only what is still referenced survives: a signer keeping chunks would show here
        peak = Math.max(peak, inUse() - before);
      }
      yield chunkAt(i);
    }
  }
  const field = await dkimSign(Buffer.from('From: a@example.org\n'), body(), KEYS[1].key);
  assert.ok(peak < 4 * 1024 * 1024, `memory grew by ${peak} bytes while signing 20 MiB`);

  const whole = Buffer.concat(Array.from({ length: COUNT }, (_, i) => chunkAt(i))).toString('latin1');
  const expected = createHash('sha256').update(Buffer.from(relaxedBody(whole), 'latin1')).digest('base64');
  assert.equal(/bh=([^;]+);/.exec(field)![1], expected);
});

// RFC 8463 Appendix A: the example keys (A.1, A.2) and signed message (A.3).
// Both algorithms are deterministic (Ed25519; RSA PKCS#1 v1.5), so the
// signer's header canonicalisation must reproduce the RFC's b= exactly.
const RFC_ED25519_SEED = 'nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=';
const RFC_ED25519_TXT = 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const RFC_RSA_TXT =
  'v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB';
const RFC_RSA_KEY = `-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----
`;
const RFC_SIGNATURES = [
  `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==`,
  `DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=`,
];
const RFC_HEADER = `From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>`;
const RFC_BODY = 'Hi.\n\nWe lost the game.  Are you hungry yet?\n\nJoe.\n';

test('RFC 8463 Appendix A: the verifier passes the example, the signer reproduces it', async () => {
  const crlf = (text: string) => text.replace(/\r?\n/g, '\r\n');
  const message = crlf(`${RFC_SIGNATURES.join('\n')}\n${RFC_HEADER}\n\n${RFC_BODY}`);
  const edKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(RFC_ED25519_SEED, 'base64')]), // RFC 8410 PKCS#8 wrapper
    format: 'der',
    type: 'pkcs8',
  });
  const rsaKey = createPrivateKey(RFC_RSA_KEY);
  // The keys are the RFC's: their public halves give A.2's records.
  assert.equal(dkimTxtRecord(edKey), RFC_ED25519_TXT);
  assert.equal(dkimTxtRecord(rsaKey), RFC_RSA_TXT);
  // The independent verifier accepts both signatures (the verifier's own check).
  assert.equal(verifyDkim(message, publicKeyFromTxt(RFC_ED25519_TXT), 0).reason, 'pass');
  assert.equal(verifyDkim(message, publicKeyFromTxt(RFC_RSA_TXT), 1).reason, 'pass');
  assert.equal(verifyDkim(message.replace('hungry', 'angry'), publicKeyFromTxt(RFC_ED25519_TXT), 0).reason, 'body hash mismatch');

  // The signer's body hash, and b= recomputed from the RFC's own tag list.
  const ours = await dkimSign(Buffer.from(RFC_HEADER), chunks(RFC_BODY), { domain: 'football.example.com', selector: 'brisbane', algorithm: 'ed25519-sha256', privateKeyPem: edKey.export({ format: 'pem', type: 'pkcs8' }) as string });
  assert.match(ours, /bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;/);
  const fields = splitHeaderFields(Buffer.from(crlf(RFC_HEADER + '\n')));
  const names = ['from', 'to', 'subject', 'date', 'message-id', 'from', 'subject', 'date'];
  for (const [i, [key, algorithm]] of ([[edKey, 'ed25519-sha256'], [rsaKey, 'rsa-sha256']] as const).entries()) {
    const [withoutB, b] = crlf(RFC_SIGNATURES[i]).split(/(?<=b=)(?=[^;]*$)/);
    const signature = signHeaderData(headerHashInput(fields, names, withoutB), key, algorithm);
    assert.equal(signature.toString('base64'), b.replace(/\s+/g, ''), algorithm);
  }
});

test('keys: loadDkimKey picks the algorithm and refuses what it cannot use', async () => {
  const dir = await scratch();
  const write = async (name: string, pem: string) => (await writeFile(join(dir, name), pem), join(dir, name));
  assert.equal((await loadDkimKey('example.org', 'mail', await write('ed.pem', KEYS[1].key.privateKeyPem))).algorithm, 'ed25519-sha256');
  const pkcs1 = rsa.export({ format: 'pem', type: 'pkcs1' }) as string;
  assert.equal((await loadDkimKey('example.org', 'mail', await write('rsa.pem', pkcs1))).algorithm, 'rsa-sha256');
  const short = generateKeyPairSync('rsa', { modulusLength: 512 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await assert.rejects(loadDkimKey('example.org', 'mail', await write('short.pem', short)), /too short/);
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  await assert.rejects(loadDkimKey('example.org', 'mail', await write('ec.pem', ec)), /RSA or Ed25519/);
  await assert.rejects(loadDkimKey('example.org', 'mail', await write('junk.pem', 'hello')), /not a PEM private key/);
  await assert.rejects(loadDkimKey('example.org; x=1', 'mail', join(dir, 'ed.pem')), /not a valid domain/);
  // The key must be what the caller says it is.
  await assert.rejects(dkimSign(Buffer.from(HEADER), chunks(BODY), { ...KEYS[1].key, algorithm: 'rsa-sha256' }), /is ed25519-sha256, not rsa-sha256/);
  await assert.rejects(dkimSign(Buffer.from(HEADER), chunks(BODY), { ...KEYS[1].key, selector: 'a b' }), /not a valid selector/);
});

// The scripts, run as real processes.
const script = (name: string) => fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
const run = (name: string, args: string[], cwd: string) =>
  promisify(execFile)(process.execPath, [script(name), ...args], { cwd }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jjordan-dkim-'));
  after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
/** The TXT value printed after "value:", its quoted strings joined again. */
const txtValue = (stdout: string) => [.../^value: (.*)$/m.exec(stdout)![1].matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');

test('dkim-keygen writes a 0600 key and prints a record that verifies its signatures', async () => {
  const cwd = await scratch();
  await writeFile(join(cwd, 'mail.json'), JSON.stringify({ dataDir: 'spool' }));
  for (const algorithm of ['rsa', 'ed25519']) {
    const { code, stdout, stderr } = await run('dkim-keygen.ts', ['--domain', 'example.org', '--selector', algorithm, '--algorithm', algorithm, '--config', 'mail.json'], cwd);
    assert.equal(code, 0, stderr);
    const keyPath = join(cwd, 'spool', 'dkim', `${algorithm}.example.org.key.pem`);
    assert.equal((await stat(keyPath)).mode & 0o777, 0o600);
    assert.match(stdout, new RegExp(`^name: +${algorithm}\\._domainkey\\.example\\.org$`, 'm'));
    // The last line is the relay.dkim.keys entry for the config, as JSON.
    assert.deepEqual(JSON.parse(stdout.trim().split('\n').at(-1)!), { domain: 'example.org', selector: algorithm, keyFile: keyPath });
    const record = txtValue(stdout);
    assert.match(record, new RegExp(`^v=DKIM1; k=${algorithm}; p=[A-Za-z0-9+/]+=*$`));
    for (const quoted of stdout.match(/"[^"]*"/g)!) assert.ok(quoted.length <= 257);
    if (algorithm === 'ed25519') assert.equal(Buffer.from(record.split('p=')[1], 'base64').length, 32);

    const key = await loadDkimKey('example.org', algorithm, keyPath);
    const field = await dkimSign(Buffer.from(HEADER), chunks(BODY), key);
    assert.equal(verifyDkim(field + `${HEADER}\n\n${BODY}`, publicKeyFromTxt(record)).reason, 'pass');
  }
  const again = await run('dkim-keygen.ts', ['--domain', 'example.org', '--selector', 'rsa', '--config', 'mail.json'], cwd);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already exists/);
  assert.equal((await run('dkim-keygen.ts', ['--domain', 'example.org', '--selector', 'rsa', '--bits', '1024', '--force', '--config', 'mail.json'], cwd)).code, 0);
  const pem = await readFile(join(cwd, 'spool', 'dkim', 'rsa.example.org.key.pem'), 'utf8');
  assert.equal(createPrivateKey(pem).asymmetricKeyDetails?.modulusLength, 1024);
});

test('dns-records prints MX, A, SPF, DKIM and DMARC with explanations', async () => {
  const cwd = await scratch();
  const keyPath = join(cwd, 'ed.pem');
  await writeFile(keyPath, KEYS[1].key.privateKeyPem);
  const args = ['--domain', 'example.org', '--host', 'mail.example.org', '--ip', '203.0.113.5', '--ip', '2001:db8::5', '--selector', 's1', '--key', keyPath];
  const { code, stdout, stderr } = await run('dns-records.ts', args, cwd);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^example\.org\. IN MX 10 mail\.example\.org\.$/m);
  assert.match(stdout, /^mail\.example\.org\. IN A 203\.0\.113\.5$/m);
  assert.match(stdout, /^mail\.example\.org\. IN AAAA 2001:db8::5$/m);
  assert.match(stdout, /^example\.org\. IN TXT "v=spf1 mx -all"$/m);
  assert.match(stdout, /^_dmarc\.example\.org\. IN TXT "v=DMARC1; p=quarantine; rua=mailto:postmaster@example\.org"$/m);
  assert.ok(stdout.includes(`s1._domainkey.example.org. IN TXT ( "${dkimTxtRecord(ed)}" )`));
  for (const kind of ['MX', 'A/AAAA', 'SPF', 'DKIM', 'DMARC']) assert.match(stdout, new RegExp(`^; ${kind}: .+\\.$`, 'm'));
  // Without --ip and --key it says what is missing instead.
  const bare = await run('dns-records.ts', ['--domain', 'example.org', '--host', 'mail.example.org'], cwd);
  assert.equal(bare.code, 0);
  assert.match(bare.stdout, /Pass --ip/);
  assert.match(bare.stdout, /dkim-keygen/);
});

test('usage mistakes exit 2', async () => {
  const cwd = await scratch();
  const keygen = [[], ['--domain', 'bad domain'], ['--domain', 'a.test', '--algorithm', 'dsa'], ['--domain', 'a.test', '--bits', '512'], ['--domain', 'a.test', '--algorithm', 'ed25519', '--bits', '2048'], ['--domain', 'a.test', '--nope']];
  const dns = [[], ['--domain', 'a.test'], ['--domain', 'a.test', '--host', 'm.a.test', '--ip', '999.1.1.1'], ['--domain', 'a.test', '--host', 'm.a.test', '--selector', 's'], ['--domain', 'a.test', '--host', 'm.a.test', '--key', join(cwd, 'missing.pem')]];
  const runs = [...keygen.map((args) => ['dkim-keygen.ts', args] as const), ...dns.map((args) => ['dns-records.ts', args] as const)];
  const results = await Promise.all(runs.map(([name, args]) => run(name, args, cwd)));
  results.forEach((result, i) => assert.equal(result.code, 2, `${runs[i][0]} ${runs[i][1].join(' ')}: ${result.stderr}`));
  assert.match(results[0].stderr, /usage: node scripts\/dkim-keygen\.ts/);
});

test('fromDomain: the domain of the one From: address, whatever the display name and comments hold', () => {
  const domainOf = (header: string) => fromDomain(Buffer.from(header));
  assert.equal(domainOf('Subject: x\nFrom: Jo Jordan <jo@Example.ORG>\n'), 'example.org');
  assert.equal(domainOf('From: jo@example.org\n'), 'example.org');
  assert.equal(domainOf('From: jo@example.org (Jo, at <work@evil.example>)\n'), 'example.org');
  assert.equal(domainOf('From: "Eve, <eve@evil.example>" <jo@example.org>\n'), 'example.org');
  assert.equal(domainOf('From: (a (nested) comment with @evil.example) jo@example.org\n'), 'example.org');
  assert.equal(domainOf('From: Jo\n\t<jo@example.org>\n'), 'example.org');
  // No single author: no domain, and so no signature.
  assert.equal(domainOf('Subject: no from\n'), null);
  assert.equal(domainOf('From: a@example.org\nFrom: b@example.org\n'), null);
  assert.equal(domainOf('From: a@example.org, b@example.com\n'), null);
  assert.equal(domainOf('From: undisclosed-recipients:;\n'), null);
});
