// The MAIL/RCPT path parser (src/smtp/address.ts): quoted local parts kept
// in their shortest form, as Postfix does, and every address it accepts is
// one the outbound queue can carry (the RCPT and the queue agree).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePathArgument } from '../../src/smtp/address.ts';
import { canQueueAddress } from '../../src/queue/queue-file.ts';

function addressOf(argument: string, utf8 = false): string {
  const parsed = parsePathArgument(argument, 'TO', utf8);
  assert.ok(parsed.ok, `${argument}: ${parsed.ok ? '' : parsed.why}`);
  return parsed.path.address;
}

test('quotes a local part does not need are dropped; needed ones are kept, escapes minimal', () => {
  assert.equal(addressOf('TO:<"jjordan"@Example.NET>'), 'jjordan@example.net');
  assert.equal(addressOf('TO:<"first.last"@example.net>'), 'first.last@example.net');
  assert.equal(addressOf('TO:<"john smith"@example.net>'), '"john smith"@example.net');
  assert.equal(addressOf('TO:<"john\\ smith"@example.net>'), '"john smith"@example.net');
  assert.equal(addressOf('TO:<"say \\"hi\\""@example.net>'), '"say \\"hi\\""@example.net');
  assert.equal(addressOf('TO:<"a..b"@example.net>'), '"a..b"@example.net', 'an empty atom needs the quotes');
  assert.equal(addressOf('TO:<""@example.net>'), '""@example.net');
  const spaced = parsePathArgument('TO:<"john smith"@example.net>', 'TO');
  assert.ok(spaced.ok);
  assert.equal(spaced.path.localPart, '"john smith"');
});

test('every address RCPT accepts fits in a queue file line; what it refuses never reaches it', () => {
  const accepted = [
    'TO:<"john smith"@example.net>',
    'TO:<" leading and trailing "@example.net>',
    'TO:<"back\\\\slash"@example.net>',
    'TO:<"x@y"@[192.0.2.1]>',
    'TO:<user+tag@[IPv6:2001:db8::1]>',
  ];
  for (const argument of accepted) assert.ok(canQueueAddress(addressOf(argument)), argument);
  // With SMTPUTF8 a local part may hold any non-ASCII character, U+2028 (a
  // line separator to some readers, not to the queue's '\n' split) included.
  assert.ok(canQueueAddress(addressOf('TO:<"a\u2028b\u00a0c"@example.net>', true)));
  assert.ok(canQueueAddress(addressOf('TO:<j\u00fcrgen@example.net>', true)));
  for (const bad of ['TO:<"tab\there"@example.net>', 'TO:<"cr\rhere"@example.net>', 'TO:<"nul\0"@example.net>']) {
    assert.equal(parsePathArgument(bad, 'TO').ok, false, JSON.stringify(bad));
  }
});
