// The DER encoder against hand-checked bytes (X.690 examples and OIDs
// whose encodings appear in every certificate), plus a round trip through
// readTlv for the long length forms.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitString, boolean, contextTag, encodeLength, generalizedTime, integer, octetString, oid,
  readTlv, sequence, set, tlv, utcTime, utf8String, x509Time,
} from '../../src/tls/der.ts';

const hex = (b: Buffer) => b.toString('hex');

test('lengths use the short form up to 127 and the shortest long form after', () => {
  assert.equal(hex(encodeLength(0)), '00');
  assert.equal(hex(encodeLength(127)), '7f');
  assert.equal(hex(encodeLength(128)), '8180');
  assert.equal(hex(encodeLength(255)), '81ff');
  assert.equal(hex(encodeLength(256)), '820100');
  assert.equal(hex(encodeLength(70000)), '83011170');
  assert.throws(() => encodeLength(-1), RangeError);
});

test('readTlv reads back every length form', () => {
  for (const size of [0, 127, 128, 256, 70000]) {
    const encoded = octetString(Buffer.alloc(size, 0xab));
    const back = readTlv(encoded);
    assert.equal(back.tag, 0x04);
    assert.equal(back.contents.length, size);
    assert.equal(back.end, encoded.length);
  }
  assert.throws(() => readTlv(Buffer.from('0480', 'hex')), /bad length/); // indefinite form
  assert.throws(() => readTlv(Buffer.from('0405aa', 'hex')), /past the end/);
});

test('integers are minimal two\'s complement', () => {
  assert.equal(hex(integer(0)), '020100');
  assert.equal(hex(integer(127)), '02017f');
  assert.equal(hex(integer(128)), '02020080');
  assert.equal(hex(integer(255)), '020200ff');
  assert.equal(hex(integer(256)), '02020100');
  assert.equal(hex(integer(-1)), '0201ff');
  assert.equal(hex(integer(-128)), '020180');
  assert.equal(hex(integer(-129)), '0202ff7f');
  assert.equal(hex(integer(2n ** 64n)), '0209010000000000000000');
  assert.throws(() => integer(1.5), RangeError);
});

test('a Buffer integer is unsigned: high bit gets a 0x00 pad, leading zeros go', () => {
  const serial = Buffer.from('ff'.repeat(16), 'hex');
  assert.equal(hex(integer(serial)), '0211' + '00' + 'ff'.repeat(16));
  assert.equal(hex(integer(Buffer.from('7f01', 'hex'))), '02027f01');
  assert.equal(hex(integer(Buffer.from('000001', 'hex'))), '020101');
  assert.equal(hex(integer(Buffer.from('000080', 'hex'))), '02020080');
  assert.equal(hex(integer(Buffer.alloc(3))), '020100');
  assert.equal(hex(integer(Buffer.alloc(0))), '020100');
});

test('object identifiers', () => {
  assert.equal(hex(oid('1.2.840.113549.1.1.11')), '06092a864886f70d01010b'); // sha256WithRSAEncryption
  assert.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302'); // ecdsa-with-SHA256
  assert.equal(hex(oid('2.5.29.17')), '0603551d11'); // subjectAltName
  assert.equal(hex(oid('2.5.4.3')), '0603550403'); // commonName
  assert.equal(hex(oid('1.3.6.1.5.5.7.3.1')), '06082b06010505070301'); // serverAuth
  assert.equal(hex(oid('2.999.3')), '0603883703'); // X.690 8.19.5 example: first arcs above 127
  for (const bad of ['1', '3.1', '1.40', '1..2', '1.2.x']) assert.throws(() => oid(bad), /bad OID/);
});

test('strings', () => {
  assert.equal(hex(utf8String('é')), '0c02c3a9');
  assert.equal(hex(octetString(Buffer.from([1, 2]))), '04020102');
});

test('times: UTCTime through 2049, GeneralizedTime from 2050, no fractions', () => {
  const lastUtc = new Date('2049-12-31T23:59:59.999Z');
  assert.equal(utcTime(lastUtc).toString('latin1'), '\x17\x0d491231235959Z');
  assert.deepEqual(x509Time(lastUtc), utcTime(lastUtc));
  const firstGeneralized = new Date('2050-01-01T00:00:00Z');
  assert.equal(generalizedTime(firstGeneralized).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.deepEqual(x509Time(firstGeneralized), generalizedTime(firstGeneralized));
  assert.throws(() => utcTime(firstGeneralized), RangeError);
  assert.equal(utcTime(new Date('1999-05-06T07:08:09Z')).toString('latin1'), '\x17\x0d990506070809Z');
});

test('bit strings, booleans, sequences, sets', () => {
  assert.equal(hex(bitString(Buffer.from([0xab]))), '030200ab');
  assert.equal(hex(bitString(Buffer.from([0x80]), 7)), '03020780'); // keyUsage digitalSignature
  assert.throws(() => bitString(Buffer.alloc(0), 1), RangeError);
  assert.equal(hex(boolean(true)), '0101ff');
  assert.equal(hex(boolean(false)), '010100');
  assert.equal(hex(sequence()), '3000');
  assert.equal(hex(sequence(integer(1), integer(2))), '3006020101020102');
  assert.equal(hex(set(integer(2), integer(1))), '3106020101020102'); // DER sorts SET OF
  const long = sequence(octetString(Buffer.alloc(200)));
  assert.equal(hex(long.subarray(0, 6)), '3081cb0481c8');
});

test('context tags: explicit wraps a TLV, implicit replaces the tag', () => {
  assert.equal(hex(contextTag(0, integer(2))), 'a003020102'); // version [0] v3
  assert.equal(hex(contextTag(3, sequence())), 'a3023000');
  assert.equal(hex(contextTag(2, Buffer.from('a'), false)), '820161'); // dNSName
  assert.equal(hex(contextTag(7, Buffer.from([127, 0, 0, 1]), false)), '87047f000001'); // iPAddress
  assert.throws(() => contextTag(31, Buffer.alloc(0)), RangeError);
  assert.equal(hex(tlv(0x05, Buffer.alloc(0))), '0500');
});
