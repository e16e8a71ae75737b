/** Password hashing, TOTP against RFC 6238's vectors, settings and serve config checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashPassword, verifyPassword, checkPasswordPolicy, DUMMY_HASH, dummyHash, scryptCostFromEnv, DEFAULT_SCRYPT_LOG2N, TEST_SCRYPT_LOG2N_ENV } from '../../src/auth/passwords.ts';
import { checkTotp, totpCode, newTotpSecret, normaliseTotpSecret, totpUri } from '../../src/auth/totp.ts';
import { validateSettings } from '../../src/auth/settings.ts';
import { resolveServeConfig } from '../../src/cli/commands/serve-config.ts';

test('scrypt hashes verify, differ by salt, and refuse the wrong password', async () => {
  const h1 = await hashPassword('correct horse battery staple');
  const h2 = await hashPassword('correct horse battery staple');
  assert.notEqual(h1, h2);
  assert.match(h1, /^scrypt\$32768\$8\$1\$/);
  assert.ok(await verifyPassword('correct horse battery staple', h1));
  assert.ok(!(await verifyPassword('correct horse battery stapl', h1)));
  assert.ok(!(await verifyPassword('anything', DUMMY_HASH)));
  assert.ok(!(await verifyPassword('x', 'plain$garbage')));
  assert.throws(() => checkPasswordPolicy('short'), /at least 12 characters/);
  checkPasswordPolicy('twelve chars');
});

test('a test suite may lower the scrypt cost to the floor and no further; unset means the production default', async () => {
  const cheap = await hashPassword('correct horse battery staple', 10);
  assert.match(cheap, /^scrypt\$1024\$8\$1\$/);
  assert.ok(await verifyPassword('correct horse battery staple', cheap));
  assert.ok(!(await verifyPassword('anything', dummyHash(10))));
  await assert.rejects(hashPassword('correct horse battery staple', 9), RangeError);
  await assert.rejects(hashPassword('correct horse battery staple', 16), RangeError, 'never above the default either');
  assert.equal(DEFAULT_SCRYPT_LOG2N, 15);
  assert.equal(dummyHash(), DUMMY_HASH);
  assert.equal(scryptCostFromEnv({}), 15);
  assert.equal(scryptCostFromEnv({ [TEST_SCRYPT_LOG2N_ENV]: '' }), 15);
  assert.equal(scryptCostFromEnv({ [TEST_SCRYPT_LOG2N_ENV]: '10' }), 10);
  for (const bad of ['9', '16', '12.5', 'low', '-1']) {
    assert.throws(() => scryptCostFromEnv({ [TEST_SCRYPT_LOG2N_ENV]: bad }), (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_CONFIG' && e.message.includes(TEST_SCRYPT_LOG2N_ENV), bad);
  }
});

test('TOTP matches RFC 6238 SHA-1 vectors (6 digits) and allows one step either side', () => {
  // RFC 6238 appendix B, secret "12345678901234567890" (base32 below), last 6 digits.
  const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
  assert.equal(totpCode(secret, new Date(59_000)), '287082');
  assert.equal(totpCode(secret, new Date(1_111_111_109_000)), '081804');
  assert.equal(totpCode(secret, new Date(2_000_000_000_000)), '279037');
  const t = new Date(1_111_111_109_000);
  assert.equal(checkTotp(secret, '081804', t), Math.floor(1_111_111_109 / 30));
  assert.equal(checkTotp(secret, '081804', new Date(t.getTime() + 30_000)), Math.floor(1_111_111_109 / 30), 'one step late is fine');
  assert.equal(checkTotp(secret, '081804', new Date(t.getTime() + 61_000)), undefined, 'two steps late is not');
  assert.equal(checkTotp(secret, 'abcdef', t), undefined);
});

test('our TOTP agrees with oathtool for a fresh secret', () => {
  const secret = newTotpSecret();
  assert.equal(secret.length, 32);
  const now = new Date();
  const fromOath = execFileSync('oathtool', ['--totp', '-b', secret, '--now', `@${Math.floor(now.getTime() / 1000)}`]).toString().trim();
  assert.equal(totpCode(secret, now), fromOath);
  assert.match(totpUri(secret, 'example.com', 'alice'), /^otpauth:\/\/totp\/example\.com:alice\?.*secret=/);
  assert.throws(() => normaliseTotpSecret('not base32!'), /invalid TOTP secret/);
  assert.equal(normaliseTotpSecret('jbsw y3dp ehpk 3pxp'), 'JBSWY3DPEHPK3PXP');
});

test('cluster settings are checked by name and value', () => {
  assert.deepEqual(validateSettings({ second_factor: 'off' }), { second_factor: 'off' });
  assert.throws(() => validateSettings({ second_factor: 'sms' as 'otp' }), /second_factor must be "otp" or "off"/);
  assert.throws(() => validateSettings({ nonsense: 1 } as never), /unknown cluster setting "nonsense"/);
  assert.deepEqual(validateSettings({ allow_unregistered: ['*.lab', '10.0.0.0/8', 'fd00::/8'] }), { allow_unregistered: ['*.lab', '10.0.0.0/8', 'fd00::/8'] });
  assert.throws(() => validateSettings({ allow_unregistered: ['10.0.0.0/33'] }), /"10\.0\.0\.0\/33" is not a valid CIDR/);
  assert.throws(() => validateSettings({ allow_unregistered: ['host/8'] }), /not a valid CIDR/);
});

test('serve config: YAML file, flags win, defaults, and clear errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const file = join(dir, 'postern.yaml');
  writeFileSync(file, 'web_addr: 127.0.0.1:4080\ncluster_name: from-file\ncluster:\n  second_factor: off\n  max_session_ttl: 8h\n  lockout: { attempts: 3 }\n');
  const cfg = resolveServeConfig({ config: file, clusterName: 'from-flag' }, '/data');
  assert.deepEqual(cfg.webAddr, { host: '127.0.0.1', port: 4080 });
  assert.equal(cfg.clusterName, 'from-flag');
  assert.deepEqual(cfg.sshAddr, { host: '0.0.0.0', port: 3023 });
  assert.deepEqual(cfg.authAddr, { host: '127.0.0.1', port: 3025 });
  assert.deepEqual(cfg.settings, { second_factor: 'off', max_session_ttl: 8 * 3600_000, lockout_attempts: 3 });
  assert.equal(cfg.dataDir, '/data');
  writeFileSync(file, 'web_adr: 1\n');
  assert.throws(() => resolveServeConfig({ config: file }, '/d'), /unknown key "web_adr"/);
  writeFileSync(file, 'a: [\n');
  assert.throws(() => resolveServeConfig({ config: file }, '/d'), /not valid YAML/);
  assert.throws(() => resolveServeConfig({ config: join(dir, 'missing.yaml') }, '/d'), /cannot read the config file/);
  assert.throws(() => resolveServeConfig({ roles: 'proxy' }, '/d'), /needs --auth-server/);
  assert.throws(() => resolveServeConfig({ webAddr: 'x:70000' }, '/d'), /--web-addr/);
  assert.throws(() => resolveServeConfig({ caPin: 'nope', roles: 'proxy', authServer: 'a:1' }, '/d'), /invalid --ca-pin/);
});
