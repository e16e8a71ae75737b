/**
 * The fuzzing properties of test/fuzz/targets.ts, briefly (POSTERN_FUZZ_RUNS, 300 inputs
 * each by default, a few seconds in all): every parser of outside input answers or throws
 * a PosternError, and encoders round-trip. `npm run fuzz` runs them long.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { TARGETS, closeWebUnderTest } from '../fuzz/targets.ts';

const RUNS = Number(process.env.POSTERN_FUZZ_RUNS ?? 300);

after(() => closeWebUnderTest());
for (const target of TARGETS) {
  test(target.name, () => target.run(RUNS));
}

test('found by fuzzing: a certificate option named __proto__ is kept (so it can be refused as unknown), durations out of range are refused', async () => {
  const { generateKeyPair } = await import('../../src/ssh/keys.ts');
  const { signCertificate, parseCertificate } = await import('../../src/ssh/certs.ts');
  const { parseDuration } = await import('../../src/core/durations.ts');
  const ca = generateKeyPair();
  const criticalOptions = Object.defineProperty({}, '__proto__', { value: 'x', enumerable: true }) as Record<string, string>;
  const cert = signCertificate(ca, { type: 'user', subjectPublicKey: generateKeyPair().publicWire, keyId: 'a', principals: ['p'], ttlMs: 60_000, serial: 1n, criticalOptions });
  const back = parseCertificate(cert.raw);
  assert.ok(Object.hasOwn(back.criticalOptions, '__proto__'));
  assert.deepEqual(Object.keys(back.criticalOptions), ['__proto__']);
  for (const bad of ['0.3ms', '800000000d', `${'9'.repeat(400)}d`]) assert.throws(() => parseDuration(bad), { code: 'ERR_POSTERN_INVALID' }, bad);
  assert.equal(parseDuration('36500d'), 36_500 * 86_400_000);
});
