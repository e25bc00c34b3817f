// Routing against a real DNS conversation: the test DNS server
// (test/helpers/dns-server.ts) answers Node's own resolver over UDP on
// loopback, so the error codes routeFor() sees are the ones it will see in
// production (ENOTFOUND, ENODATA, ESERVFAIL, ETIMEOUT...).
//
// First the server itself, then each rule of src/relay/mx.ts.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { promises as dns } from 'node:dns';
import type { MxRecord } from 'node:dns';
import { readName, startDnsServer } from '../helpers/dns-server.ts';
import type { DnsServer, Zone } from '../helpers/dns-server.ts';
import { createResolver, routeFor } from '../../src/relay/mx.ts';
import type { MxResolver, Route } from '../../src/relay/mx.ts';

const zone: Zone = {
  'example.net': { MX: [[10, 'mx1.example.net'], [20, 'mx2.example.net']], TXT: ['v=spf1 -all', ['a', 'b']] },
  'mx1.example.net': { A: ['127.0.0.2'] },
  'mx2.example.net': { A: ['127.0.0.3'], AAAA: ['2001:db8::25'] },
  'shuffle.example': {
    MX: [[30, 'd.shuffle.example'], [10, 'a1.shuffle.example'], [10, 'a2.shuffle.example'], [20, 'c.shuffle.example'], [10, 'a3.shuffle.example']],
  },
  'a1.shuffle.example': { A: ['127.0.1.1'] },
  'a2.shuffle.example': { A: ['127.0.1.2'] },
  'a3.shuffle.example': { A: ['127.0.1.3'] },
  'c.shuffle.example': { A: ['127.0.1.4'] },
  'd.shuffle.example': { A: ['127.0.1.5'] },
  'null.example': { MX: [[0, '']] },
  'rootonly.example': { MX: [[10, '.']] },
  'broken.example': 'SERVFAIL',
  'gone.example': 'NXDOMAIN',
  'slow.example': 'TIMEOUT',
  'implicit.example': { A: ['127.0.0.9'], AAAA: ['::1'] },
  'empty.example': {},
  'partial.example': { MX: [[5, 'missing.example'], [10, 'flaky.example'], [20, 'mx1.example.net']] },
  'flaky.example': 'SERVFAIL',
  'allflaky.example': { MX: [[10, 'flaky.example'], [20, 'missing.example']] },
  'allmissing.example': { MX: [[10, 'missing.example'], [20, 'missing2.example']] },
  'dual.example': { MX: [[10, 'dual.mx.example']] },
  'dual.mx.example': { A: ['127.0.0.4', '127.0.0.5'], AAAA: ['::1', '2001:db8::26'] },
  'half.example': { MX: [[10, 'half.mx.example']] },
  'half.mx.example': { A: ['127.0.0.6'], AAAA: 'SERVFAIL' },
  'numeric.example': { MX: [[10, '127.0.0.7']] },
  'many.example': { MX: Array.from({ length: 20 }, (_, i): [number, string] => [i, `h${i}.many.example`]) },
  ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`h${i}.many.example`, { A: [`127.0.2.${i}`] }])),
  'twice.example': { MX: [[10, 'mx1.example.net'], [20, 'alias.example']] },
  'alias.example': { A: ['127.0.0.2'] },
};

let server: DnsServer;
let resolver: MxResolver;
// A resolver that must not be asked anything.
const noDns: MxResolver = {
  resolveMx: () => Promise.reject(new Error('DNS used')),
  resolve4: () => Promise.reject(new Error('DNS used')),
  resolve6: () => Promise.reject(new Error('DNS used')),
};

before(async () => {
  server = await startDnsServer(zone);
  const r = new dns.Resolver({ timeout: 300, tries: 1 });
  r.setServers([`127.0.0.1:${server.port}`]);
  resolver = r;
});
after(() => server.close());

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (err: NodeJS.ErrnoException) => err.code ?? String(err),
  );
}

function hostsOf(route: Route): string[] {
  assert.equal(route.kind, 'deliver', JSON.stringify(route));
  return route.kind === 'deliver' ? route.destinations.map((d) => d.host) : [];
}

// ---- the DNS server ------------------------------------------------------

test('dns server: A, AAAA, MX, TXT answers through Node resolver', async () => {
  const r = resolver as dns.Resolver;
  assert.deepEqual(await r.resolve4('mx1.example.net'), ['127.0.0.2']);
  assert.deepEqual(await r.resolve6('MX2.Example.NET'), ['2001:db8::25']);
  // Node 24 adds `type: 'MX'` to each record; compare only the two fields.
  const mx = (records: MxRecord[]) => records.map(({ exchange, priority }) => ({ exchange, priority }));
  assert.deepEqual(mx(await r.resolveMx('example.net')), [
    { exchange: 'mx1.example.net', priority: 10 },
    { exchange: 'mx2.example.net', priority: 20 },
  ]);
  assert.deepEqual(await r.resolveTxt('example.net'), [['v=spf1 -all'], ['a', 'b']]);
  assert.deepEqual(mx(await r.resolveMx('null.example')), [{ exchange: '', priority: 0 }]);
});

test('dns server: NXDOMAIN, SERVFAIL, NODATA and silence', async () => {
  const r = resolver as dns.Resolver;
  assert.equal(await codeOf(r.resolveMx('gone.example')), 'ENOTFOUND');
  assert.equal(await codeOf(r.resolveMx('not-in-the-zone.example')), 'ENOTFOUND');
  assert.equal(await codeOf(r.resolveMx('broken.example')), 'ESERVFAIL');
  assert.equal(await codeOf(r.resolveMx('mx1.example.net')), 'ENODATA');
  assert.equal(await codeOf(r.resolve6('half.mx.example')), 'ESERVFAIL');
  assert.equal(await codeOf(r.resolveMx('slow.example')), 'ETIMEOUT', 'the resolver waited for its timeout');
});

test('dns server: logs the questions it receives', async () => {
  const before = server.queries.length;
  await (resolver as dns.Resolver).resolve4('mx1.example.net');
  assert.deepEqual(server.queries.slice(before), [{ name: 'mx1.example.net', type: 'A' }]);
});

test('dns server: reads compressed names and refuses pointer loops', () => {
  // "mail" + pointer to offset 0, where "example.net" is written out.
  const packet = Buffer.from([7, ...Buffer.from('example'), 3, ...Buffer.from('net'), 0, 4, ...Buffer.from('mail'), 0xc0, 0x00]);
  assert.deepEqual(readName(packet, 0), { name: 'example.net', end: 13 });
  assert.deepEqual(readName(packet, 13), { name: 'mail.example.net', end: 20 });
  assert.throws(() => readName(Buffer.from([0xc0, 0x00]), 0), /backwards/);
  assert.throws(() => readName(Buffer.from([5, 0x61]), 0), /past the packet/);
});

test('dns server: a garbled query gets FORMERR, not a crash', async () => {
  const socket = createSocket('udp4');
  try {
    const reply = await new Promise<Buffer>((resolve) => {
      socket.once('message', resolve);
      // ID 0x1234, a query with one question whose name runs off the end.
      socket.send(Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 9, 0x61]), server.port, '127.0.0.1');
    });
    assert.equal(reply.readUInt16BE(0), 0x1234);
    assert.equal(reply.readUInt16BE(2) & 0x800f, 0x8001, 'a response with RCODE 1');
  } finally {
    socket.close();
  }
});

// ---- routeFor -------------------------------------------------------------

test('MX hosts in preference order, with their addresses', async () => {
  const route = await routeFor('example.net', resolver);
  assert.deepEqual(route, {
    kind: 'deliver',
    destinations: [
      { host: 'mx1.example.net', address: '127.0.0.2', preference: 10 },
      { host: 'mx2.example.net', address: '127.0.0.3', preference: 20 },
      { host: 'mx2.example.net', address: '2001:db8::25', preference: 20 },
    ],
  });
});

test('equal preferences are shuffled by the injected random, others keep their order', async () => {
  // random() close to 1 swaps nothing: DNS order within each preference.
  const kept = hostsOf(await routeFor('shuffle.example', resolver, { random: () => 0.999 }));
  assert.deepEqual(kept, ['a1', 'a2', 'a3', 'c', 'd'].map((h) => `${h}.shuffle.example`));
  // random() = 0 always swaps with the first: [a1,a2,a3] -> [a3,a2,a1] -> [a2,a3,a1].
  const swapped = hostsOf(await routeFor('shuffle.example', resolver, { random: () => 0 }));
  assert.deepEqual(swapped, ['a2', 'a3', 'a1', 'c', 'd'].map((h) => `${h}.shuffle.example`));
  // With Math.random, the preference-10 hosts always come first, in some order.
  for (let i = 0; i < 5; i++) {
    const hosts = hostsOf(await routeFor('shuffle.example', resolver));
    assert.deepEqual(hosts.slice(0, 3).sort(), ['a1', 'a2', 'a3'].map((h) => `${h}.shuffle.example`));
    assert.deepEqual(hosts.slice(3), ['c.shuffle.example', 'd.shuffle.example']);
  }
});

test('Null MX is a permanent 5.1.10', async () => {
  const route = await routeFor('null.example', resolver);
  assert.equal(route.kind, 'permanent');
  assert.equal(route.kind === 'permanent' && route.status, '5.1.10');
  const rootOnly = await routeFor('rootonly.example', resolver);
  assert.equal(rootOnly.kind === 'permanent' && rootOnly.status, '5.1.10');
});

test('NXDOMAIN is a permanent 5.1.2', async () => {
  const route = await routeFor('gone.example', resolver);
  assert.deepEqual(
    { kind: route.kind, status: route.kind !== 'deliver' && route.status },
    { kind: 'permanent', status: '5.1.2' },
  );
});

test('no MX records: the implicit MX is the domain itself, preference 0', async () => {
  const route = await routeFor('implicit.example', resolver);
  assert.deepEqual(route, {
    kind: 'deliver',
    destinations: [
      { host: 'implicit.example', address: '127.0.0.9', preference: 0 },
      { host: 'implicit.example', address: '::1', preference: 0 },
    ],
  });
  // No MX and no address either: nowhere to go, and the DNS said so.
  const none = await routeFor('empty.example', resolver);
  assert.equal(none.kind === 'permanent' && none.status, '5.4.4');
});

test('SERVFAIL and timeout are temporary 4.4.3', async () => {
  const failed = await routeFor('broken.example', resolver);
  assert.deepEqual({ kind: failed.kind, status: failed.kind !== 'deliver' && failed.status }, { kind: 'temporary', status: '4.4.3' });
  const slow = await routeFor('slow.example', resolver);
  assert.deepEqual({ kind: slow.kind, status: slow.kind !== 'deliver' && slow.status }, { kind: 'temporary', status: '4.4.3' });
  assert.match(slow.kind === 'temporary' ? slow.reason : '', /ETIMEOUT/);
});

test('address literals go straight to the address, without DNS', async () => {
  assert.deepEqual(await routeFor('[192.0.2.1]', noDns), {
    kind: 'deliver',
    destinations: [{ host: '[192.0.2.1]', address: '192.0.2.1', preference: 0 }],
  });
  assert.deepEqual(await routeFor('[IPv6:2001:db8::1]', noDns), {
    kind: 'deliver',
    destinations: [{ host: '[IPv6:2001:db8::1]', address: '2001:db8::1', preference: 0 }],
  });
  for (const bad of ['[192.0.2.300]', '[2001:db8::1]', '[IPv6:192.0.2.1]', '[example.net]', '[192.0.2.1']) {
    const route = await routeFor(bad, noDns);
    assert.equal(route.kind === 'permanent' && route.status, '5.1.3', bad);
  }
});

test('MX hosts without an address are skipped', async () => {
  // missing.example does not exist, flaky.example fails: mx1 is what is left.
  assert.deepEqual(await routeFor('partial.example', resolver), {
    kind: 'deliver',
    destinations: [{ host: 'mx1.example.net', address: '127.0.0.2', preference: 20 }],
  });
});

test('no MX host with an address: temporary if any may come back, else permanent', async () => {
  const flaky = await routeFor('allflaky.example', resolver);
  assert.equal(flaky.kind, 'temporary');
  assert.match(flaky.kind === 'temporary' ? flaky.reason : '', /flaky\.example: A: ESERVFAIL/);
  const missing = await routeFor('allmissing.example', resolver);
  assert.equal(missing.kind === 'permanent' && missing.status, '5.4.4');
});

test('IPv4 then IPv6 for each host; AAAA failures do not hide the A records', async () => {
  const dual = await routeFor('dual.example', resolver);
  assert.deepEqual(dual.kind === 'deliver' && dual.destinations.map((d) => d.address), ['127.0.0.4', '127.0.0.5', '::1', '2001:db8::26']);
  assert.deepEqual(await routeFor('half.example', resolver), {
    kind: 'deliver',
    destinations: [{ host: 'half.mx.example', address: '127.0.0.6', preference: 10 }],
  });
});

test('an MX name that is an IP address is used as that address', async () => {
  const before = server.queries.length;
  assert.deepEqual(await routeFor('numeric.example', resolver), {
    kind: 'deliver',
    destinations: [{ host: '127.0.0.7', address: '127.0.0.7', preference: 10 }],
  });
  assert.deepEqual(server.queries.slice(before), [{ name: 'numeric.example', type: 'MX' }], 'no A lookup of 127.0.0.7');
});

test('destinations are capped (default 10) and an address appears once', async () => {
  const before = server.queries.length;
  assert.equal(hostsOf(await routeFor('many.example', resolver)).length, 10);
  // MX + A + AAAA for the first 10 hosts only.
  assert.equal(server.queries.length - before, 1 + 2 * 10);
  assert.deepEqual(hostsOf(await routeFor('many.example', resolver, { maxHosts: 3 })), ['h0.many.example', 'h1.many.example', 'h2.many.example']);
  assert.deepEqual(hostsOf(await routeFor('twice.example', resolver)), ['mx1.example.net']);
});

test('domain names are matched without case or trailing dot', async () => {
  assert.deepEqual(hostsOf(await routeFor('Example.NET.', resolver)), ['mx1.example.net', 'mx2.example.net', 'mx2.example.net']);
  assert.equal((await routeFor('', noDns)).kind, 'permanent');
});

test('createResolver talks to the given server', async () => {
  const own = createResolver([`127.0.0.1:${server.port}`], 300);
  assert.deepEqual(hostsOf(await routeFor('example.net', own)), ['mx1.example.net', 'mx2.example.net', 'mx2.example.net']);
});
