// Tests for the passwd and aliases text formats, without touching disk.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAliases, parsePasswd, setPasswdLine } from '../../src/auth/files.ts';

test('parsePasswd skips comments and blank lines', () => {
  const warnings: string[] = [];
  const map = parsePasswd('# header\n\njjordan:$scrypt$x\n  # indented\nbob:$scrypt$y\n', (m) => warnings.push(m));
  assert.deepEqual([...map], [['jjordan', '$scrypt$x'], ['bob', '$scrypt$y']]);
  assert.deepEqual(warnings, []);
});

test('parsePasswd warns about a repeated account and keeps the later line', () => {
  const warnings: string[] = [];
  const map = parsePasswd('bob:one\nbob:two\n', (m) => warnings.push(m));
  assert.equal(map.get('bob'), 'two');
  assert.match(warnings[0], /line 2: account bob listed twice/);
});

test('parseAliases lowercases and splits targets', () => {
  const warnings: string[] = [];
  const aliases = parseAliases('Info@Example.ORG:  Alice ,bob,\n', (m) => warnings.push(m));
  assert.deepEqual(aliases, [{ lineNo: 1, source: 'info@example.org', targets: ['alice', 'bob'] }]);
  assert.deepEqual(warnings, []);
});

test('parseAliases rejects lines it cannot understand', () => {
  const warnings: string[] = [];
  const bad = ['no colon', ': alice', 'x:', 'a@b@c: alice', '@example.org: alice', 'two words: alice'];
  assert.deepEqual(parseAliases(bad.join('\n'), (m) => warnings.push(m)), []);
  assert.equal(warnings.length, bad.length);
});

test('setPasswdLine appends a new account', () => {
  assert.deepEqual(setPasswdLine('', 'bob', 'H'), { text: 'bob:H\n', replaced: false });
  assert.deepEqual(setPasswdLine('# c\nann:A', 'bob', 'H'), { text: '# c\nann:A\nbob:H\n', replaced: false });
});

test('setPasswdLine replaces in place and drops duplicates', () => {
  const before = 'ann:A\nbob:OLD\n# bob:comment\nbobby:B\nbob:OLDER\n';
  const { text, replaced } = setPasswdLine(before, 'bob', 'NEW');
  assert.equal(replaced, true);
  assert.equal(text, 'ann:A\nbob:NEW\n# bob:comment\nbobby:B\n');
});
