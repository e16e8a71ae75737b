/**
 * Roles: matching node labels, the logins a user's roles grant (and so a login's
 * certificate principals), what a role may look like, built-in roles, and removing a role
 * that users still hold. Against a real AuthServer on SQLite where storage is involved.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteBackend } from '../../src/storage/sqlite.ts';
import type { Backend } from '../../src/storage/backend.ts';
import { AuthServer, localAuthClient } from '../../src/auth/auth-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { RoleSpec } from '../../src/api/auth-types.ts';
import { roleMatchesNode, allowedLogins, roleLogins, checkRole, roleIsWildcard, BUILTIN_ROLES, LOGINS_TEMPLATE } from '../../src/auth/role-store.ts';
import { parseNodeLabels, readRoleFile } from '../../src/cli/commands/roles/add.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { parseCertificate } from '../../src/ssh/certs.ts';
import { searchAudit } from '../../src/auth/audit.ts';
import { TEST_SCRYPT_LOG2N } from '../helpers/auth.ts';

const role = (name: string, logins: string[], node_labels: Record<string, string[]>): RoleSpec => ({ name, logins, node_labels });

test('roleMatchesNode: every label the role names must match; "*" values and the "*": ["*"] rule', () => {
  const access = BUILTIN_ROLES.find((r) => r.name === 'access')!;
  assert.ok(roleMatchesNode(access, {}), '"*": ["*"] matches a node without labels');
  assert.ok(roleMatchesNode(access, { env: 'prod' }));
  const r = role('r', ['a'], { env: ['dev', 'staging'], team: ['*'] });
  assert.ok(roleMatchesNode(r, { env: 'dev', team: 'x' }));
  assert.ok(roleMatchesNode(r, { env: 'staging', team: 'y', other: 'z' }), 'labels the role does not name do not matter');
  assert.ok(!roleMatchesNode(r, { env: 'dev' }), 'a label whose values are "*" must still be present');
  assert.ok(!roleMatchesNode(r, { env: 'prod', team: 'x' }));
  assert.ok(!roleMatchesNode(r, { env: 'DEV', team: 'x' }), 'values match exactly');
  assert.ok(!roleMatchesNode(role('n', ['a'], {}), {}), 'a role without rules matches nothing');
  assert.ok(!roleMatchesNode(role('p', ['a'], { toString: ['*'] }), {}), 'inherited properties are not labels');
  assert.ok(roleIsWildcard(access));
  assert.ok(!roleIsWildcard(r));
  assert.ok(!roleIsWildcard(role('w', ['a'], { '*': ['*'], env: ['dev'] })), 'only a role of "*": ["*"] alone reaches unregistered hosts');
});

test('allowedLogins: the union of every role\'s logins, {{internal.logins}} expanded to the user\'s own', () => {
  const access = BUILTIN_ROLES[0];
  const ops = role('ops', ['deploy', LOGINS_TEMPLATE], { env: ['prod'] });
  const dbas = role('dbas', ['postgres', 'deploy'], { team: ['db'] });
  assert.deepEqual(allowedLogins([access], ['alice', 'root']), ['alice', 'root']);
  assert.deepEqual(allowedLogins([ops, dbas], ['alice']), ['deploy', 'alice', 'postgres']);
  assert.deepEqual(allowedLogins([dbas], ['alice']), ['postgres', 'deploy'], 'without the template the user\'s own logins are not granted');
  assert.deepEqual(allowedLogins([], ['alice']), []);
  assert.deepEqual(roleLogins(ops, []), ['deploy']);
});

test('checkRole: names, logins and label rules are checked, and the result is a clean copy', () => {
  const ok = checkRole({ name: 'dev-1', logins: ['ubuntu', 'ubuntu', LOGINS_TEMPLATE], node_labels: { env: ['dev', 'dev'], '*': ['*'] }, builtin: true });
  assert.deepEqual(ok, { name: 'dev-1', logins: ['ubuntu', LOGINS_TEMPLATE], node_labels: { env: ['dev'], '*': ['*'] } });
  const bad: Array<[unknown, RegExp]> = [
    [{ name: 'Dev', logins: ['a'], node_labels: { env: ['x'] } }, /invalid role name "Dev"/],
    [{ name: 'access', logins: ['a'], node_labels: { env: ['x'] } }, /"access" is a built-in role and cannot be changed/],
    [{ name: 'admin', logins: ['a'], node_labels: { env: ['x'] } }, /"admin" is a built-in role/],
    [{ name: 'r', logins: [], node_labels: { env: ['x'] } }, /role "r" needs at least one login/],
    [{ name: 'r', logins: ['bad login'], node_labels: { env: ['x'] } }, /invalid login "bad login" in role "r"/],
    [{ name: 'r', logins: ['{{internal.other}}'], node_labels: { env: ['x'] } }, /invalid login "\{\{internal.other\}\}"/],
    [{ name: 'r', logins: ['a'], node_labels: {} }, /role "r" needs node_labels/],
    [{ name: 'r', logins: ['a'], node_labels: { env: [] } }, /node_labels "env" of role "r" must be a list of non-empty values/],
    [{ name: 'r', logins: ['a'], node_labels: { env: [''] } }, /must be a list of non-empty values/],
    [{ name: 'r', logins: ['a'], node_labels: { env: 'dev' } }, /must be a list of non-empty values/],
    [{ name: 'r', logins: ['a'], node_labels: { '*': ['prod'] } }, /node_labels "\*" of role "r" must be \['\*'\]/],
    [{ name: 'r', logins: ['a'], node_labels: { 'bad key': ['x'] } }, /invalid label name "bad key" in role "r"/],
    [null, /a role must be an object/],
  ];
  for (const [spec, re] of bad) {
    assert.throws(() => checkRole(spec as RoleSpec), (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_POSTERN_INVALID' && re.test(e.message), `${JSON.stringify(spec)} → ${re}`);
  }
});

test('--node-labels syntax and YAML role files (single values stand for one-item lists)', () => {
  assert.deepEqual(parseNodeLabels('env=dev|staging,team=*'), { env: ['dev', 'staging'], team: ['*'] });
  assert.deepEqual(parseNodeLabels('*=*'), { '*': ['*'] });
  assert.deepEqual(parseNodeLabels('env=dev, env=qa|dev'), { env: ['dev', 'qa'] }, 'a name given twice adds its values');
  assert.throws(() => parseNodeLabels('env'), /invalid --node-labels part "env"/);
  assert.throws(() => parseNodeLabels('env='), /invalid --node-labels part "env="/);
  assert.throws(() => parseNodeLabels(','), /--node-labels is empty/);
  const dir = mkdtempSync(join(tmpdir(), 'postern-role-'));
  const file = join(dir, 'r.yaml');
  writeFileSync(file, "name: dev\nlogins: ubuntu\nnode_labels:\n  env: [dev, staging]\n  team: '*'\n");
  assert.deepEqual(readRoleFile(file), { name: 'dev', logins: ['ubuntu'], node_labels: { env: ['dev', 'staging'], team: ['*'] } });
  writeFileSync(file, 'name: dev\nlogin: ubuntu\n');
  assert.throws(() => readRoleFile(file), /unknown field login/);
  writeFileSync(file, '- a\n- b\n');
  assert.throws(() => readRoleFile(file), /must hold one role/);
});

let backend: Backend;
let auth: AuthServer;
let admin: AuthClient;
let proxy: AuthClient;

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-roles-')) });
  auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', settings: { second_factor: 'off' }, passwordCost: TEST_SCRYPT_LOG2N });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
});
after(() => backend.close());

test('listRoles shows the built-in roles first (builtin: true), then stored ones; built-ins cannot be changed or removed', async () => {
  const stored = await admin.upsertRole({ name: 'dev', logins: ['ubuntu'], node_labels: { env: ['dev', 'staging'] } });
  assert.deepEqual(stored, { name: 'dev', logins: ['ubuntu'], node_labels: { env: ['dev', 'staging'] } });
  const list = await admin.listRoles();
  assert.deepEqual(list.map((r) => [r.name, r.builtin ?? false]), [['access', true], ['admin', true], ['dev', false]]);
  assert.deepEqual(list[0], { name: 'access', logins: [LOGINS_TEMPLATE], node_labels: { '*': ['*'] }, builtin: true });
  await assert.rejects(admin.upsertRole({ name: 'admin', logins: ['root'], node_labels: { '*': ['*'] } }), /"admin" is a built-in role and cannot be changed/);
  await assert.rejects(admin.deleteRole({ name: 'access' }), /"access" is a built-in role and cannot be removed/);
  await assert.rejects(admin.deleteRole({ name: 'nope' }), (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_POSTERN_NOT_FOUND' && /role "nope" does not exist/.test(e.message) && /postern roles ls/.test(e.hint ?? ''));
  await assert.rejects(proxy.upsertRole({ name: 'x', logins: ['a'], node_labels: { '*': ['*'] } }), /a proxy may not call upsertRole/);
  assert.equal((await proxy.listRoles()).length, 3, 'the proxy may read roles');
  // Replacing a stored role is an upsert.
  await admin.upsertRole({ name: 'dev', logins: ['ubuntu', 'deploy'], node_labels: { env: ['dev'] } });
  assert.deepEqual((await admin.listRoles()).find((r) => r.name === 'dev')?.logins, ['ubuntu', 'deploy']);
  const events = await searchAudit(backend, { type: 'role' });
  assert.deepEqual(events.map((e) => e.type), ['role.changed', 'role.changed']);
});

test('users add accepts any defined role and refuses an unknown one; a held role cannot be removed (the error names who holds it)', async () => {
  await admin.upsertRole({ name: 'temp', logins: ['tmp'], node_labels: { env: ['qa'] } });
  await admin.createUser({ name: 'bob', logins: ['bob'], roles: ['temp'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'bea', logins: ['bea'], roles: ['access', 'temp'], inviteTtlMs: 60_000 });
  await assert.rejects(admin.createUser({ name: 'cy', logins: ['cy'], roles: ['ghost-role'], inviteTtlMs: 60_000 }),
    (e: Error & { hint?: string }) => /unknown role "ghost-role"/.test(e.message) && /postern roles ls/.test(e.hint ?? ''));
  await assert.rejects(admin.deleteRole({ name: 'temp' }), (e: Error & { code?: string; hint?: string }) =>
    e.code === 'ERR_POSTERN_CONFLICT' && /role "temp" is still held by bea, bob/.test(e.message) && /users rm/.test(e.hint ?? ''));
  await admin.deleteUser({ name: 'bob' });
  await admin.deleteUser({ name: 'bea' });
  await admin.deleteRole({ name: 'temp' });
  assert.ok(!(await admin.listRoles()).some((r) => r.name === 'temp'));
  assert.equal((await searchAudit(backend, { type: 'role.removed' })).at(-1)?.role, 'temp');
});

/** Signs a user up (second factor off in this cluster) and logs in; returns the certificate's principals. */
async function loginPrincipals(name: string, logins: string[], roles: string[]): Promise<string[]> {
  const invite = await admin.createUser({ name, logins, roles, inviteTtlMs: 60_000 });
  const token = invite.inviteUrl.split('/').at(-1)!;
  await proxy.acceptInvite({ token, password: 'correct horse battery staple', clientAddr: '127.0.0.1' });
  const r = await proxy.loginSsh({ user: name, password: 'correct horse battery staple', publicKey: formatAuthorizedKey(generateKeyPair().publicWire), clientAddr: '127.0.0.1' });
  const cert = parseCertificate(r.certificate);
  assert.deepEqual(r.logins, cert.principals);
  assert.equal(cert.keyId, name);
  return cert.principals;
}

test('a login\'s certificate principals are the logins the user\'s roles allow', async () => {
  await admin.upsertRole({ name: 'deployers', logins: ['deploy'], node_labels: { env: ['prod'] } });
  await admin.upsertRole({ name: 'self-dev', logins: [LOGINS_TEMPLATE, 'ubuntu'], node_labels: { env: ['dev'] } });
  assert.deepEqual(await loginPrincipals('dora', ['dora', 'root'], ['access']), ['dora', 'root']);
  assert.deepEqual(await loginPrincipals('dan', ['dan'], ['deployers']), ['deploy'], 'a role without the template does not grant the user\'s own logins');
  assert.deepEqual(await loginPrincipals('dee', ['dee'], ['deployers', 'self-dev']), ['deploy', 'dee', 'ubuntu']);
});
