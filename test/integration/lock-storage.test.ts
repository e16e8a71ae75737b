/**
 * Locks at auth, on both storage backends (SQLite and a real PostgreSQL), with a clock we
 * move: the checks of createLock, what a lock refuses (CLI login, web login, a live web
 * session, dials by user, role, login or node, checkAccount), expiry by TTL, removal by id
 * or prefix, the audit trail, and two auth servers on one PostgreSQL database agreeing.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import { openPostgresBackend } from '../../src/storage/postgres.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AccessRequest } from '../../src/api/auth-types.ts';
import { totpCode, newTotpSecret } from '../../src/auth/totp.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { formatAuthorizedKey, generateKeyPair } from '../../src/ssh/keys.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';
import { startPostgres } from '../helpers/postgres.ts';
import type { PostgresServer } from '../helpers/postgres.ts';

const PASSWORD = 'correct horse battery staple';

/** One auth server on a backend, with users alice (access), bob (access, dev) and a node web1 and web2. */
async function cluster(backend: Backend, clock: { now(): Date }, step: () => void) {
  const auth = await AuthServer.open({ backend, clock, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
  const admin = localAuthClient(auth, { role: 'admin', name: 'root-admin' });
  const proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  const secrets = new Map<string, string>();
  await admin.upsertRole({ name: 'dev', logins: ['deploy'], node_labels: { '*': ['*'] } });
  for (const [name, roles] of [['alice', ['access']], ['bob', ['access', 'dev']]] as const) {
    const inv = await admin.createUser({ name, logins: [name, 'root'], roles: [...roles], inviteTtlMs: 3_600_000 });
    const secret = newTotpSecret();
    secrets.set(name, secret);
    await proxy.acceptInvite({ token: inv.inviteUrl.split('/').pop()!, password: PASSWORD, totpSecret: secret, otp: totpCode(secret, clock.now()), clientAddr: '127.0.0.1' });
    step();
  }
  for (const [name, port] of [['web1', 22], ['web2', 2222]] as const) {
    await admin.addNode({ name, addr: `127.0.0.1:${port}`, labels: { env: 'prod' }, hostPublicKey: formatAuthorizedKey(generateKeyPair().publicWire) });
  }
  const otp = (user: string): string => { step(); return totpCode(secrets.get(user)!, clock.now()); };
  return { auth, admin, proxy, otp };
}

/** The same tests on a backend made by `open`. */
function suite(kind: string, open: () => Promise<{ backend: Backend; second?: () => Promise<Backend> }>): void {
  describe(`locks on ${kind}`, () => {
    let t = Date.parse('2030-01-01T00:00:00Z');
    const clock = { now: () => new Date(t) };
    const step = (): void => { t += 30_000; };
    let backend: Backend;
    let second: (() => Promise<Backend>) | undefined;
    let c: Awaited<ReturnType<typeof cluster>>;
    const dial = (req: Partial<AccessRequest>) => c.proxy.authorizeSsh({ user: 'alice', principals: ['alice', 'root'], target: 'web1', port: 22, clientAddr: '192.0.2.1', via: 'subsystem', ...req });
    const sshLogin = (user: string) => c.proxy.loginSsh({ user, password: PASSWORD, otp: c.otp(user), publicKey: formatAuthorizedKey(generateKeyPair().publicWire), clientAddr: '192.0.2.1' });

    before(async () => {
      ({ backend, second } = await open());
      c = await cluster(backend, clock, step);
    });
    after(() => backend.close());

    test('createLock checks its target, reason and ttl', async () => {
      const bad: Array<[unknown, RegExp]> = [
        [{ target: {} }, /a lock needs a target/],
        [{ target: { user: 'alice', node: 'web1' } }, /a lock has one target, not user and node/],
        [{ target: { login: 'not a login' } }, /invalid login "not a login" to lock/],
        [{ target: { node: '-web' } }, /invalid node "-web" to lock/],
        [{ target: { role: 'Dev Team' } }, /invalid role/],
        [{ target: { user: 'alice' }, reason: 'a\nb' }, /one line of text without control characters/],
        [{ target: { user: 'alice' }, reason: 'x'.repeat(1001) }, /too long/],
        [{ target: { user: 'alice' }, ttlMs: 10 }, /at least 1s/],
        [{ target: { user: 'alice' }, ttlMs: 11 * 365 * 86_400_000 }, /at most ten years/],
      ];
      for (const [req, re] of bad) await assert.rejects(c.admin.createLock(req as never), (err: Error & { code?: string }) => re.test(err.message) && err.code === 'ERR_POSTERN_INVALID', JSON.stringify(req));
      assert.deepEqual(await c.admin.listLocks(), []);
      await assert.rejects(c.proxy.createLock({ target: { user: 'alice' } }), /a proxy may not call createLock/);
      await assert.rejects(c.proxy.deleteLock({ id: 'abcd' }), /a proxy may not call deleteLock/);
    });

    test('a user lock refuses logins naming the reason, ends the web session, refuses dials and fails checkAccount; rm restores; audited', async () => {
      const web = await c.proxy.createWebSession({ user: 'alice', password: PASSWORD, otp: c.otp('alice'), clientAddr: '192.0.2.1' });
      const lock = await c.admin.createLock({ target: { user: 'alice' }, reason: 'laptop stolen' });
      assert.equal(lock.createdBy, 'root-admin');
      assert.equal(lock.expiresAt, undefined);
      await assert.rejects(sshLogin('alice'), { code: 'ERR_POSTERN_LOCKED', message: 'user alice is locked: laptop stolen' });
      await assert.rejects(c.proxy.createWebSession({ user: 'alice', password: PASSWORD, otp: c.otp('alice'), clientAddr: '192.0.2.1' }), { code: 'ERR_POSTERN_LOCKED' });
      // A wrong password is told nothing about the lock.
      await assert.rejects(c.proxy.loginSsh({ user: 'alice', password: 'wrong wrong wrong', otp: c.otp('alice'), publicKey: formatAuthorizedKey(generateKeyPair().publicWire), clientAddr: '192.0.2.1' }), (err: Error & { code?: string }) => err.code !== 'ERR_POSTERN_LOCKED' && !/laptop/.test(err.message));
      await assert.rejects(c.proxy.getWebSession({ sessionId: web.sessionId }), { code: 'ERR_POSTERN_SESSION_EXPIRED' });
      await assert.rejects(dial({}), { code: 'ERR_POSTERN_LOCKED', message: 'user alice is locked: laptop stolen' });
      assert.deepEqual(await c.proxy.checkAccount({ user: 'alice', account: 'whatever' }), { valid: false, locked: true, reason: 'user alice is locked: laptop stolen' });
      // Bob is not covered.
      assert.equal((await dial({ user: 'bob', principals: ['bob'] })).kind, 'dial');
      assert.equal((await sshLogin('bob')).user, 'bob');

      const gone = await c.admin.deleteLock({ id: lock.id.slice(0, 6).toUpperCase() });
      assert.equal(gone.id, lock.id);
      assert.equal((await sshLogin('alice')).user, 'alice');
      assert.equal((await dial({})).kind, 'dial');
      await assert.rejects(c.admin.deleteLock({ id: lock.id }), { code: 'ERR_POSTERN_NOT_FOUND' });
      await assert.rejects(c.admin.deleteLock({ id: 'x' }), /invalid lock id/);

      const events = await searchAudit(backend, { type: 'lock' });
      assert.ok(events.some((e) => e.type === 'lock.created' && e.user === 'root-admin' && e.lockId === lock.id && e.reason === 'laptop stolen'));
      assert.ok(events.some((e) => e.type === 'lock.deleted' && e.lockId === lock.id));
      assert.ok((await searchAudit(backend, { type: 'access.denied' })).some((e) => e.user === 'alice' && /locked: laptop stolen/.test(String(e.reason))));
      assert.ok((await searchAudit(backend, { type: 'user.login.failure' })).some((e) => e.user === 'alice' && /locked: laptop stolen/.test(String(e.message))));
    });

    test('role, login and node locks cover what they name only', async () => {
      const role = await c.admin.createLock({ target: { role: 'dev' }, reason: 'audit' });
      await assert.rejects(sshLogin('bob'), { message: 'role dev is locked: audit' });
      assert.equal((await sshLogin('alice')).user, 'alice');
      await c.admin.deleteLock({ id: role.id });

      const login = await c.admin.createLock({ target: { login: 'root' } });
      await assert.rejects(dial({ login: 'root' }), { message: 'login root is locked' });
      assert.equal((await dial({ login: 'alice' })).kind, 'dial');
      // Without a login (ssh -J), a certificate that carries the locked one is covered.
      await assert.rejects(dial({}), { message: 'login root is locked' });
      assert.equal((await dial({ principals: ['alice'] })).kind, 'dial');
      assert.equal((await c.proxy.checkAccount({ user: 'alice', account: '', login: 'root', node: 'web1' })).locked, true);
      await c.admin.deleteLock({ id: login.id });

      const node = await c.admin.createLock({ target: { node: 'WEB1' }, reason: 'patching' });
      assert.deepEqual(node.target, { node: 'web1' });
      await assert.rejects(dial({ login: 'alice' }), { message: 'node web1 is locked: patching' });
      // By the node's address too: the lock is on the node auth resolves, not on what was typed.
      await assert.rejects(dial({ login: 'alice', target: '127.0.0.1', port: 22 }), { message: 'node web1 is locked: patching' });
      assert.equal((await dial({ login: 'alice', target: 'web2', port: 2222 })).kind, 'dial');
      assert.equal((await sshLogin('alice')).user, 'alice');
      await c.admin.deleteLock({ id: node.id });
    });

    test('a lock with a ttl lapses when the time comes, and is listed until then', async () => {
      const lock = await c.admin.createLock({ target: { user: 'alice' }, reason: 'cooling off', ttlMs: 60_000 });
      assert.equal(lock.expiresAt, new Date(t + 60_000).toISOString());
      assert.deepEqual((await c.admin.listLocks()).map((l) => l.id), [lock.id]);
      await assert.rejects(dial({}), { code: 'ERR_POSTERN_LOCKED' });
      t += 61_000;
      assert.deepEqual(await c.admin.listLocks(), []);
      assert.equal((await dial({})).kind, 'dial');
      assert.equal((await sshLogin('alice')).user, 'alice');
    });

    test('ids: a unique prefix removes a lock; a shared one is refused with the candidates', async () => {
      const made = await Promise.all(Array.from({ length: 20 }, (_, i) => c.admin.createLock({ target: { node: `n${i}` } })));
      const byFirst = new Map<string, string[]>();
      for (const l of made) byFirst.set(l.id.slice(0, 4), [...(byFirst.get(l.id.slice(0, 4)) ?? []), l.id]);
      const shared = [...byFirst.values()].find((ids) => ids.length > 1);
      if (shared) await assert.rejects(c.admin.deleteLock({ id: shared[0].slice(0, 4) }), /names \d+ locks/);
      for (const l of made) await c.admin.deleteLock({ id: l.id });
      assert.deepEqual(await c.admin.listLocks(), []);
    });

    // Two auth servers share a store only on PostgreSQL (one auth server per SQLite file).
    if (kind !== 'SQLite') test('a second auth server on the same store sees and enforces the same locks', async () => {
      const b2 = await second!();
      try {
        const auth2 = await AuthServer.open({ backend: b2, clock, clusterName: 'c.example', passwordCost: TEST_SCRYPT_LOG2N });
        const proxy2 = localAuthClient(auth2, { role: 'proxy', name: 'p2' });
        const lock = await c.admin.createLock({ target: { user: 'alice' }, reason: 'from auth 1' });
        await assert.rejects(proxy2.authorizeSsh({ user: 'alice', principals: ['alice'], login: 'alice', target: 'web1', port: 22, clientAddr: '192.0.2.1', via: 'subsystem' }), { message: 'user alice is locked: from auth 1' });
        assert.deepEqual((await proxy2.listLocks()).map((l) => l.id), [lock.id]);
        await localAuthClient(auth2, { role: 'admin', name: 'other-admin' }).deleteLock({ id: lock.id });
        assert.deepEqual(await c.admin.listLocks(), []);
      } finally {
        await b2.close();
      }
    });
  });
}

suite('SQLite', async () => ({ backend: await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-locks-')) }) }));

const pgServer: PostgresServer = await startPostgres({ after });
suite('PostgreSQL', async () => {
  const url = await pgServer.createDatabase();
  return { backend: await openPostgresBackend({ url, sweepIntervalMs: 0 }), second: () => openPostgresBackend({ url, sweepIntervalMs: 0 }) };
});
