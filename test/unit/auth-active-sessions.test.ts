/**
 * Live sessions and join decisions against a real AuthServer on SQLite, auth and storage
 * sharing one clock we move: reports live 90 s, who sees which session by `join_sessions`,
 * authorizeJoin's 404/403/allow with its session.join audit, and the roles' join rules.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { ActiveSession } from '../../src/api/types.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { BUILTIN_ROLES } from '../../src/auth/role-store.ts';
import { getUser } from '../../src/auth/users.ts';

let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;
let other: AuthClient;
let t = Date.parse('2030-01-01T00:00:00Z');
const clock = { now: () => new Date(t) };

const session = (id: string, user: string, extra: Partial<ActiveSession> = {}): ActiveSession => ({
  id, kind: 'web', user, node: 'web1', login: 'root', startedAt: new Date(t).toISOString(), proxy: 'p1',
  participants: [{ user, mode: 'owner', joinedAt: new Date(t).toISOString() }], width: 80, height: 24, ...extra,
});

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-live-')), clock, sweepIntervalMs: 0 });
  const auth = await AuthServer.open({ backend, clock, clusterName: 'c.example' });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  other = localAuthClient(auth, { role: 'proxy', name: 'p2' });
  await admin.upsertRole({ name: 'dev', logins: ['dev'], node_labels: { '*': ['*'] } });
  await admin.upsertRole({ name: 'ops', logins: ['ops'], node_labels: { '*': ['*'] } });
  // Auditors watch developers' sessions; oncall may also type in them.
  await admin.upsertRole({ name: 'auditor', logins: ['audit'], node_labels: { '*': ['*'] }, join_sessions: [{ roles: ['dev'], modes: ['observer'] }] });
  await admin.upsertRole({ name: 'oncall', logins: ['oncall'], node_labels: { '*': ['*'] }, join_sessions: [{ roles: ['dev', 'ops'], modes: ['observer', 'peer'] }] });
  for (const [name, roles] of [['alice', ['dev']], ['olga', ['ops']], ['aud', ['auditor']], ['oscar', ['oncall']], ['root1', ['admin']], ['plain', ['access']]] as const) {
    await admin.createUser({ name, logins: [name], roles: [...roles], inviteTtlMs: 60_000 });
  }
});
after(() => backend.close());

test('reports live 90 s past the last one; an end deletes; another proxy cannot take a session over', async () => {
  await proxy.upsertActiveSession(session('sess-expiry-1', 'alice'));
  assert.deepEqual((await admin.listActiveSessions({})).map((s) => s.id), ['sess-expiry-1']);
  t += 89_000;
  assert.equal((await admin.listActiveSessions({})).length, 1, 'still there at 89 s');
  await proxy.upsertActiveSession(session('sess-expiry-1', 'alice', { participants: [] }));
  t += 89_000;
  assert.equal((await admin.listActiveSessions({})).length, 1, 'a report refreshes it');
  t += 2_000;
  assert.equal((await admin.listActiveSessions({})).length, 0, 'gone 90 s after the last report');
  await proxy.upsertActiveSession(session('sess-end-0001', 'alice'));
  await assert.rejects(other.upsertActiveSession(session('sess-end-0001', 'alice', { proxy: 'p2' })), { code: 'ERR_POSTERN_ACCESS_DENIED' });
  await assert.rejects(other.upsertActiveSession(session('sess-end-0001', 'alice', { proxy: 'p1' })), { code: 'ERR_POSTERN_ACCESS_DENIED' }, 'a proxy cannot claim another\'s name');
  await assert.rejects(other.endActiveSession({ id: 'sess-end-0001' }), { code: 'ERR_POSTERN_ACCESS_DENIED' }, 'nor end its sessions');
  await proxy.endActiveSession({ id: 'sess-end-0001' });
  assert.equal((await admin.listActiveSessions({})).length, 0);
});

test('reports are checked on entry, naming the field', async () => {
  const invalid = (field: RegExp) => (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_INVALID' && field.test(e.message);
  await assert.rejects(proxy.upsertActiveSession(session('x', 'alice')), invalid(/session id/));
  await assert.rejects(proxy.upsertActiveSession(session('sess-valid-1', 'alice', { kind: 'telnet' as never })), invalid(/kind/));
  await assert.rejects(proxy.upsertActiveSession(session('sess-valid-1', '')), invalid(/user/));
  await assert.rejects(proxy.upsertActiveSession(session('sess-valid-1', 'alice', { width: 0 })), invalid(/width/));
  await assert.rejects(proxy.upsertActiveSession(session('sess-valid-1', 'alice', { participants: [{ user: 'bob', mode: 'boss' as never, joinedAt: 'now' }] })), invalid(/participants\[0\]\.mode/));
  await assert.rejects(proxy.endActiveSession({ id: '../../users/alice' }), invalid(/session id/));
  await assert.rejects(proxy.authorizeJoin({ user: 'aud', sessionId: 'sess-valid-1', mode: 'moderator' as never, clientAddr: 'x' }), invalid(/mode/));
  await assert.rejects(proxy.listActiveSessions({}), invalid(/user/), 'a proxy must say for whom');
});

test('listing: own sessions, plus those a join_sessions rule of the viewer\'s roles covers; the admin identity sees all', async () => {
  await proxy.upsertActiveSession(session('sess-alice-1', 'alice'));
  await proxy.upsertActiveSession(session('sess-olga-01', 'olga'));
  await proxy.upsertActiveSession(session('sess-plain-1', 'plain'));
  const ids = async (user: string) => (await proxy.listActiveSessions({ user })).map((s) => s.id).sort();
  assert.deepEqual(await ids('alice'), ['sess-alice-1']);
  assert.deepEqual(await ids('aud'), ['sess-alice-1'], 'auditor: developers only');
  assert.deepEqual(await ids('oscar'), ['sess-alice-1', 'sess-olga-01']);
  assert.deepEqual(await ids('root1'), ['sess-alice-1', 'sess-olga-01', 'sess-plain-1'], 'the admin role: anyone');
  assert.deepEqual(await ids('plain'), ['sess-plain-1']);
  assert.deepEqual(await ids('nobody'), []);
  assert.equal((await admin.listActiveSessions({})).length, 3);
});

test('authorizeJoin: 404 unknown, 403 without a rule for that mode, the owner always; each audited as session.join', async () => {
  const join = (user: string, sessionId: string, mode: 'observer' | 'peer') => proxy.authorizeJoin({ user, sessionId, mode, clientAddr: '198.51.100.4' });
  await assert.rejects(join('aud', 'sess-nope-01', 'observer'), (e: Error & { status?: number }) => e.status === 404);
  assert.equal((await join('aud', 'sess-alice-1', 'observer')).user, 'alice');
  await assert.rejects(join('aud', 'sess-alice-1', 'peer'), (e: Error & { status?: number; code?: string }) => e.status === 403 && e.code === 'ERR_POSTERN_ACCESS_DENIED');
  await assert.rejects(join('aud', 'sess-olga-01', 'observer'), { status: 403 });
  await join('oscar', 'sess-olga-01', 'peer');
  await assert.rejects(join('plain', 'sess-alice-1', 'observer'), { status: 403 });
  await assert.rejects(join('alice', 'sess-plain-1', 'observer'), { status: 403 });
  await join('root1', 'sess-plain-1', 'peer');
  await join('alice', 'sess-alice-1', 'peer');
  await join('alice', 'sess-alice-1', 'observer');
  await assert.rejects(join('ghost', 'sess-alice-1', 'observer'), { status: 403 });
  const events = await searchAudit(backend, { type: 'session.join' });
  // One fixed clock: the events share a time, so compare them as a set.
  const seen = events.map((e) => `${e.user}>${String(e.sessionId)}:${String(e.mode)}:${e.success}`).sort();
  assert.deepEqual(seen, [
    'aud>sess-nope-01:observer:false', 'aud>sess-alice-1:observer:true', 'aud>sess-alice-1:peer:false', 'aud>sess-olga-01:observer:false',
    'oscar>sess-olga-01:peer:true', 'plain>sess-alice-1:observer:false', 'alice>sess-plain-1:observer:false', 'root1>sess-plain-1:peer:true',
    'alice>sess-alice-1:peer:true', 'alice>sess-alice-1:observer:true', 'ghost>sess-alice-1:observer:false',
  ].sort());
  const ok = events.find((e) => e.user === 'oscar')!;
  assert.deepEqual([ok.addr, ok.owner, ok.node, ok.login], ['198.51.100.4', 'olga', 'web1', 'root']);
});

test('authorizeJoin: a lock on the joiner, one of their roles, or the session\'s login or node refuses with its message, audited as a failed session.join', async () => {
  const join = (user: string) => proxy.authorizeJoin({ user, sessionId: 'sess-alice-1', mode: 'observer', clientAddr: '198.51.100.9' });
  const refusals = async (): Promise<Array<Record<string, unknown>>> =>
    (await searchAudit(backend, { type: 'session.join' })).filter((e) => e.addr === '198.51.100.9' && !e.success);
  for (const [target, reason, who] of [
    [{ user: 'aud' }, 'left the company', 'user aud'], [{ role: 'auditor' }, 'audit paused', 'role auditor'],
    [{ login: 'root' }, 'no root today', 'login root'], [{ node: 'web1' }, 'patching', 'node web1'],
  ] as const) {
    const lock = await admin.createLock({ target, reason, ttlMs: 60_000 });
    const message = `${who} is locked: ${reason}`;
    await assert.rejects(join('aud'), (e: Error & { status?: number; code?: string }) => e.status === 403 && e.code === 'ERR_POSTERN_LOCKED' && e.message === message);
    const last = (await refusals()).find((e) => e.lockId === lock.id);
    assert.ok(last, `the refusal under the ${who} lock is audited`);
    assert.deepEqual([last.user, last.sessionId, last.mode, last.owner, last.reason, last.message], ['aud', 'sess-alice-1', 'observer', 'alice', message, message]);
    await admin.deleteLock({ id: lock.id });
    assert.equal((await join('aud')).id, 'sess-alice-1', `allowed again once the ${who} lock is removed`);
  }
  // A lock on someone else, or on another login or node, is not the joiner's.
  const others = await Promise.all([{ user: 'olga' }, { login: 'ops' }, { node: 'web2' }].map((target) => admin.createLock({ target, reason: 'other' })));
  assert.equal((await join('aud')).id, 'sess-alice-1');
  for (const l of others) await admin.deleteLock({ id: l.id });
  // A lock with a TTL lapses.
  await admin.createLock({ target: { user: 'aud' }, reason: 'brief', ttlMs: 5_000 });
  await assert.rejects(join('aud'), { code: 'ERR_POSTERN_LOCKED' });
  t += 6_000;
  assert.equal((await join('aud')).id, 'sess-alice-1');
});

test('authorizeJoin: a certificate from before a reset is refused (401), audited; the removed user\'s own session cannot be joined either', async () => {
  const join = (user: string, account?: string) => proxy.authorizeJoin({ user, sessionId: 'sess-alice-1', mode: 'observer', clientAddr: '198.51.100.10', ...(account !== undefined ? { account } : {}) });
  const before = (await getUser(backend, 'oscar'))!.account ?? '';
  assert.equal((await join('oscar', before)).id, 'sess-alice-1', 'the live account\'s certificate');
  await admin.resetUser({ name: 'oscar', inviteTtlMs: 60_000 });
  await assert.rejects(join('oscar', before), (e: Error & { status?: number; code?: string }) => e.status === 401 && e.code === 'ERR_POSTERN_ACCOUNT_REVOKED' && /reset or re-created/.test(e.message));
  await assert.rejects(join('oscar', ''), { code: 'ERR_POSTERN_ACCOUNT_REVOKED' }, 'nor a certificate without a generation once the account has one');
  const refused = (await searchAudit(backend, { type: 'session.join' })).filter((e) => e.addr === '198.51.100.10' && !e.success);
  assert.equal(refused.length, 2);
  assert.ok(refused.every((e) => e.user === 'oscar' && e.reason === 'the account was reset or re-created'), JSON.stringify(refused));
  // A name with no account (removed, or never added) joins nothing, not even a session of that name.
  await proxy.upsertActiveSession(session('sess-ghost-01', 'olga2'));
  await assert.rejects(proxy.authorizeJoin({ user: 'olga2', sessionId: 'sess-ghost-01', mode: 'peer', clientAddr: 'x' }), { status: 403 });
  await proxy.endActiveSession({ id: 'sess-ghost-01' });
});

test('roles: join_sessions is checked and kept; the built-in admin role may join anyone in both modes', async () => {
  await assert.rejects(admin.upsertRole({ name: 'bad', logins: ['x'], node_labels: { '*': ['*'] }, join_sessions: [{ roles: ['dev'], modes: ['moderator' as never] }] }), /needs modes/);
  await assert.rejects(admin.upsertRole({ name: 'bad', logins: ['x'], node_labels: { '*': ['*'] }, join_sessions: [{ roles: [], modes: ['peer'] }] }), /needs roles/);
  await assert.rejects(admin.upsertRole({ name: 'bad', logins: ['x'], node_labels: { '*': ['*'] }, join_sessions: 'everyone' as never }), /join_sessions/);
  const roles = await admin.listRoles();
  assert.deepEqual(roles.find((r) => r.name === 'auditor')?.join_sessions, [{ roles: ['dev'], modes: ['observer'] }]);
  assert.deepEqual(roles.find((r) => r.name === 'admin')?.join_sessions, [{ roles: ['*'], modes: ['observer', 'peer'] }]);
  assert.deepEqual(BUILTIN_ROLES.find((r) => r.name === 'admin')?.join_sessions, [{ roles: ['*'], modes: ['observer', 'peer'] }]);
});

test('a proxy process silent for 10 s: its sessions leave the list and cannot be joined; heartbeats keep them; users never see peer addresses', async () => {
  const inst = 'instance-aaaa-1';
  await proxy.upsertActiveSession(session('sess-live-001', 'alice', { proxyInstance: inst, proxyPeerAddr: '10.0.0.5:3021' }));
  const listed = async () => (await admin.listActiveSessions({})).some((s) => s.id === 'sess-live-001');
  assert.equal(await listed(), true);
  const mine = (await proxy.listActiveSessions({ user: 'alice' })).find((s) => s.id === 'sess-live-001');
  assert.ok(mine);
  assert.equal(mine.proxyPeerAddr, undefined, 'a user\'s list holds no peer address');
  assert.equal(mine.proxyInstance, undefined);
  assert.equal((await proxy.authorizeJoin({ user: 'alice', sessionId: 'sess-live-001', mode: 'peer', clientAddr: 'x' })).proxyPeerAddr, '10.0.0.5:3021', 'the proxy that relays a join gets it');
  // Heartbeats every few seconds keep it listed past 10 s.
  for (let i = 0; i < 5; i++) {
    t += 6_000;
    await proxy.heartbeatSessions({ instance: inst });
    assert.equal(await listed(), true, `listed after ${(i + 1) * 6} s of heartbeats`);
  }
  // Another proxy cannot keep it alive: its heartbeat is under its own name.
  t += 9_000;
  await other.heartbeatSessions({ instance: inst });
  assert.equal(await listed(), true, 'still within 10 s');
  t += 2_000;
  assert.equal(await listed(), false, 'gone 11 s after its proxy\'s last heartbeat');
  await assert.rejects(proxy.authorizeJoin({ user: 'alice', sessionId: 'sess-live-001', mode: 'peer', clientAddr: 'x' }), { status: 404 });
  await assert.rejects(proxy.heartbeatSessions({ instance: 'no' }), { code: 'ERR_POSTERN_INVALID' });
  await proxy.endActiveSession({ id: 'sess-live-001' });
});
