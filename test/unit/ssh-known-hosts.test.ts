import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatCertAuthorityLine, formatKnownHostLine, knownHostName } from '../../src/ssh/known-hosts.ts';
import { generateKeyPair } from '../../src/ssh/keys.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-ssh-kh-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const ca = generateKeyPair();
const hostKey = generateKeyPair();

/** Asks `ssh-keygen -F` which line of a known_hosts file matches a host name. */
function lookup(file: string, name: string): { found: boolean; out: string } {
  const r = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
  return { found: r.status === 0 && r.stdout.includes('found'), out: r.stdout };
}

test('formats @cert-authority and host lines as OpenSSH writes them', () => {
  const b64 = ca.publicWire.toString('base64');
  assert.equal(formatCertAuthorityLine(['*.cluster', 'proxy.example.com'], ca.publicWire, 'postern host CA'),
    `@cert-authority *.cluster,proxy.example.com ssh-ed25519 ${b64} postern host CA`);
  assert.equal(formatCertAuthorityLine('*', ca.publicWire), `@cert-authority * ssh-ed25519 ${b64}`);
  assert.equal(formatKnownHostLine('node1', 22, hostKey.publicWire), `node1 ssh-ed25519 ${hostKey.publicWire.toString('base64')}`);
  assert.equal(formatKnownHostLine('node1', 2222, hostKey.publicWire), `[node1]:2222 ssh-ed25519 ${hostKey.publicWire.toString('base64')}`);
  assert.equal(knownHostName('::1', 3023), '[::1]:3023');
});

test('ssh-keygen -F finds hosts through the lines we write', () => {
  const file = join(dir, 'known_hosts');
  writeFileSync(file, [
    formatCertAuthorityLine(['*.cluster', 'proxy.example.com'], ca.publicWire, 'ca'),
    formatKnownHostLine('node1', 2222, hostKey.publicWire),
    formatKnownHostLine('node2', 22, hostKey.publicWire),
    '',
  ].join('\n'));
  const viaCa = lookup(file, 'db.cluster');
  assert.ok(viaCa.found, viaCa.out);
  assert.match(viaCa.out, /found: line 1 CA/);
  assert.ok(lookup(file, 'proxy.example.com').found);
  assert.ok(!lookup(file, 'other.example.com').found);
  assert.match(lookup(file, '[node1]:2222').out, /found: line 2/);
  assert.ok(!lookup(file, 'node1').found, 'the port-2222 entry must not match port 22');
  assert.match(lookup(file, 'node2').out, /found: line 3/);
});

test('patterns with spaces, commas or control characters are refused', () => {
  for (const bad of ['a b', 'a,b', '', 'a\nb']) {
    assert.throws(() => formatCertAuthorityLine([bad], ca.publicWire), { code: 'ERR_POSTERN_INVALID' }, JSON.stringify(bad));
  }
  assert.throws(() => formatCertAuthorityLine([], ca.publicWire), { code: 'ERR_POSTERN_INVALID' });
  assert.throws(() => formatKnownHostLine('h', 0, hostKey.publicWire), { code: 'ERR_POSTERN_INVALID' });
});
