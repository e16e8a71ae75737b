/**
 * The access decision against a real AuthServer on SQLite: which targets resolve to what,
 * and every way access is denied (each an audit event).
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
import type { AccessRequest } from '../../src/api/auth-types.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { globMatches, cidrContains } from '../../src/auth/access-policy.ts';
import { roleMatchesNode, allowedLogins, BUILTIN_ROLES } from '../../src/auth/role-store.ts';
import { parseNodeLabels } from '../../src/cli/commands/roles.ts';
import { searchAudit } from '../../src/auth/audit.ts';

let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-access-')) });
  const auth = await AuthServer.open({ backend, clock: { now: () => new Date() }, clusterName: 'c.example', settings: { allow_unregistered: ['*.lab', '10.1.0.0/16', 'fd00::/8'] } });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  const key = () => formatAuthorizedKey(generateKeyPair().publicWire);
  await admin.addNode({ name: 'web1', addr: '10.0.0.1', labels: { env: 'prod', team: 'web' }, hostPublicKey: key() });
  await admin.addNode({ name: 'web2', addr: '10.0.0.2:2222', labels: { env: 'prod', team: 'web' }, hostPublicKey: key() });
  await admin.addNode({ name: 'db1', addr: '10.0.0.3', labels: { env: 'dev' }, hostPublicKey: key() });
  await admin.upsertRole({ name: 'prod-web', logins: ['deploy'], node_labels: { env: ['prod'], team: ['web'] } });
  await admin.upsertRole({ name: 'dev-any', logins: ['{{internal.logins}}'], node_labels: { env: ['dev'] } });
  await admin.createUser({ name: 'alice', logins: ['alice', 'root'], roles: ['access'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'pat', logins: ['pat'], roles: ['prod-web', 'dev-any'], inviteTtlMs: 60_000 });
});
after(() => backend.close());

const req = (user: string, target: string, extra: Partial<AccessRequest> = {}): AccessRequest => ({
  user, principals: user === 'alice' ? ['alice', 'root'] : ['deploy', 'pat'], target, port: 22, clientAddr: '127.0.0.1', via: 'direct-tcpip', ...extra,
});

test('registered names, NAME.<cluster> and a one-node selector resolve to the registered address', async () => {
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'web1')), { kind: 'dial', host: '10.0.0.1', port: 22, node: { name: 'web1', addr: '10.0.0.1:22', labels: { env: 'prod', team: 'web' } } });
  const fq = await proxy.authorizeSsh(req('alice', 'web2.c.example'));
  assert.equal(fq.kind === 'dial' && `${fq.host}:${fq.port}`, '10.0.0.2:2222', 'port 22 from OpenSSH means the registered port');
  const sel = await proxy.authorizeSsh(req('alice', 'env=dev'));
  assert.equal(sel.kind === 'dial' && sel.node?.name, 'db1');
});

test('denials: role labels, login pairing, unknown, several matches, wrong port, unregistered', async () => {
  const denied = async (r: AccessRequest, re: RegExp) => assert.rejects(proxy.authorizeSsh(r), (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_ACCESS_DENIED' && re.test(e.message));
  await denied(req('pat', 'web1', { login: 'pat' }), /no role of pat allows login "pat" there/);
  await denied(req('pat', 'db1', { login: 'deploy' }), /no role of pat allows login "deploy" there/);
  await assert.rejects(proxy.authorizeSsh(req('pat', 'web1', { login: 'root' })), (e: Error & { code?: string }) => e.code === 'ERR_POSTERN_LOGIN_NOT_ALLOWED' && /login "root" is not in your certificate/.test(e.message));
  // With CIDR rules, an unknown name is resolved by the proxy first, then judged by its addresses.
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'web9')), { kind: 'resolve' });
  await denied(req('alice', 'web9', { resolved: ['192.0.2.1'] }), /unknown node "web9": it is not registered and not allowed by allow_unregistered/);
  await denied(req('alice', 'env=prod'), /env=prod matches 2 nodes: web1, web2; name one of them/);
  await denied(req('alice', 'env=staging'), /no node you may reach matches env=staging/);
  await denied(req('alice', 'web2', { port: 2200 }), /registered at port 2222, not 2200/);
  await denied(req('pat', 'box.lab'), /unregistered host "box.lab" denied: no role of pat reaches every node/);
  await denied(req('ghost', 'web1'), /user "ghost" does not exist/);
  assert.deepEqual(await proxy.authorizeSsh(req('pat', 'web1', { login: 'deploy' })).then((d) => d.kind), 'dial');
  const events = await searchAudit(backend, { type: 'access.denied' });
  assert.ok(events.length >= 9, `${events.length} denial events`);
  assert.ok(events.some((e) => e.user === 'pat' && e.target === 'db1' && e.success === false && /deploy/.test(String(e.message))));
});

test('unregistered hosts: globs, CIDRs (v4 and v6), and the resolve round for names', async () => {
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'box.lab', { port: 2022 })), { kind: 'dial', host: 'box.lab', port: 2022 });
  assert.deepEqual(await proxy.authorizeSsh(req('alice', '10.1.2.3')), { kind: 'dial', host: '10.1.2.3', port: 22 });
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'fd00::5')), { kind: 'dial', host: 'fd00::5', port: 22 });
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'internal.example')), { kind: 'resolve' });
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'internal.example', { resolved: ['10.1.9.9'] })), { kind: 'dial', host: '10.1.9.9', port: 22 });
  await assert.rejects(proxy.authorizeSsh(req('alice', 'internal.example', { resolved: ['10.1.9.9', '8.8.8.8'] })), /not allowed by allow_unregistered/);
  await assert.rejects(proxy.authorizeSsh(req('alice', '10.2.0.1')), /not allowed by allow_unregistered/);
});

test('listNodes shows a user only what their roles reach, with label and text filters', async () => {
  assert.deepEqual((await proxy.listNodes({ user: 'pat' })).map((n) => n.name), ['db1', 'web1', 'web2']);
  assert.deepEqual((await proxy.listNodes({ user: 'pat', labels: { env: 'prod' } })).map((n) => n.name), ['web1', 'web2']);
  assert.deepEqual((await proxy.listNodes({ user: 'alice', search: '2222' })).map((n) => n.name), ['web2']);
  assert.deepEqual(await proxy.listNodes({ user: 'ghost' }), []);
  await assert.rejects(proxy.addNode({ name: 'x', addr: '1.2.3.4', labels: {}, hostPublicKey: 'x' }), /a proxy may not call addNode/);
});

test('role matching, allowed logins, globs, CIDRs and the --node-labels syntax', () => {
  const access = BUILTIN_ROLES[0];
  assert.ok(roleMatchesNode(access, {}));
  const r = { name: 'r', logins: ['a'], node_labels: { env: ['dev', 'staging'], team: ['*'] } };
  assert.ok(roleMatchesNode(r, { env: 'dev', team: 'x' }));
  assert.ok(!roleMatchesNode(r, { env: 'dev' }), 'a label the role names must be present');
  assert.ok(!roleMatchesNode(r, { env: 'prod', team: 'x' }));
  assert.deepEqual(allowedLogins([access, r], ['u1']), ['u1', 'a']);
  assert.ok(globMatches('*.lab', 'a.b.LAB'));
  assert.ok(!globMatches('*.lab', 'lab'));
  assert.ok(globMatches('10.0.0.?', '10.0.0.7'));
  assert.ok(cidrContains('::1/128', '::1'));
  assert.ok(!cidrContains('10.0.0.0/8', '::1'));
  assert.ok(!cidrContains('garbage/8', '10.0.0.1'));
  assert.deepEqual(parseNodeLabels('env=dev|staging,team=*'), { env: ['dev', 'staging'], team: ['*'] });
});
