import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodePrivateKeyOpenSSH, fingerprintSha256, formatAuthorizedKey, generateKeyPair, parseAuthorizedKey, parsePrivateKeyOpenSSH,
  publicKeyFromWire, publicKeyToWire, signSsh, verifySsh,
} from '../../src/ssh/keys.ts';
import { SshReader, SshWriter } from '../../src/ssh/wire.ts';
import { CertificateError } from '../../src/core/errors.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'postern-ssh-keys-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function keygen(...args: string[]): string {
  return execFileSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Makes a key with ssh-keygen and returns its private key path. */
function makeKey(name: string, type: string, bits?: number): string {
  const path = join(dir, name);
  keygen('-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', `${name}@test`, '-f', path);
  return path;
}

const KINDS: { name: string; type: string; bits?: number; wireType: string; node: string }[] = [
  { name: 'ed', type: 'ed25519', wireType: 'ssh-ed25519', node: 'ed25519' },
  { name: 'ec256', type: 'ecdsa', bits: 256, wireType: 'ecdsa-sha2-nistp256', node: 'ec' },
  { name: 'ec384', type: 'ecdsa', bits: 384, wireType: 'ecdsa-sha2-nistp384', node: 'ec' },
  { name: 'ec521', type: 'ecdsa', bits: 521, wireType: 'ecdsa-sha2-nistp521', node: 'ec' },
  { name: 'rsa', type: 'rsa', bits: 2048, wireType: 'ssh-rsa', node: 'rsa' },
];

// PROTOCOL.sshsig: what `ssh-keygen -Y sign` signs, and the armoured file it writes.
function sshsigSignedData(namespace: string, message: Buffer): Buffer {
  return new SshWriter().raw(Buffer.from('SSHSIG')).string(namespace).string('').string('sha512')
    .string(createHash('sha512').update(message).digest()).toBuffer();
}

function readSshsig(armored: string): { publicKey: Buffer; signature: Buffer } {
  const body = Buffer.from(armored.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const r = new SshReader(body, 'sshsig');
  assert.equal(r.raw(6).toString(), 'SSHSIG');
  assert.equal(r.uint32(), 1);
  const publicKey = Buffer.from(r.bytes());
  r.string();
  r.string();
  assert.equal(r.string(), 'sha512');
  const signature = Buffer.from(r.bytes());
  r.done();
  return { publicKey, signature };
}

function writeSshsig(publicKey: Buffer, namespace: string, signature: Buffer): string {
  const body = new SshWriter().raw(Buffer.from('SSHSIG')).uint32(1).string(publicKey).string(namespace).string('')
    .string('sha512').string(signature).toBuffer();
  return `-----BEGIN SSH SIGNATURE-----\n${body.toString('base64').replace(/.{1,70}/g, '$&\n')}-----END SSH SIGNATURE-----\n`;
}

test('ssh-keygen -y reads the private key we encode and prints our public key line', () => {
  const pair = generateKeyPair();
  const path = join(dir, 'ours');
  writeFileSync(path, encodePrivateKeyOpenSSH(pair, 'alice@laptop'), { mode: 0o600 });
  assert.equal(keygen('-y', '-f', path).trim(), formatAuthorizedKey(pair.publicWire, 'alice@laptop'));
  // And our own parser reads it back to the same key.
  const back = parsePrivateKeyOpenSSH(readFileSync(path, 'utf8'));
  assert.ok(back.publicWire.equals(pair.publicWire));
  assert.ok(verifySsh(pair.publicWire, Buffer.from('x'), signSsh(back.privateKey, Buffer.from('x'))));
});

test('the encoded private key is padded to 8 bytes whatever the comment length', () => {
  const pair = generateKeyPair();
  for (const comment of ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg']) {
    const path = join(dir, `pad-${comment.length}`);
    writeFileSync(path, encodePrivateKeyOpenSSH(pair, comment), { mode: 0o600 });
    assert.equal(keygen('-y', '-f', path).trim(), formatAuthorizedKey(pair.publicWire, comment), `comment "${comment}"`);
  }
});

test('a private key made by ssh-keygen parses to the key in its .pub file', () => {
  const path = makeKey('kg-ed', 'ed25519');
  const pair = parsePrivateKeyOpenSSH(readFileSync(path, 'utf8'));
  const pub = parseAuthorizedKey(readFileSync(`${path}.pub`, 'utf8'));
  assert.ok(pair.publicWire.equals(pub.wire));
  assert.equal(pub.comment, 'kg-ed@test');
});

test('an encrypted private key is refused with a clear code', () => {
  const path = join(dir, 'encrypted');
  keygen('-q', '-t', 'ed25519', '-N', 'secret', '-f', path);
  assert.throws(() => parsePrivateKeyOpenSSH(readFileSync(path, 'utf8')), (err: unknown) => {
    assert.ok(err instanceof CertificateError);
    assert.equal(err.code, 'ERR_POSTERN_KEY_ENCRYPTED');
    assert.match(err.message, /^the private key is encrypted/);
    return true;
  });
});

test('a private key whose check bytes differ is refused', () => {
  const pem = encodePrivateKeyOpenSSH(generateKeyPair());
  const body = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  // magic 15, "none" 8, "none" 8, "" 4, count 4, public key 4+51, section length 4: the first checkint.
  body[98] ^= 1;
  const broken = `-----BEGIN OPENSSH PRIVATE KEY-----\n${body.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
  assert.throws(() => parsePrivateKeyOpenSSH(broken), /check bytes do not match/);
  assert.throws(() => parsePrivateKeyOpenSSH('hello'), /BEGIN OPENSSH PRIVATE KEY/);
});

for (const kind of KINDS) {
  test(`${kind.wireType}: parse, fingerprint and signatures agree with ssh-keygen`, () => {
    const path = makeKey(`k-${kind.name}`, kind.type, kind.bits);
    const line = readFileSync(`${path}.pub`, 'utf8');
    const parsed = parseAuthorizedKey(line);
    assert.equal(parsed.type, kind.wireType);
    assert.equal(parsed.comment, `k-${kind.name}@test`);
    assert.equal(formatAuthorizedKey(parsed.wire, parsed.comment), line.trim());

    const key = publicKeyFromWire(parsed.wire);
    assert.equal(key.asymmetricKeyType, kind.node);
    assert.ok(publicKeyToWire(key).equals(parsed.wire), 'wire survives a round trip through a KeyObject');

    const printed = keygen('-l', '-E', 'sha256', '-f', `${path}.pub`).split(' ')[1];
    assert.equal(fingerprintSha256(parsed.wire), printed);

    // ssh-keygen -Y sign makes a real signature (ecdsa r/s mpints, rsa-sha2-512) we must accept.
    const message = Buffer.from(`message for ${kind.name}`);
    writeFileSync(join(dir, 'msg'), message);
    keygen('-Y', 'sign', '-f', path, '-n', 'postern-test', join(dir, 'msg'));
    const sig = readSshsig(readFileSync(join(dir, 'msg.sig'), 'utf8'));
    rmSync(join(dir, 'msg.sig'));
    assert.ok(sig.publicKey.equals(parsed.wire));
    assert.equal(verifySsh(parsed.wire, sshsigSignedData('postern-test', message), sig.signature), true);
    assert.equal(verifySsh(parsed.wire, sshsigSignedData('postern-test', Buffer.from('other')), sig.signature), false);
    assert.equal(verifySsh(parsed.wire, sshsigSignedData('other-namespace', message), sig.signature), false);
  });
}

const SIGNERS = [
  { label: 'ED25519', make: () => generateKeyPairSync('ed25519') },
  { label: 'ECDSA', make: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }) },
  { label: 'ECDSA', make: () => generateKeyPairSync('ec', { namedCurve: 'P-384' }) },
  { label: 'ECDSA', make: () => generateKeyPairSync('ec', { namedCurve: 'P-521' }) },
  { label: 'RSA', make: () => generateKeyPairSync('rsa', { modulusLength: 2048 }) },
];

for (const [i, signer] of SIGNERS.entries()) {
  test(`ssh-keygen -Y check-novalidate accepts a signature made by signSsh (${signer.label} #${i})`, () => {
    const { privateKey, publicKey } = signer.make();
    const wire = publicKeyToWire(publicKey);
    const message = Buffer.from('signed by postern');
    const sigFile = join(dir, `ours-${i}.sig`);
    const blob = signSsh(privateKey, sshsigSignedData('file', message));
    assert.equal(verifySsh(wire, sshsigSignedData('file', message), blob), true);
    writeFileSync(sigFile, writeSshsig(wire, 'file', blob));
    const check = (input: Buffer) => spawnSync('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'file', '-s', sigFile], { input, encoding: 'utf8' });
    const good = check(message);
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stdout.trim(), `Good "file" signature with ${signer.label} key ${fingerprintSha256(wire)}`);
    assert.notEqual(check(Buffer.from('tampered')).status, 0);
  });
}

test('rsa-sha2-256 is accepted and SHA-1 ssh-rsa signatures are refused', () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const wire = publicKeyToWire(publicKey);
  const data = Buffer.from('data');
  const blob = (algo: string, hash: string) => new SshWriter().string(algo).string(sign(hash, data, privateKey)).toBuffer();
  assert.equal(verifySsh(wire, data, blob('rsa-sha2-256', 'sha256')), true);
  assert.equal(verifySsh(wire, data, blob('rsa-sha2-512', 'sha512')), true);
  assert.equal(verifySsh(wire, data, blob('rsa-sha2-256', 'sha512')), false);
  assert.equal(verifySsh(wire, data, blob('ssh-rsa', 'sha1')), false);
});

test('a tampered or malformed ed25519 signature is rejected, not thrown', () => {
  const pair = generateKeyPair();
  const data = Buffer.from('payload');
  const sig = signSsh(pair.privateKey, data);
  assert.equal(verifySsh(pair.publicWire, data, sig), true);
  const flipped = Buffer.from(sig);
  flipped[flipped.length - 1] ^= 1;
  assert.equal(verifySsh(pair.publicWire, data, flipped), false);
  assert.equal(verifySsh(pair.publicWire, data, sig.subarray(0, sig.length - 3)), false);
  assert.equal(verifySsh(pair.publicWire, data, new SshWriter().string('ecdsa-sha2-nistp256').string(sig).toBuffer()), false);
  assert.equal(verifySsh(generateKeyPair().publicWire, data, sig), false);
});

test('parseAuthorizedKey refuses lines that lie about their type or are not keys', () => {
  const pair = generateKeyPair();
  const b64 = pair.publicWire.toString('base64');
  assert.throws(() => parseAuthorizedKey(`ssh-rsa ${b64}`), /says ssh-rsa but its data holds ssh-ed25519/);
  assert.throws(() => parseAuthorizedKey('ssh-dss AAAAB3NzaC1kc3MAAACBAP'), { code: 'ERR_POSTERN_KEY_UNSUPPORTED' });
  assert.throws(() => parseAuthorizedKey('garbage'), { code: 'ERR_POSTERN_KEY_INVALID' });
  assert.throws(() => parseAuthorizedKey('ssh-ed25519 !!!'), { code: 'ERR_POSTERN_KEY_INVALID' });
  assert.throws(() => parseAuthorizedKey(`ssh-ed25519 ${pair.publicWire.subarray(0, 30).toString('base64')}`), { code: 'ERR_POSTERN_KEY_INVALID' });
  const parsed = parseAuthorizedKey(`  ${formatAuthorizedKey(pair.publicWire, 'a comment with spaces')}\n`);
  assert.equal(parsed.comment, 'a comment with spaces');
  assert.ok(parsed.wire.equals(pair.publicWire));
});
