// Patch 007 (strict-public-key-type): an OpenSSH public key line names its type twice,
// as the label and as the first string of the base64 blob. Stock ssh2 only checked that
// the blob's type starts with the label's base type, so a certificate labelled as a plain
// key parsed "fine", with the certificate's random nonce taken as the public key.
// Keys and certificates come from the real ssh-keygen.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';

const { parseKey } = ssh2.utils;

const dir = mkdtempSync(join(tmpdir(), 'postern-key-type-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const keygen = (...args: string[]): void => { execFileSync('ssh-keygen', ['-q', ...args], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] }); };
keygen('-t', 'ed25519', '-N', '', '-C', 'ca', '-f', 'ca');

/** A key pair and its certificate (made once per type), as `[type, base64]` of their .pub lines. */
function certifiedKey(type: 'ed25519' | 'ecdsa' | 'rsa'): { key: string[]; cert: string[] } {
  const fields = (file: string): string[] => readFileSync(join(dir, file), 'utf8').trim().split(/\s+/).slice(0, 2);
  try {
    return { key: fields(`${type}.pub`), cert: fields(`${type}-cert.pub`) };
  } catch {
    keygen('-t', type, ...(type === 'rsa' ? ['-b', '1024'] : []), '-N', '', '-C', type, '-f', type);
    keygen('-s', 'ca', '-I', type, '-n', 'alice', '-V', '+1h', `${type}.pub`);
    return { key: fields(`${type}.pub`), cert: fields(`${type}-cert.pub`) };
  }
}

for (const type of ['ed25519', 'ecdsa', 'rsa'] as const) {
  test(`${type}: a certificate labelled as the plain key type is refused, and the other way round`, () => {
    const { key, cert } = certifiedKey(type);
    const asKey = parseKey(`${key[0]} ${cert[1]}`);
    assert.ok(asKey instanceof Error, 'certificate blob under the plain label');
    assert.equal(asKey.message, 'Malformed OpenSSH public key');
    assert.ok(parseKey(`${cert[0]} ${key[1]}`) instanceof Error, 'plain blob under the certificate label');
  });

  test(`${type}: the key and its certificate under their own labels still parse`, () => {
    const { key, cert } = certifiedKey(type);
    for (const [label, blob] of [key, cert]) {
      const parsed = parseKey(`${label} ${blob} comment`);
      assert.ok(!(parsed instanceof Error) && !Array.isArray(parsed), `${label}: ${parsed instanceof Error ? parsed.message : 'a list of keys'}`);
      assert.equal(parsed.type, label);
      assert.deepEqual(parsed.getPublicSSH(), Buffer.from(blob, 'base64'));
    }
  });
}
