// Loading, creating and reloading the server certificate, with real TLS
// handshakes over loopback: verification on, TLS 1.1 refused, and a reload
// that changes what new connections see while old ones keep working.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TlsCredentials, loadOrCreateCertificate, expiryWarning } from '../../src/tls/certificates.ts';
import { createSelfSignedCertificate } from '../../src/tls/selfsigned.ts';
import { connect, handshakeServer, listen, peerFingerprint, roundTrip, scratchDir } from './helpers.ts';

const HOST = 'mail.example.test';
const root = await scratchDir('tls');
let counter = 0;

async function freshDir(): Promise<string> {
  const dir = join(root, `case${counter++}`);
  await mkdir(dir);
  return dir;
}

// Write a new self-signed pair into `dir`, as a renewal would.
async function writePair(dir: string, hostname = HOST) {
  const { certPem, keyPem } = createSelfSignedCertificate({ hostname });
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  await writeFile(certPath, certPem);
  await writeFile(keyPath, keyPem);
  return { certPath, keyPath, certPem, fingerprint: new X509Certificate(certPem).fingerprint256 };
}

test('first start creates the pair in <dataDir>/tls; later starts reuse it', async () => {
  const dataDir = await freshDir();
  const logged: string[] = [];
  const first = await loadOrCreateCertificate({ dataDir, hostname: HOST, log: (m) => logged.push(m) });
  assert.equal(first.created, true);
  assert.equal(first.certPath, join(dataDir, 'tls', 'cert.pem'));
  assert.equal(first.keyPath, join(dataDir, 'tls', 'key.pem'));
  assert.match(logged[0], /self-signed/);
  assert.equal((await stat(first.keyPath)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dataDir, 'tls'))).mode & 0o777, 0o700);
  const x509 = new X509Certificate(first.cert);
  assert.equal(x509.checkHost(HOST), HOST);
  assert.equal(x509.checkHost('localhost'), 'localhost');

  const second = await loadOrCreateCertificate({ dataDir, hostname: 'ignored.example' });
  assert.equal(second.created, false);
  assert.equal(second.cert, first.cert);
  assert.equal(second.key, first.key);
});

test('a key left without its certificate (crash mid-create) is replaced', async () => {
  const dataDir = await freshDir();
  const first = await loadOrCreateCertificate({ dataDir, hostname: HOST });
  await unlink(first.certPath);
  const again = await loadOrCreateCertificate({ dataDir, hostname: HOST });
  assert.equal(again.created, true);
  assert.notEqual(again.key, first.key);
});

test('a certificate without its key is an error, never silently replaced', async () => {
  const dataDir = await freshDir();
  const first = await loadOrCreateCertificate({ dataDir, hostname: HOST });
  await unlink(first.keyPath);
  await assert.rejects(loadOrCreateCertificate({ dataDir, hostname: HOST }), (err: Error) => err.message.includes(first.keyPath));
});

test('configured paths are read as they are, with errors that name the file', async () => {
  const dir = await freshDir();
  const pair = await writePair(dir);
  const loaded = await loadOrCreateCertificate({ certPath: pair.certPath, keyPath: pair.keyPath, dataDir: dir, hostname: HOST });
  assert.equal(loaded.created, false);
  assert.equal(loaded.cert, pair.certPem);

  const missing = join(dir, 'nope.pem');
  await assert.rejects(
    loadOrCreateCertificate({ certPath: missing, keyPath: pair.keyPath, dataDir: dir, hostname: HOST }),
    (err: Error) => err.message.includes(missing) && /does not exist/.test(err.message),
  );
  await assert.rejects(
    loadOrCreateCertificate({ certPath: pair.certPath, dataDir: dir, hostname: HOST }),
    /both a certificate file and a key file/,
  );
  const other = await writePair(await freshDir(), 'other.test');
  await assert.rejects(
    loadOrCreateCertificate({ certPath: pair.certPath, keyPath: other.keyPath, dataDir: dir, hostname: HOST }),
    (err: Error) => err.message.includes(other.keyPath) && /does not belong/.test(err.message),
  );
  const junk = join(dir, 'junk.pem');
  await writeFile(junk, 'not a certificate\n');
  await assert.rejects(
    loadOrCreateCertificate({ certPath: junk, keyPath: pair.keyPath, dataDir: dir, hostname: HOST }),
    (err: Error) => err.message.includes(junk) && /not a PEM certificate/.test(err.message),
  );
});

test('a real handshake: verified against the certificate, TLS 1.2 or later', async (t) => {
  const creds = await TlsCredentials.load({ dataDir: await freshDir(), hostname: HOST });
  const port = await listen(t, handshakeServer(creds));

  const client = await connect(port, { ca: creds.certPem, servername: HOST, rejectUnauthorized: true });
  assert.ok(client.authorized);
  assert.ok(['TLSv1.2', 'TLSv1.3'].includes(client.getProtocol() ?? ''), String(client.getProtocol()));
  assert.equal(await roundTrip(client, 'EHLO client.example'), 'EHLO client.example\n');

  // The wrong name, or no trust in this certificate, fails verification.
  await assert.rejects(connect(port, { ca: creds.certPem, servername: 'other.example' }), /does not match|altnames/i);
  await assert.rejects(connect(port, { servername: HOST }), /self.signed/i);
  client.destroy();
});

test('a client limited to TLS 1.1 is refused', async (t) => {
  const creds = await TlsCredentials.load({ dataDir: await freshDir(), hostname: HOST });
  let refusedBy: (err: Error) => void = () => {};
  const refused = new Promise<Error>((resolve) => (refusedBy = resolve));
  const port = await listen(t, handshakeServer(creds, refusedBy));
  // SECLEVEL=0 lets this client's OpenSSL offer TLS 1.1 at all, so it is the
  // server (minVersion TLSv1.2) that says no.
  await assert.rejects(
    connect(port, { ca: creds.certPem, servername: HOST, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
  );
  assert.match((await refused).message, /unsupported protocol|version/i);
});

test('reload: new connections get the new certificate, open ones carry on', async (t) => {
  const dir = await freshDir();
  const a = await writePair(dir);
  const creds = await TlsCredentials.load({ certPath: a.certPath, keyPath: a.keyPath, dataDir: dir, hostname: HOST });

  // Implicit TLS and STARTTLS both wrap a plain socket with upgradeOptions()
  // when the handshake starts (wire/listener.ts, wire/connection.ts).
  const port = await listen(t, handshakeServer(creds));

  const old = await connect(port, { ca: a.certPem, servername: HOST });
  assert.equal(peerFingerprint(old), a.fingerprint);

  const b = await writePair(dir); // the renewal lands on the same paths
  await creds.reload();

  assert.equal(await roundTrip(old, 'still here'), 'still here\n');
  for (const options of [
    { servername: HOST }, // with SNI
    { checkServerIdentity: () => undefined }, // by IP address, without SNI
  ] as const) {
    const fresh = await connect(port, { ca: b.certPem, ...options });
    assert.equal(peerFingerprint(fresh), b.fingerprint);
    assert.equal(await roundTrip(fresh, 'hello'), 'hello\n');
    fresh.destroy();
  }
  old.destroy();
});

test('reload with a broken file throws and keeps serving the old certificate', async (t) => {
  const dir = await freshDir();
  const a = await writePair(dir);
  const creds = await TlsCredentials.load({ certPath: a.certPath, keyPath: a.keyPath, dataDir: dir, hostname: HOST });
  const port = await listen(t, handshakeServer(creds));
  const before = creds.context;

  await writeFile(a.certPath, '-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n');
  await assert.rejects(creds.reload(), (err: Error) => /TLS reload failed/.test(err.message) && err.message.includes(a.certPath));

  // A renewal that wrote a certificate for some other key is refused too.
  const other = createSelfSignedCertificate({ hostname: HOST });
  await writeFile(a.certPath, other.certPem);
  await assert.rejects(creds.reload(), /does not belong/);

  await unlink(a.keyPath);
  await assert.rejects(creds.reload(), (err: Error) => err.message.includes(a.keyPath));

  assert.equal(creds.context, before);
  const client = await connect(port, { ca: a.certPem, servername: HOST });
  assert.equal(peerFingerprint(client), a.fingerprint);
  assert.equal(await roundTrip(client, 'ok'), 'ok\n');
  client.destroy();
});

test('expiry: a warning from 14 days before the end, and once expired', async () => {
  const dir = await freshDir();
  const { certPem, keyPem } = createSelfSignedCertificate({ hostname: HOST, days: 10 });
  await writeFile(join(dir, 'cert.pem'), certPem);
  await writeFile(join(dir, 'key.pem'), keyPem);
  const shortLived = await TlsCredentials.load({ certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), dataDir: dir, hostname: HOST });
  assert.match(shortLived.expiryWarning() ?? '', /expires in (9|10) days/);
  assert.ok(shortLived.expiryWarning()!.includes(join(dir, 'cert.pem')), 'the warning names the file');

  const longLived = await TlsCredentials.load({ dataDir: await freshDir(), hostname: HOST });
  assert.equal(longLived.expiryWarning(), null, 'a fresh 825-day certificate is fine');

  const validTo = new Date('2030-06-15T00:00:00Z');
  const day = 24 * 60 * 60 * 1000;
  assert.equal(expiryWarning('c.pem', validTo, new Date(validTo.getTime() - 15 * day)), null);
  assert.match(expiryWarning('c.pem', validTo, new Date(validTo.getTime() - 13.5 * day)) ?? '', /expires in 13 days/);
  assert.match(expiryWarning('c.pem', validTo, new Date(validTo.getTime() + day)) ?? '', /c\.pem expired on 2030-06-15/);
});
