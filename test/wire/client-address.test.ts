import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressGroup, inNetworks, isLoopback, normaliseAddress } from '../../src/wire/client-address.ts';

test('IPv4 clients on a dual-stack socket are shown as IPv4', () => {
  assert.equal(normaliseAddress('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(normaliseAddress('2001:db8::1'), '2001:db8::1');
});

test('loopback is 127.0.0.0/8 and ::1, nothing else', () => {
  for (const a of ['127.0.0.1', '127.9.8.7', '::1']) assert.ok(isLoopback(a), a);
  for (const a of ['128.0.0.1', '::2', '10.0.0.1', '127.0.0.1.example']) assert.ok(!isLoopback(a), a);
});

test('per-address limits group IPv6 clients by /64, IPv4 by address', () => {
  assert.equal(addressGroup('192.0.2.7'), '192.0.2.7');
  assert.equal(addressGroup('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressGroup('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
  assert.equal(addressGroup('2001:db8:1:2::1'), '2001:db8:1:2::/64');
  assert.equal(addressGroup('2001:0db8:0001:0002::9'), '2001:db8:1:2::/64');
  assert.notEqual(addressGroup('2001:db8:1:3::1'), addressGroup('2001:db8:1:2::1'));
  assert.equal(addressGroup('::1'), '0:0:0:0::/64');
  assert.equal(addressGroup('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(addressGroup('2001:db8::'), '2001:db8:0:0::/64');
});

test('network lists (mynetworks): CIDR ranges and single addresses, IPv4 and IPv6', () => {
  const trusted = ['127.0.0.0/8', '::1', '192.0.2.7', '2001:db8::/32', 'not-an-address', '10.0.0.0/99'];
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '192.0.2.7', '::ffff:127.0.0.1', '2001:db8:ff::1']) assert.ok(inNetworks(a, trusted), a);
  for (const a of ['192.0.2.8', '10.0.0.1', '2001:db9::1', '::2', 'garbage']) assert.ok(!inNetworks(a, trusted), a);
  assert.ok(!inNetworks('127.0.0.1', []));
});
