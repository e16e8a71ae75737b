import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateSummary, formatCertificate, parseCertificate, signCertificate, verifyCertificate,
} from '../../src/ssh/certs.ts';
import type { CertificateRequest, SshCertificate } from '../../src/ssh/certs.ts';
import { fingerprintSha256, generateKeyPair, parseAuthorizedKey, parsePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import { CertificateError, ValidationError } from '../../src/core/errors.ts';

let dir: string;
let n = 0;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-ssh-certs-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function keygen(...args: string[]): string {
  // TZ=UTC so "Valid: from … to …" prints in UTC.
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Makes a key with ssh-keygen; returns its path and public key wire. */
function makeKey(type: string, bits?: number): { path: string; wire: Buffer } {
  const path = join(dir, `key-${n++}`);
  keygen('-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', '', '-f', path);
  return { path, wire: parseAuthorizedKey(readFileSync(`${path}.pub`, 'utf8')).wire };
}

interface Listing { fields: Record<string, string>; lists: Record<string, string[]> }

/** Runs `ssh-keygen -L` on a certificate line and splits what it prints into fields and lists. */
function listCert(line: string): Listing {
  const path = join(dir, `cert-${n++}-cert.pub`);
  writeFileSync(path, `${line}\n`);
  const fields: Record<string, string> = {};
  const lists: Record<string, string[]> = {};
  let current = '';
  for (const text of keygen('-L', '-f', path).split('\n').slice(1)) {
    const item = /^ {16}(.*)$/.exec(text);
    if (item) {
      lists[current].push(item[1]);
      continue;
    }
    const field = /^ {8}([^:]+): ?(.*)$/.exec(text);
    if (field) {
      current = field[1];
      fields[current] = field[2];
      lists[current] = [];
    }
  }
  return { fields, lists };
}

function certPath(cert: SshCertificate): string {
  const path = join(dir, `cert-${n++}-cert.pub`);
  writeFileSync(path, `${formatCertificate(cert)}\n`);
  return path;
}

const NOW = new Date('2030-05-06T07:08:09.500Z');
const ca = generateKeyPair();

function request(overrides: Partial<CertificateRequest> = {}): CertificateRequest {
  return {
    type: 'user', subjectPublicKey: generateKeyPair().publicWire, keyId: 'alice', principals: ['alice', 'root'],
    ttlMs: 2 * 3600_000, now: NOW, serial: 42n, ...overrides,
  };
}

function codeOf(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CertificateError, `expected a CertificateError, got ${String(err)}`);
    return err.code;
  }
  assert.fail('expected an error');
}

const SUBJECTS = [
  { name: 'ed25519 (ours)', wire: () => generateKeyPair().publicWire, label: 'ED25519-CERT', certType: 'ssh-ed25519-cert-v01@openssh.com' },
  { name: 'ecdsa p256 (ssh-keygen)', wire: () => makeKey('ecdsa', 256).wire, label: 'ECDSA-CERT', certType: 'ecdsa-sha2-nistp256-cert-v01@openssh.com' },
  { name: 'ecdsa p384 (ssh-keygen)', wire: () => makeKey('ecdsa', 384).wire, label: 'ECDSA-CERT', certType: 'ecdsa-sha2-nistp384-cert-v01@openssh.com' },
  { name: 'rsa (ssh-keygen)', wire: () => makeKey('rsa', 2048).wire, label: 'RSA-CERT', certType: 'ssh-rsa-cert-v01@openssh.com' },
];

for (const subject of SUBJECTS) {
  for (const type of ['user', 'host'] as const) {
    test(`ssh-keygen -L reads a ${type} certificate we sign for an ${subject.name} key`, () => {
      const wire = subject.wire();
      const cert = signCertificate(ca, request({
        type, subjectPublicKey: wire, keyId: `id-${type}`, principals: type === 'user' ? ['alice', 'root'] : ['node1.example.com', '10.0.0.5'],
        serial: 18_446_744_073_709_551_615n,
        ...(type === 'user' ? { criticalOptions: { 'source-address': '10.0.0.0/8,127.0.0.1/32', 'force-command': '/bin/true' } } : {}),
      }));
      assert.equal(cert.certType, subject.certType);
      const { fields, lists } = listCert(formatCertificate(cert, 'comment'));
      assert.equal(fields.Type, `${subject.certType} ${type} certificate`);
      assert.equal(fields['Public key'], `${subject.label} ${fingerprintSha256(wire)}`);
      // A certificate's fingerprint is its key's, in ssh-keygen -l as in ssh-keygen -L.
      assert.equal(fingerprintSha256(cert.raw), fingerprintSha256(wire));
      assert.equal(keygen('-l', '-f', certPath(cert)).split(' ')[1], fingerprintSha256(cert.raw));
      assert.equal(fields['Signing CA'], `ED25519 ${fingerprintSha256(ca.publicWire)} (using ssh-ed25519)`);
      assert.equal(fields['Key ID'], `"id-${type}"`);
      assert.equal(fields.Serial, '18446744073709551615');
      // Valid from one minute before now (clock skew) to now + ttl, in whole seconds.
      assert.equal(fields.Valid, 'from 2030-05-06T07:07:09 to 2030-05-06T09:08:09');
      if (type === 'user') {
        assert.deepEqual(lists.Principals, ['alice', 'root']);
        assert.deepEqual(lists['Critical Options'], ['force-command /bin/true', 'source-address 10.0.0.0/8,127.0.0.1/32']);
        assert.deepEqual(lists.Extensions, ['permit-X11-forwarding', 'permit-agent-forwarding', 'permit-port-forwarding', 'permit-pty', 'permit-user-rc']);
      } else {
        assert.deepEqual(lists.Principals, ['node1.example.com', '10.0.0.5']);
        assert.equal(fields['Critical Options'], '(none)');
        assert.equal(fields.Extensions, '(none)');
      }
      verifyCertificate(cert, { caPublicKeys: [ca.publicWire], now: NOW, type, principal: cert.principals[0] });
    });
  }
}

test('option values are a string inside a string, empty values are empty, names are sorted', () => {
  const cert = signCertificate(ca, request({
    criticalOptions: { 'verify-required': '', 'force-command': 'echo hi' },
    extensions: { 'permit-pty': '', 'login@github.com': 'alice' },
  }));
  const { lists } = listCert(formatCertificate(cert));
  assert.deepEqual(lists['Critical Options'], ['force-command echo hi', 'verify-required']);
  // ssh-keygen dumps unknown extension data raw: uint32 5 then "alice" proves the inner string.
  assert.deepEqual(lists.Extensions, ['login@github.com UNKNOWN OPTION: 00000005616c696365 (len 9)', 'permit-pty']);
  assert.deepEqual(parseCertificate(formatCertificate(cert)).extensions, { 'login@github.com': 'alice', 'permit-pty': '' });
});

test('explicit empty extensions give a user certificate none', () => {
  const { fields } = listCert(formatCertificate(signCertificate(ca, request({ extensions: {} }))));
  assert.equal(fields.Extensions, '(none)');
});

test('validity is derived from now and the ttl', () => {
  const cert = signCertificate(ca, request({ ttlMs: 12 * 3600_000 }));
  assert.equal(cert.validAfter.toISOString(), '2030-05-06T07:07:09.000Z');
  assert.equal(cert.validBefore.toISOString(), '2030-05-06T19:08:09.000Z');
  assert.equal(cert.nonce.length, 32);
  const again = signCertificate(ca, request());
  assert.ok(!again.nonce.equals(cert.nonce), 'each certificate has a fresh nonce');
});

test('a certificate round-trips through formatCertificate and parseCertificate', () => {
  const cert = signCertificate(ca, request({ criticalOptions: { 'force-command': 'id' } }));
  const back = parseCertificate(formatCertificate(cert, 'alice@cluster'));
  assert.deepEqual(back, cert);
  assert.deepEqual(parseCertificate(cert.raw), cert);
});

test('a certificate signed by ssh-keygen parses with the same fields and verifies', () => {
  const caKey = makeKey('ed25519');
  const user = makeKey('ed25519');
  keygen('-q', '-s', caKey.path, '-I', 'bob@example', '-n', 'bob,admin', '-V', '+1h', '-z', '77', '-O', 'force-command=/usr/bin/id', `${user.path}.pub`);
  const line = readFileSync(`${user.path}-cert.pub`, 'utf8');
  const cert = parseCertificate(line);
  const { fields, lists } = listCert(line.trim());
  assert.equal(cert.type, 'user');
  assert.equal(cert.keyId, 'bob@example');
  assert.equal(`"${cert.keyId}"`, fields['Key ID']);
  assert.equal(cert.serial, 77n);
  assert.deepEqual(cert.principals, ['bob', 'admin']);
  assert.deepEqual(cert.principals, lists.Principals);
  assert.deepEqual(cert.criticalOptions, { 'force-command': '/usr/bin/id' });
  assert.deepEqual(Object.keys(cert.extensions), lists.Extensions);
  assert.equal(fields.Valid, `from ${cert.validAfter.toISOString().slice(0, 19)} to ${cert.validBefore.toISOString().slice(0, 19)}`);
  assert.ok(cert.subjectPublicKey.equals(user.wire));
  assert.ok(cert.signatureKey.equals(caKey.wire));
  verifyCertificate(cert, { caPublicKeys: [ca.publicWire, caKey.wire], type: 'user', principal: 'admin' });
  assert.equal(formatCertificate(cert, ''), line.trim().split(' ').slice(0, 2).join(' '));
});

test('host certificates signed by ssh-keygen with ecdsa and rsa CAs verify', () => {
  for (const [type, bits] of [['ecdsa', 384], ['ecdsa', 521], ['rsa', 2048], ['ed25519', 0]] as const) {
    const caKey = makeKey(type, bits || undefined);
    const host = makeKey('ed25519');
    keygen('-q', '-s', caKey.path, '-I', 'node1', '-h', '-n', 'node1,node1.example.com', `${host.path}.pub`);
    const cert = parseCertificate(readFileSync(`${host.path}-cert.pub`, 'utf8'));
    assert.equal(cert.type, 'host');
    assert.equal(cert.validBeforeSeconds, (1n << 64n) - 1n, 'no -V means valid forever');
    verifyCertificate(cert, { caPublicKeys: [caKey.wire], type: 'host', principal: 'node1.example.com' });
    assert.match(certificateSummary(cert), /Valid: from always to forever/);
    const tampered = parseCertificate(Buffer.from(cert.raw).fill(0x41, cert.raw.indexOf('node1.example.com'), cert.raw.indexOf('node1.example.com') + 1));
    assert.equal(codeOf(() => verifyCertificate(tampered, { caPublicKeys: [caKey.wire] })), 'ERR_POSTERN_CERT_BAD_SIGNATURE', `${type} CA`);
  }
});

test('each failed check has its own error code', () => {
  const caKey = makeKey('ed25519');
  const user = makeKey('ed25519');
  keygen('-q', '-s', caKey.path, '-I', 'carol', '-n', 'carol,ops', '-V', '+1h', `${user.path}.pub`);
  const line = readFileSync(`${user.path}-cert.pub`, 'utf8');
  const cert = parseCertificate(line);
  const trust = { caPublicKeys: [caKey.wire] };
  verifyCertificate(cert, { ...trust, type: 'user', principal: 'ops' });

  // Flip one byte of the key id: still parses, but the CA's signature no longer covers it.
  const raw = Buffer.from(cert.raw);
  raw[raw.indexOf('carol')] ^= 0x20;
  const tampered = parseCertificate(raw);
  assert.equal(tampered.keyId, 'Carol');

  const expiredLine = (() => {
    keygen('-q', '-s', caKey.path, '-I', 'old', '-n', 'carol', '-V', '20200101:20200102', `${user.path}.pub`);
    return readFileSync(`${user.path}-cert.pub`, 'utf8');
  })();
  const codes = {
    tampered: codeOf(() => verifyCertificate(tampered, trust)),
    otherCa: codeOf(() => verifyCertificate(cert, { caPublicKeys: [ca.publicWire, makeKey('ed25519').wire] })),
    expiredByClock: codeOf(() => verifyCertificate(cert, { ...trust, now: new Date(cert.validBefore.getTime() + 1000) })),
    expiredRange: codeOf(() => verifyCertificate(parseCertificate(expiredLine), trust)),
    notYetValid: codeOf(() => verifyCertificate(cert, { ...trust, now: new Date(cert.validAfter.getTime() - 1000) })),
    wrongType: codeOf(() => verifyCertificate(cert, { ...trust, type: 'host' })),
    principal: codeOf(() => verifyCertificate(cert, { ...trust, principal: 'root' })),
  };
  assert.deepEqual(codes, {
    tampered: 'ERR_POSTERN_CERT_BAD_SIGNATURE',
    otherCa: 'ERR_POSTERN_CERT_UNKNOWN_CA',
    expiredByClock: 'ERR_POSTERN_CERT_EXPIRED',
    expiredRange: 'ERR_POSTERN_CERT_EXPIRED',
    notYetValid: 'ERR_POSTERN_CERT_NOT_YET_VALID',
    wrongType: 'ERR_POSTERN_CERT_WRONG_TYPE',
    principal: 'ERR_POSTERN_CERT_PRINCIPAL',
  });
  // The last valid second passes; the first second at validBefore is expired, as in OpenSSH.
  verifyCertificate(cert, { ...trust, now: new Date(cert.validBefore.getTime() - 1) });
  verifyCertificate(cert, { ...trust, now: cert.validAfter });
  assert.equal(codeOf(() => verifyCertificate(cert, { ...trust, now: cert.validBefore })), 'ERR_POSTERN_CERT_EXPIRED');
  assert.throws(() => verifyCertificate(parseCertificate(expiredLine), trust), {
    message: 'certificate expired at 2020-01-02T00:00:00.000Z',
  });
  assert.throws(() => verifyCertificate(cert, { ...trust, principal: 'root' }), {
    message: 'certificate is not valid for principal "root" (it lists: carol, ops)',
  });
  assert.throws(() => verifyCertificate(cert, { ...trust, type: 'host' }), {
    message: 'certificate is a user certificate, not a host certificate',
  });
});

test('signCertificate checks the request on entry', () => {
  const cases: [string, Partial<CertificateRequest>][] = [
    ['empty key id', { keyId: '' }],
    ['zero ttl', { ttlMs: 0 }],
    ['negative ttl', { ttlMs: -5 }],
    ['NaN ttl', { ttlMs: Number.NaN }],
    ['user without principals', { principals: [] }],
    ['duplicate principal', { principals: ['a', 'b', 'a'] }],
    ['empty principal', { principals: ['a', ''] }],
    ['control character in principal', { principals: ['a\nb'] }],
    ['control character in key id', { keyId: 'x\u001b[31m' }],
    ['control character in an option', { criticalOptions: { 'force-command': 'a\u0000b' } }],
    ['critical option on a host certificate', { type: 'host', criticalOptions: { 'force-command': 'x' } }],
    ['serial out of range', { serial: 1n << 64n }],
    ['a certificate as the subject key', { subjectPublicKey: signCertificate(ca, request()).raw }],
    ['garbage subject key', { subjectPublicKey: Buffer.from('nope') }],
  ];
  for (const [what, overrides] of cases) {
    assert.throws(() => signCertificate(ca, request(overrides)), (err: unknown) => err instanceof ValidationError && err.code === 'ERR_POSTERN_INVALID', what);
  }
  // A host certificate may leave principals empty (valid for any host name, as ssh-keygen allows).
  assert.equal(signCertificate(ca, request({ type: 'host', principals: [] })).principals.length, 0);
});

test('parseCertificate rejects trailing data, truncation and plain keys', () => {
  const cert: SshCertificate = signCertificate(ca, request());
  assert.equal(codeOf(() => parseCertificate(Buffer.concat([cert.raw, Buffer.of(0)]))), 'ERR_POSTERN_CERT_MALFORMED');
  assert.equal(codeOf(() => parseCertificate(cert.raw.subarray(0, cert.raw.length - 10))), 'ERR_POSTERN_CERT_MALFORMED');
  assert.equal(codeOf(() => parseCertificate(`ssh-ed25519 ${ca.publicWire.toString('base64')}`)), 'ERR_POSTERN_CERT_MALFORMED');
  assert.equal(codeOf(() => parseCertificate('ssh-ed25519-cert-v01@openssh.com AAAA')), 'ERR_POSTERN_CERT_MALFORMED');
});

test('certificateSummary escapes control characters that came inside a certificate', () => {
  const cert = signCertificate(ca, request({ keyId: 'evilXid' }));
  const raw = Buffer.from(cert.raw);
  raw[raw.indexOf('evilXid') + 4] = 0x1b;
  const summary = certificateSummary(parseCertificate(raw));
  assert.ok(!summary.includes('\u001b'));
  assert.match(summary, /Key ID: "evil\\x1bid"/);
  assert.match(summary, /Principals: alice, root/);
  assert.match(summary, new RegExp(`Signing CA: ssh-ed25519 ${fingerprintSha256(ca.publicWire).replace(/[+/]/g, '\\$&')}`));
});

test('a CA key stored as an OpenSSH private key signs certificates ssh-keygen accepts', () => {
  const caKey = makeKey('ed25519');
  const pair = parsePrivateKeyOpenSSH(readFileSync(caKey.path, 'utf8'));
  const cert = signCertificate(pair, request());
  const { fields } = listCert(formatCertificate(cert));
  assert.equal(fields['Signing CA'], `ED25519 ${fingerprintSha256(caKey.wire)} (using ssh-ed25519)`);
  verifyCertificate(cert, { caPublicKeys: [caKey.wire], now: NOW });
});
