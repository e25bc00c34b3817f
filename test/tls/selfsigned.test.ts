// The self-signed certificate: Node's own X.509 parser (and openssl, when
// installed) must accept it, with the names, dates and extensions we meant.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';
import { scratchDir } from './helpers.ts';

const NOW = new Date('2030-06-15T12:00:00.000Z');
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

const pair = createSelfSignedCertificate({
  hostname: 'Mail.Example.ORG',
  altNames: ['localhost', '127.0.0.1', '::1', 'mail.example.org'],
  now: NOW,
});
const x509 = new X509Certificate(pair.certPem);

test('subject, issuer and names', () => {
  assert.equal(x509.subject, 'CN=mail.example.org');
  assert.equal(x509.issuer, x509.subject);
  // Lower-cased, de-duplicated, hostname first; IP literals as iPAddress.
  assert.equal(x509.subjectAltName, 'DNS:mail.example.org, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.equal(x509.checkHost('mail.example.org'), 'mail.example.org');
  assert.equal(x509.checkHost('localhost'), 'localhost');
  assert.equal(x509.checkHost('other.example.org'), undefined);
  assert.equal(x509.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(x509.checkIP('::1'), '::1');
});

test('validity runs from an hour before now to `days` after (default 825)', () => {
  assert.equal(x509.validFromDate.getTime(), NOW.getTime() - HOUR);
  assert.equal(x509.validToDate.getTime(), NOW.getTime() + 825 * DAY);
  const short = new X509Certificate(createSelfSignedCertificate({ hostname: 'a.test', days: 3, now: NOW }).certPem);
  assert.equal(short.validToDate.getTime(), NOW.getTime() + 3 * DAY);
});

test('dates after 2049 (GeneralizedTime) parse', () => {
  const late = new X509Certificate(createSelfSignedCertificate({ hostname: 'a.test', days: 30, now: new Date('2049-12-20T00:00:00Z') }).certPem);
  assert.equal(late.validToDate.toISOString(), '2050-01-19T00:00:00.000Z');
});

test('the key matches, and the certificate verifies with its own key', () => {
  assert.ok(x509.checkPrivateKey(createPrivateKey(pair.keyPem)));
  assert.ok(x509.verify(x509.publicKey));
  assert.match(pair.keyPem, /^-----BEGIN PRIVATE KEY-----\n/); // PKCS#8
  assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const other = new X509Certificate(createSelfSignedCertificate({ hostname: 'b.test' }).certPem);
  assert.equal(x509.verify(other.publicKey), false);
});

test('it is a leaf for TLS servers with a random positive 16-byte serial', () => {
  assert.equal(x509.ca, false);
  assert.deepEqual(x509.keyUsage, ['1.3.6.1.5.5.7.3.1']); // Node reports extKeyUsage here
  assert.match(x509.serialNumber, /^[0-7][0-9A-F]{31}$/);
  assert.notEqual(x509.serialNumber, new X509Certificate(createSelfSignedCertificate({ hostname: 'a.test' }).certPem).serialNumber);
});

test('PEM lines are 64 characters', () => {
  const body = pair.certPem.trim().split('\n').slice(1, -1);
  assert.ok(body.slice(0, -1).every((line) => line.length === 64));
  assert.ok(body[body.length - 1].length <= 64);
});

test('bad names and day counts are refused', () => {
  for (const hostname of ['', 'bad name', 'a@b', '*.example.org', 'x'.repeat(65) + '.test']) {
    assert.throws(() => createSelfSignedCertificate({ hostname }), Error, hostname);
  }
  assert.throws(() => createSelfSignedCertificate({ hostname: 'a.test', days: 0 }), RangeError);
  assert.throws(() => createSelfSignedCertificate({ hostname: 'a.test', days: 1.5 }), RangeError);
});

test('Unicode names become A-labels; [::1] and IPv4-in-IPv6 work', () => {
  const cert = new X509Certificate(createSelfSignedCertificate({ hostname: 'bücher.example', altNames: ['[::1]', '2001:db8::ffff:1.2.3.4'] }).certPem);
  assert.equal(cert.subject, 'CN=xn--bcher-kva.example');
  assert.equal(cert.checkIP('2001:db8::ffff:102:304'), '2001:db8::ffff:102:304');
  assert.equal(cert.checkIP('::1'), '::1');
});

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

test('openssl reads it and agrees on every extension', { skip: !haveOpenssl() && 'no openssl on this machine' }, async () => {
  const file = join(await scratchDir('selfsigned'), 'cert.pem');
  writeFileSync(file, pair.certPem);
  const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', file], { encoding: 'utf8' });
  assert.match(text, /Version: 3 \(0x2\)/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /Extended Key Usage: *\n\s+TLS Web Server Authentication/);
  // RFC 5280 4.2.1.2 method (1): SHA-1 of the public key bits (the last
  // 65 bytes of a P-256 SubjectPublicKeyInfo: the uncompressed point).
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  const ski = createHash('sha1').update(spki.subarray(-65)).digest('hex').toUpperCase().match(/../g)!.join(':');
  assert.match(text, new RegExp(`Subject Key Identifier: *\\n\\s+${ski}`));
  // And as its own trust anchor it passes OpenSSL's checks for a TLS server
  // (the dates are in 2030, hence -no_check_time).
  const verify = execFileSync('openssl', ['verify', '-no_check_time', '-purpose', 'sslserver', '-CAfile', file, file], { encoding: 'utf8' });
  assert.match(verify, /: OK/);
});
