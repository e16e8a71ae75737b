// Patch 006 (padding-pool): packet padding is copied from a 64 KiB pool of random bytes,
// refilled when used up, instead of one randomFillSync call per packet. RFC 4253 asks
// for random padding; what must hold is that no padding byte is handed out twice and
// that a refill really draws new bytes. Checked through ssh2's JavaScript
// chacha20-poly1305 cipher, whose allocPacket writes the padding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
interface Cipher { allocPacket(payloadLen: number): Buffer }
const sshCrypto = require('ssh2/lib/protocol/crypto.js') as {
  CIPHER_INFO: Record<string, { keyLen: number }>;
  createCipher(config: unknown): Cipher;
};

test('padding across several pool refills: never the same bytes twice, never all zero', () => {
  const info = sshCrypto.CIPHER_INFO['chacha20-poly1305@openssh.com'];
  const cipher = sshCrypto.createCipher({
    outbound: { onWrite: () => {}, cipherInfo: info, cipherKey: Buffer.alloc(info.keyLen), seqno: 0, forceNative: true },
  });
  const seen = new Set<string>();
  let total = 0;
  let packets = 0;
  // 4 (payload) + 1 (padding length) rounds to 11 bytes of padding: ~6000 packets a pool
  while (total < 4 * 64 * 1024) {
    const packet = cipher.allocPacket(4);
    const padLen = packet[4];
    assert.ok(padLen >= 4, `padding of ${padLen} bytes`);
    const padding = packet.subarray(5 + 4, 5 + 4 + padLen);
    assert.ok(padding.some((b) => b !== 0), `packet ${packets}: all-zero padding`);
    const hex = padding.toString('hex');
    assert.ok(!seen.has(hex), `packet ${packets}: padding seen before (${total} bytes in)`);
    seen.add(hex);
    total += padLen;
    packets++;
  }
});
