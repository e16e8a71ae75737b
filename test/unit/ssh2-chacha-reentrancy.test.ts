/**
 * Regression: ssh2's JavaScript chacha20-poly1305 kept its nonce in one buffer shared by
 * every connection. In recording proxy mode an inner SSH connection's output is written
 * into an outer connection's channel from inside encrypt(), so the outer connection
 * encrypted a packet half-way through the inner one's and overwrote its nonce: OpenSSH
 * clients of `ssh -J` saw "incomplete message" on machines without ssh2's native binding.
 * The patch gives each cipher and decipher its own nonce.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';

const require = createRequire(import.meta.url);
interface Cipher { allocPacket(n: number): Buffer; encrypt(p: Buffer): void }
interface Decipher { decrypt(data: Buffer, p: number, len: number): unknown }
const sshCrypto = require('ssh2/lib/protocol/crypto.js') as {
  init: Promise<void>;
  CIPHER_INFO: Record<string, unknown>;
  createCipher(c: unknown): Cipher;
  createDecipher(c: unknown): Decipher;
};

test('a chacha20-poly1305 packet stays valid when another connection encrypts from inside its write (JavaScript ciphers)', async () => {
  await sshCrypto.init;
  const info = sshCrypto.CIPHER_INFO['chacha20-poly1305@openssh.com'];
  const [keyInner, keyOuter] = [randomBytes(64), randomBytes(64)];
  const wire: Buffer[] = [];
  const outer = sshCrypto.createCipher({ outbound: { onWrite: () => {}, cipherInfo: info, cipherKey: keyOuter, seqno: 1000, forceNative: true } });
  // The inner connection's output goes into the outer connection, which encrypts at once.
  const inner = sshCrypto.createCipher({
    outbound: {
      onWrite: (d: Buffer) => { wire.push(Buffer.from(d)); const p = outer.allocPacket(16); outer.encrypt(p); },
      cipherInfo: info, cipherKey: keyInner, seqno: 7, forceNative: true,
    },
  });
  const payload = randomBytes(300);
  const packet = inner.allocPacket(payload.length);
  payload.copy(packet, 5);
  inner.encrypt(packet);

  const got: Buffer[] = [];
  const decipher = sshCrypto.createDecipher({
    inbound: { onPayload: (p: Buffer) => { got.push(Buffer.from(p)); }, decipherInfo: info, decipherKey: keyInner, seqno: 7, forceNative: true },
  });
  const data = Buffer.concat(wire);
  decipher.decrypt(data, 0, data.length);
  assert.equal(got.length, 1, 'the packet authenticates and decrypts');
  assert.deepEqual(got[0], payload);
});
