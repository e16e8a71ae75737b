/**
 * Web sessions and account changes against a real AuthServer on SQLite, with a clock we move:
 * the same credential checks as loginSsh (one-use TOTP codes, lockout, audit), the session id
 * stored only as its SHA-256, expiry, revocation, the agent's certificate, password change and
 * TOTP re-enrolment.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import { totpCode, newTotpSecret } from '../../src/auth/totp.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';
import { SshReader, SshWriter } from '../../src/ssh/wire.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';

const PASSWORD = 'correct horse battery staple';
let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;
let t = Date.parse('2030-01-01T00:00:00Z');
const clock = { now: () => new Date(t) };
/** Moves the clock one TOTP step on, so the next code is a fresh one. */
const step = (): void => { t += 30_000; };
const secrets = new Map<string, string>();
const code = (user: string): string => totpCode(secrets.get(user)!, new Date(t));

async function signUp(name: string, roles: string[], logins: string[]): Promise<void> {
  const inv = await admin.createUser({ name, logins, roles, inviteTtlMs: 3_600_000 });
  const token = inv.inviteUrl.split('/').pop()!;
  const secret = newTotpSecret();
  secrets.set(name, secret);
  await proxy.acceptInvite({ token, password: PASSWORD, totpSecret: secret, otp: totpCode(secret, new Date(t)), clientAddr: '127.0.0.1' });
  step();
}

async function login(user: string, extra: { password?: string; otp?: string } = {}) {
  step();
  return proxy.createWebSession({ user, password: extra.password ?? PASSWORD, otp: extra.otp ?? code(user), clientAddr: '192.0.2.7' });
}

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-websess-')) });
  const auth = await AuthServer.open({ backend, clock, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  await signUp('alice', ['access'], ['alice', 'root']);
  await signUp('bob', ['access'], ['bob']);
  await signUp('carol', ['access'], ['carol']);
});
after(() => backend.close());

test('a web session: info without secrets, id stored only hashed, expiry 12 h, audited', async () => {
  const s = await login('alice');
  assert.match(s.sessionId, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  assert.deepEqual([s.user, s.logins, s.isAdmin], ['alice', ['alice', 'root'], false]);
  assert.equal(Date.parse(s.expiresAt) - Date.parse(s.createdAt), 12 * 3_600_000);
  assert.ok(s.csrfToken.length >= 20);
  assert.equal('privateKey' in s || 'certificate' in s, false, 'the key never leaves auth');
  const info = await proxy.getWebSession({ sessionId: s.sessionId });
  assert.deepEqual(info, { user: 'alice', roles: ['access'], logins: ['alice', 'root'], isAdmin: false, csrfToken: s.csrfToken, createdAt: s.createdAt, expiresAt: s.expiresAt });
  const stored = await backend.getRange('web_sessions/');
  const hash = createHash('sha256').update(s.sessionId).digest('hex');
  assert.ok(stored.some((i) => i.key === `web_sessions/${hash}`), 'stored under the SHA-256 of the id');
  assert.ok(stored.every((i) => !i.key.includes(s.sessionId) && !i.value.includes(s.sessionId)), 'the id itself is nowhere in storage');
  const created = await searchAudit(backend, { type: 'web.session.create', user: 'alice' });
  assert.equal(created.at(-1)?.addr, '192.0.2.7');
  assert.equal(created.at(-1)?.success, true);
});

test('wrong password, wrong code, a replayed code, an unknown user: one 401 ERR_POSTERN_LOGIN_FAILED, each audited', async () => {
  const failures = async (): Promise<number> => (await searchAudit(backend, { type: 'user.login.failure', user: 'bob' })).length;
  const before = await failures();
  const same = (e: Error & { code?: string; status?: number }) => e.code === 'ERR_POSTERN_LOGIN_FAILED' && e.status === 401 && e.message === 'invalid user name, password or second factor';
  await assert.rejects(login('bob', { password: 'not the password at all' }), same);
  await assert.rejects(login('bob', { otp: '000000' === code('bob') ? '111111' : '000000' }), same);
  step();
  const c = code('bob');
  await proxy.createWebSession({ user: 'bob', password: PASSWORD, otp: c, clientAddr: '192.0.2.7' });
  await assert.rejects(proxy.createWebSession({ user: 'bob', password: PASSWORD, otp: c, clientAddr: '192.0.2.7' }), same, 'a code works once, for web and ssh alike');
  await assert.rejects(proxy.createWebSession({ user: 'nobody', password: PASSWORD, otp: '123456', clientAddr: 'x' }), same);
  assert.equal(await failures(), before + 3, 'three of bob\'s');
});

test('five failures lock the user out of web logins too (403 ERR_POSTERN_USER_LOCKED with lockedUntil)', async () => {
  for (let i = 0; i < 5; i++) await assert.rejects(login('carol', { password: `wrong password ${i}` }), { code: 'ERR_POSTERN_LOGIN_FAILED' }, `failure ${i + 1}`);
  await assert.rejects(login('carol'), (e: Error & { code?: string; status?: number; lockedUntil?: string }) => e.status === 403 && e.code === 'ERR_POSTERN_USER_LOCKED' && !Number.isNaN(Date.parse(String(e.lockedUntil))));
  assert.ok((await searchAudit(backend, { type: 'user.locked', user: 'carol' })).length >= 1);
});

test('unknown, malformed, expired and deleted ids: 401 ERR_POSTERN_SESSION_EXPIRED with a hint', async () => {
  const expired = (e: Error & { code?: string; status?: number; hint?: string }) => e.code === 'ERR_POSTERN_SESSION_EXPIRED' && e.status === 401 && /log in again/i.test(e.hint ?? '');
  await assert.rejects(proxy.getWebSession({ sessionId: 'A'.repeat(43) }), expired);
  await assert.rejects(proxy.getWebSession({ sessionId: 'short' }), expired);
  await assert.rejects(proxy.getWebSession({ sessionId: 42 as never }), expired);
  const s = await login('alice');
  await proxy.deleteWebSession({ sessionId: s.sessionId, clientAddr: '192.0.2.8' });
  await assert.rejects(proxy.getWebSession({ sessionId: s.sessionId }), expired);
  await assert.rejects(proxy.webSessionAgent({ sessionId: s.sessionId, message: Buffer.of(11).toString('base64') }), expired);
  const ended = await searchAudit(backend, { type: 'web.session.end', user: 'alice' });
  assert.equal(ended.at(-1)?.addr, '192.0.2.8');
  const s2 = await login('alice');
  const saved = t;
  t += 12 * 3_600_000;
  await assert.rejects(proxy.getWebSession({ sessionId: s2.sessionId }), expired);
  t = saved;
  await proxy.getWebSession({ sessionId: s2.sessionId });
});

test('the TTL is capped by max_session_ttl; the certificate has the logins as principals and that validity', async () => {
  await admin.updateSettings({ max_session_ttl: 3_600_000 });
  try {
    const s = await login('alice');
    assert.equal(Date.parse(s.expiresAt) - Date.parse(s.createdAt), 3_600_000);
    const ids = Buffer.from((await proxy.webSessionAgent({ sessionId: s.sessionId, message: Buffer.of(11).toString('base64') })).message, 'base64');
    assert.equal(ids[0], 12);
    const r = new SshReader(ids.subarray(1), 'ids');
    assert.equal(r.uint32(), 2);
    const cert = parseCertificate(Buffer.from(r.bytes()));
    assert.deepEqual(cert.principals, ['alice', 'root']);
    assert.equal(cert.type, 'user');
    assert.equal(cert.validBefore.getTime(), Date.parse(s.expiresAt));
    const bad = Buffer.from((await proxy.webSessionAgent({ sessionId: s.sessionId, message: new SshWriter().byte(17).toBuffer().toString('base64') })).message, 'base64');
    assert.deepEqual(bad, Buffer.of(5), 'adding keys: SSH_AGENT_FAILURE');
    await assert.rejects(proxy.webSessionAgent({ sessionId: s.sessionId, message: 'not base64!' }), { code: 'ERR_POSTERN_INVALID' });
  } finally {
    await admin.updateSettings({ max_session_ttl: 30 * 3_600_000 });
  }
});

test('changePassword needs the current password and a fresh code; sessions stay; audited', async () => {
  const s = await login('alice');
  step();
  await assert.rejects(proxy.changePassword({ sessionId: s.sessionId, currentPassword: 'wrong wrong wrong', otp: code('alice'), newPassword: 'a brand new passphrase', clientAddr: '192.0.2.9' }), { code: 'ERR_POSTERN_BAD_CREDENTIALS' });
  await assert.rejects(proxy.changePassword({ sessionId: s.sessionId, currentPassword: PASSWORD, otp: code('alice'), newPassword: 'short', clientAddr: '192.0.2.9' }), /12 characters/);
  await assert.rejects(proxy.changePassword({ sessionId: s.sessionId, currentPassword: PASSWORD, otp: code('alice'), newPassword: undefined as never, clientAddr: '192.0.2.9' }), /newPassword/);
  await proxy.changePassword({ sessionId: s.sessionId, currentPassword: PASSWORD, otp: code('alice'), newPassword: 'a brand new passphrase', clientAddr: '192.0.2.9' });
  await proxy.getWebSession({ sessionId: s.sessionId });
  await assert.rejects(login('alice'), { code: 'ERR_POSTERN_LOGIN_FAILED' });
  await login('alice', { password: 'a brand new passphrase' });
  assert.ok((await searchAudit(backend, { type: 'user.password', user: 'alice' })).some((e) => e.addr === '192.0.2.9'));
  step();
  await proxy.changePassword({ sessionId: s.sessionId, currentPassword: 'a brand new passphrase', otp: code('alice'), newPassword: PASSWORD, clientAddr: '192.0.2.9' });
});

test('TOTP re-enrolment: a code of the new secret finishes it; the old secret stops working; enrolments expire after 10 min', async () => {
  const s = await login('bob');
  step();
  const begun = await proxy.beginTotpEnrol({ sessionId: s.sessionId, currentPassword: PASSWORD, otp: code('bob'), clientAddr: '192.0.2.9' });
  assert.match(begun.otpauthUri, /^otpauth:\/\/totp\/.*secret=/);
  await assert.rejects(proxy.finishTotpEnrol({ sessionId: s.sessionId, enrolId: begun.enrolId, otp: code('bob'), clientAddr: '192.0.2.9' }), /does not match the new secret/);
  await proxy.finishTotpEnrol({ sessionId: s.sessionId, enrolId: begun.enrolId, otp: totpCode(begun.totpSecret, new Date(t)), clientAddr: '192.0.2.9' });
  const old = secrets.get('bob')!;
  secrets.set('bob', begun.totpSecret);
  step();
  await assert.rejects(proxy.createWebSession({ user: 'bob', password: PASSWORD, otp: totpCode(old, new Date(t)), clientAddr: 'x' }), { code: 'ERR_POSTERN_LOGIN_FAILED' });
  await login('bob');
  assert.ok((await searchAudit(backend, { type: 'user.totp', user: 'bob' })).length >= 1);
  // Someone else's session cannot finish bob's enrolment, and an enrolment lasts 10 minutes.
  step();
  const again = await proxy.beginTotpEnrol({ sessionId: s.sessionId, currentPassword: PASSWORD, otp: code('bob'), clientAddr: 'x' });
  const other = await login('alice');
  await assert.rejects(proxy.finishTotpEnrol({ sessionId: other.sessionId, enrolId: again.enrolId, otp: totpCode(again.totpSecret, new Date(t)), clientAddr: 'x' }), /expired/);
  t += 11 * 60_000;
  await assert.rejects(proxy.finishTotpEnrol({ sessionId: s.sessionId, enrolId: again.enrolId, otp: totpCode(again.totpSecret, new Date(t)), clientAddr: 'x' }), /expired/);
});

test('arguments are checked on entry, naming the field', async () => {
  await assert.rejects(proxy.createWebSession({ user: 7 as never, password: PASSWORD, clientAddr: 'x' }), (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_INVALID' && /user/.test(e.message));
  await assert.rejects(proxy.createWebSession({ user: 'alice', password: undefined as never, clientAddr: 'x' }), (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_INVALID' && /password/.test(e.message));
});
