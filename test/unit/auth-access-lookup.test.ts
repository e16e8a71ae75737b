/**
 * The access decision, case by case, against a real AuthServer on SQLite: how a target is
 * looked up (name, NAME.<cluster>, selector, address, unregistered host), which role and
 * login checks apply, which port is dialled, and what a denial writes to the audit log.
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
import { parseCertificate } from '../../src/ssh/certs.ts';
import { globMatches, cidrContains, allowedUnregistered, parseSelector, selectorMatches, isCidrPattern } from '../../src/auth/access-policy.ts';
import { normaliseAddr, hostPrincipals, parseLabels } from '../../src/auth/node-registry.ts';
import { searchAudit } from '../../src/auth/audit.ts';

test('host globs: "*" spans dots, "?" one character, case-insensitive, whole name only', () => {
  assert.ok(globMatches('*.internal', 'db.eu.internal'));
  assert.ok(globMatches('*.internal', 'DB.Internal'));
  assert.ok(!globMatches('*.internal', 'internal'));
  assert.ok(!globMatches('*.internal', 'db.internal.evil.com'), 'anchored at the end');
  assert.ok(!globMatches('db.internal', 'dbxinternal'), 'a dot is a dot');
  assert.ok(globMatches('10.0.0.*', '10.0.0.17'));
  assert.ok(!globMatches('10.0.0.*', '10.0.1.17'));
  assert.ok(globMatches('web?', 'web7'));
  assert.ok(!globMatches('web?', 'web17'));
  assert.ok(globMatches('a+b(c)', 'a+b(c)'), 'regex characters are literal');
});

test('CIDRs, IPv4 and IPv6: containment, families kept apart, malformed rules match nothing', () => {
  assert.ok(cidrContains('10.0.0.0/8', '10.255.1.2'));
  assert.ok(!cidrContains('10.0.0.0/8', '11.0.0.1'));
  assert.ok(cidrContains('192.168.1.0/24', '192.168.1.255'));
  assert.ok(!cidrContains('192.168.1.0/24', '192.168.2.0'));
  assert.ok(cidrContains('10.0.0.5/32', '10.0.0.5'));
  assert.ok(cidrContains('0.0.0.0/0', '8.8.8.8'));
  assert.ok(cidrContains('::1/128', '::1'));
  assert.ok(!cidrContains('::1/128', '::2'));
  assert.ok(cidrContains('fd00::/8', 'fd12:3456::1'));
  assert.ok(!cidrContains('fd00::/8', 'fe80::1'));
  assert.ok(cidrContains('2001:db8::/32', '2001:0db8:0000::42'), 'IPv6 spelled long');
  assert.ok(!cidrContains('10.0.0.0/8', '::1'), 'an IPv6 address is never in an IPv4 CIDR');
  assert.ok(!cidrContains('::/0', '10.0.0.1'), 'nor an IPv4 address in an IPv6 one');
  assert.ok(cidrContains('10.0.0.0/8', '::ffff:10.1.2.3'), 'an IPv4-mapped IPv6 address counts as its IPv4 address');
  for (const bad of ['garbage/8', '10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0']) assert.ok(!cidrContains(bad, '10.0.0.1'), bad);
  assert.ok(!cidrContains('10.0.0.0/8', 'db.internal'), 'a name is not an address');
  assert.ok(isCidrPattern('10.0.0.0/8'));
  assert.ok(!isCidrPattern('10.0.0.*'));
  const rules = ['*.internal', '10.0.0.0/8', '::1/128'];
  assert.ok(allowedUnregistered(rules, 'a.internal'));
  assert.ok(allowedUnregistered(rules, '10.9.9.9'));
  assert.ok(allowedUnregistered(rules, '::1'));
  assert.ok(!allowedUnregistered(rules, 'a.example'), 'a CIDR does not match a name by itself');
  assert.ok(!allowedUnregistered([], '10.0.0.1'), 'the default, [], allows nothing');
});

test('selectors and node labels: k=v[,k=v], strict values; addresses normalised; host certificate principals', () => {
  assert.equal(parseSelector('web1'), undefined);
  assert.deepEqual(parseSelector('env=prod'), { env: 'prod' });
  assert.deepEqual(parseSelector('env=prod, team=web'), { env: 'prod', team: 'web' });
  assert.throws(() => parseSelector('=prod'), /invalid label selector "=prod": "=prod" has no label name before "="/);
  assert.throws(() => parseSelector('env='), /invalid value "" of label "env"/);
  assert.throws(() => parseSelector('env=a,env=b'), /label "env" is given twice/);
  assert.throws(() => parseLabels('env=*'), /invalid value "\*"/, 'node labels have no wildcards');
  assert.ok(selectorMatches({ env: 'prod' }, { env: 'prod', team: 'web' }));
  assert.ok(!selectorMatches({ env: 'prod', team: 'db' }, { env: 'prod', team: 'web' }));
  assert.ok(selectorMatches({}, { env: 'prod' }));
  assert.equal(normaliseAddr('10.0.0.1'), '10.0.0.1:22');
  assert.equal(normaliseAddr('Web1.Internal:2222'), 'web1.internal:2222');
  assert.equal(normaliseAddr('[::1]:2200'), '[::1]:2200');
  assert.equal(normaliseAddr('fd00::5'), '[fd00::5]:22');
  assert.throws(() => normaliseAddr('10.0.0.1:0'), /the port must not be 0/);
  assert.throws(() => normaliseAddr('bad host:22'), /neither an IP address nor a host name/);
  assert.throws(() => normaliseAddr('h:99999'), /invalid port/);
  assert.deepEqual(hostPrincipals('web1', '10.0.0.1:22', 'C.example'), ['web1', 'web1.c.example', '10.0.0.1']);
  assert.deepEqual(hostPrincipals('web1', 'web1:22', 'c.example'), ['web1', 'web1.c.example'], 'deduplicated');
  assert.deepEqual(hostPrincipals('v6', '[fd00::5]:22', 'c.example'), ['v6', 'v6.c.example', 'fd00::5']);
});

let backend: Backend;
let admin: AuthClient;
let proxy: AuthClient;
const key = (): string => formatAuthorizedKey(generateKeyPair().publicWire);

before(async () => {
  backend = await openSqliteBackend({ dataDir: mkdtempSync(join(tmpdir(), 'postern-lookup-')) });
  const auth = await AuthServer.open({
    backend, clock: { now: () => new Date() }, clusterName: 'c.example',
    settings: { allow_unregistered: ['*.lab', '10.9.0.*', '10.1.0.0/16', 'fd00::/8'] },
  });
  admin = localAuthClient(auth, { role: 'admin', name: 'admin' });
  proxy = localAuthClient(auth, { role: 'proxy', name: 'p1' });
  await admin.addNode({ name: 'web1', addr: '10.0.0.1', labels: { env: 'prod', team: 'web' }, hostPublicKey: key() });
  await admin.addNode({ name: 'web2', addr: '10.0.0.2:2222', labels: { env: 'prod', team: 'web' }, hostPublicKey: key() });
  await admin.addNode({ name: 'db1', addr: '10.0.0.3', labels: { env: 'prod', team: 'db' }, hostPublicKey: key() });
  await admin.addNode({ name: 'dev1', addr: 'dev1.internal:22', labels: { env: 'dev' }, hostPublicKey: key() });
  await admin.addNode({ name: 'bare', addr: '10.0.0.9', labels: {}, hostPublicKey: key() });
  await admin.addNode({ name: 'twin-a', addr: '10.0.0.7:22', labels: { env: 'dev' }, hostPublicKey: key() });
  await admin.addNode({ name: 'twin-b', addr: '10.0.0.7:2200', labels: { env: 'dev' }, hostPublicKey: key() });
  await admin.upsertRole({ name: 'web-deploy', logins: ['deploy'], node_labels: { team: ['web'] } });
  await admin.upsertRole({ name: 'dev-self', logins: ['{{internal.logins}}'], node_labels: { env: ['dev'] } });
  await admin.upsertRole({ name: 'prod-any', logins: ['ro'], node_labels: { env: ['prod'], team: ['*'] } });
  await admin.createUser({ name: 'alice', logins: ['alice', 'root'], roles: ['access'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'pat', logins: ['pat'], roles: ['web-deploy', 'dev-self'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'dev', logins: ['dev'], roles: ['dev-self'], inviteTtlMs: 60_000 });
  await admin.createUser({ name: 'ro', logins: ['ro'], roles: ['prod-any'], inviteTtlMs: 60_000 });
});
after(() => backend.close());

const PRINCIPALS: Record<string, string[]> = { alice: ['alice', 'root'], pat: ['deploy', 'pat'], dev: ['dev'], ro: ['ro'] };
const req = (user: string, target: string, extra: Partial<AccessRequest> = {}): AccessRequest => ({
  user, principals: PRINCIPALS[user] ?? [], target, port: 22, clientAddr: '192.0.2.10:50000', via: 'subsystem', ...extra,
});
const dial = async (r: AccessRequest): Promise<string> => {
  const d = await proxy.authorizeSsh(r);
  assert.equal(d.kind, 'dial');
  return d.kind === 'dial' ? `${d.node?.name ?? '-'} ${d.host}:${d.port}` : '';
};
const denied = (r: AccessRequest, re: RegExp, hint?: RegExp, code = 'ERR_POSTERN_ACCESS_DENIED'): Promise<void> => assert.rejects(proxy.authorizeSsh(r), (e: Error & { code?: string; status?: number; hint?: string }) => {
  assert.equal(e.code, code, e.message);
  assert.equal(e.status, 403);
  assert.match(e.message, re);
  if (hint) assert.match(e.hint ?? '', hint);
  return true;
});

test('allowed: a node a role matches, by name, NAME.<cluster> (any case), selector and address; the registered address is dialled', async () => {
  assert.equal(await dial(req('pat', 'web1')), 'web1 10.0.0.1:22');
  assert.equal(await dial(req('pat', 'WEB2.C.Example', { port: 0 })), 'web2 10.0.0.2:2222');
  assert.equal(await dial(req('pat', 'web2', { port: undefined })), 'web2 10.0.0.2:2222');
  assert.equal(await dial(req('pat', 'web2', { port: 2222 })), 'web2 10.0.0.2:2222');
  assert.equal(await dial(req('alice', 'env=prod,team=db', { login: 'root' })), 'db1 10.0.0.3:22');
  assert.equal(await dial(req('ro', 'team=db')), 'db1 10.0.0.3:22');
  assert.equal(await dial(req('pat', '10.0.0.1')), 'web1 10.0.0.1:22', 'the address of a registered node is that node');
  assert.equal(await dial(req('dev', '10.0.0.7', { port: 2200 })), 'twin-b 10.0.0.7:2200', 'host and port pick one of two nodes on a host');
  assert.equal(await dial(req('dev', '10.0.0.7')), 'twin-a 10.0.0.7:22');
  assert.equal(await dial(req('alice', 'bare', { login: 'root' })), 'bare 10.0.0.9:22', '"*": ["*"] reaches a node without labels');
});

test('a node the role does not allow, and the labels it lacks, named in the message', async () => {
  await denied(req('dev', 'web1'), /^access to node "web1" denied: no role of dev allows labels env=prod,team=web$/, /postern ls/);
  await denied(req('pat', 'db1'), /access to node "db1" denied: no role of pat allows labels env=prod,team=db/);
  await denied(req('pat', 'bare'), /access to node "bare" denied: no role of pat allows a node without labels/);
  await denied(req('ro', 'dev1'), /access to node "dev1" denied: no role of ro allows label env=dev/);
  await denied(req('dev', '10.0.0.1'), /access to node "web1" denied/, undefined);
});

test('logins: in the certificate, and allowed by a role that matches this node (not by another role)', async () => {
  // The one refusal of src/api/refusals.ts, the same message wherever the login is checked.
  await denied(req('pat', 'web1', { login: 'root' }), /^login "root" is not in your certificate \(it allows: deploy, pat\)$/, /postern login/, 'ERR_POSTERN_LOGIN_NOT_ALLOWED');
  // pat's roles grant "pat" (dev-self, env=dev) and "deploy" (web-deploy, team=web): each only where its role matches.
  await denied(req('pat', 'web1', { login: 'pat' }), /access to node "web1" denied: no role of pat allows login "pat" there/, /Logins allowed on web1: deploy/);
  await denied(req('pat', 'dev1', { login: 'deploy' }), /access to node "dev1" denied: no role of pat allows login "deploy" there/, /Logins allowed on dev1: pat/);
  assert.equal(await dial(req('pat', 'web1', { login: 'deploy' })), 'web1 10.0.0.1:22');
  assert.equal(await dial(req('pat', 'dev1', { login: 'pat' })), 'dev1 dev1.internal:22');
  assert.equal(await dial(req('pat', 'web1')), 'web1 10.0.0.1:22', 'without a login (ssh -J) only the labels are checked; sshd checks the principal');
});

test('selectors: none, several (named), only nodes the user may reach count, malformed', async () => {
  await denied(req('alice', 'env=staging'), /^no node you may reach matches env=staging$/, /postern ls/);
  await denied(req('dev', 'team=web'), /no node you may reach matches team=web/, undefined);
  await denied(req('alice', 'team=web'), /^team=web matches 2 nodes: web1, web2; name one of them$/, /postern ssh LOGIN@team=web COMMAND/);
  await denied(req('alice', 'env=dev'), /env=dev matches 3 nodes: dev1, twin-a, twin-b/);
  await denied(req('alice', 'env=prod,team=web,x=y'), /no node you may reach matches/);
  await denied(req('alice', 'env='), /access to "env=" denied: invalid label selector/);
});

test('ports: a registered node is dialled at its registered port; another explicit port is refused', async () => {
  await denied(req('pat', 'web2', { port: 2200 }), /access to node "web2" denied: it is registered at port 2222, not 2200/, /Leave the port out/);
  await denied(req('pat', 'web1', { port: 2022 }), /registered at port 22, not 2022/);
  await denied(req('alice', '10.0.0.7', { port: 2300 }), /access to "10\.0\.0\.7" denied: 2 nodes are registered at that host \(twin-a, twin-b\); name one of them/);
});

test('unknown names and unregistered hosts: refused unless allow_unregistered names them and a role reaches every node', async () => {
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'web9')), { kind: 'resolve' }, 'a name only CIDRs could allow: resolve it first');
  await denied(req('alice', 'web9', { resolved: ['192.0.2.1'] }), /^unknown node "web9": it is not registered and not allowed by allow_unregistered \(it resolves to 192\.0\.2\.1\)$/, /postern nodes add/);
  await denied(req('alice', '10.2.0.1'), /unknown node "10\.2\.0\.1": it is not registered and not allowed by allow_unregistered/);
  await denied(req('alice', 'bad_host!'), /unknown node "bad_host!"/);
  assert.equal(await dial(req('alice', 'box.lab', { port: 2022 })), '- box.lab:2022', 'a glob; the asked port');
  assert.equal(await dial(req('alice', 'Box.Lab.', { port: 0 })), '- Box.Lab:22', 'port 0 is 22');
  assert.equal(await dial(req('alice', '10.9.0.4')), '- 10.9.0.4:22', 'a glob over an address');
  assert.equal(await dial(req('alice', '10.1.2.3', { login: 'root' })), '- 10.1.2.3:22', 'an address in a CIDR, no resolve round');
  assert.equal(await dial(req('alice', '[fd00::5]')), '- fd00::5:22', 'IPv6, bracketed');
  assert.equal(await dial(req('alice', 'fd00::6')), '- fd00::6:22');
  // Without a role of '*': ['*'], no unregistered host, and no resolve round either.
  await denied(req('pat', 'box.lab'), /^access to unregistered host "box.lab" denied: no role of pat reaches every node$/, /node_labels \{'\*': \['\*'\]\}/);
  await denied(req('pat', 'web9'), /access to unregistered host "web9" denied: no role of pat reaches every node/);
  await denied(req('pat', '10.1.2.3'), /no role of pat reaches every node/);
  // The login is checked for unregistered hosts too.
  await denied(req('alice', 'box.lab', { login: 'deploy' }), /^login "deploy" is not in your certificate/, undefined, 'ERR_POSTERN_LOGIN_NOT_ALLOWED');
  await denied(req('alice', 'web9', { login: 'deploy' }), /login "deploy" is not in your certificate/, undefined, 'ERR_POSTERN_LOGIN_NOT_ALLOWED');
});

test('CIDR rules and names: the resolve round; every resolved address must be allowed, the first is dialled', async () => {
  assert.deepEqual(await proxy.authorizeSsh(req('alice', 'db.corp')), { kind: 'resolve' });
  assert.equal(await dial(req('alice', 'db.corp', { resolved: ['10.1.9.9', '10.1.0.1'], port: 2200 })), '- 10.1.9.9:2200');
  assert.equal(await dial(req('alice', 'v6.corp', { resolved: ['fd00::1'] })), '- fd00::1:22');
  await denied(req('alice', 'db.corp', { resolved: ['10.1.9.9', '8.8.8.8'] }), /not allowed by allow_unregistered \(it resolves to 8\.8\.8\.8\)/);
  await denied(req('alice', 'db.corp', { resolved: [] }), /it did not resolve to IP addresses/);
  await denied(req('alice', 'db.corp', { resolved: ['not-an-ip'] }), /it did not resolve to IP addresses/);
});

test('a user who no longer exists is denied; bad requests are validation errors', async () => {
  await denied(req('ghost', 'web1'), /^access to "web1" denied: user "ghost" does not exist any more$/);
  await assert.rejects(proxy.authorizeSsh({ ...req('alice', 'web1'), port: 70000 }), /port must be a number from 0 to 65535/);
  await assert.rejects(proxy.authorizeSsh({ ...req('alice', 'web1'), user: '' }), /user is required/);
  await denied(req('alice', ''), /no target host given/);
  await assert.rejects(admin.authorizeSsh(req('alice', 'web1')), /a admin may not call authorizeSsh/);
});

test('every denial is an access.denied audit event with user, target, reason, client address and path; a decision to dial is not', async () => {
  const seen = (await searchAudit(backend)).length;
  await denied(req('dev', 'web1', { login: 'dev', via: 'direct-tcpip', clientAddr: '198.51.100.7:40000' }), /no role of dev allows labels/);
  await proxy.authorizeSsh(req('pat', 'web1'));
  await proxy.authorizeSsh(req('alice', 'web9'));
  const events = (await searchAudit(backend)).slice(seen);
  assert.equal(events.length, 1, JSON.stringify(events));
  const e = events[0];
  assert.equal(e.type, 'access.denied');
  assert.equal(e.success, false);
  assert.equal(e.user, 'dev');
  assert.equal(e.target, 'web1');
  assert.equal(e.login, 'dev');
  assert.equal(e.via, 'direct-tcpip');
  assert.equal(e.clientAddr, '198.51.100.7:40000');
  assert.equal(e.addr, '198.51.100.7:40000');
  assert.equal(e.reason, 'access to node "web1" denied: no role of dev allows labels env=prod,team=web');
});

test('listNodes: a user sees what their roles reach, filtered by labels and search; an admin sees all; a proxy must name the user', async () => {
  const names = async (q: Parameters<AuthClient['listNodes']>[0], c = proxy): Promise<string[]> => (await c.listNodes(q)).map((n) => n.name);
  assert.deepEqual(await names({ user: 'pat' }), ['dev1', 'twin-a', 'twin-b', 'web1', 'web2']);
  assert.deepEqual(await names({ user: 'dev' }), ['dev1', 'twin-a', 'twin-b']);
  assert.deepEqual(await names({ user: 'ro', labels: { team: 'db' } }), ['db1']);
  assert.deepEqual(await names({ user: 'pat', labels: { env: 'prod', team: 'web' } }), ['web1', 'web2']);
  assert.deepEqual(await names({ user: 'pat', search: 'INTERNAL' }), ['dev1'], 'search is case-insensitive, over the address too');
  assert.deepEqual(await names({ user: 'pat', search: 'web' }), ['web1', 'web2'], 'over names and label values');
  assert.deepEqual(await names({ user: 'ghost' }), []);
  assert.deepEqual(await names({}, admin), ['bare', 'db1', 'dev1', 'twin-a', 'twin-b', 'web1', 'web2']);
  await assert.rejects(proxy.listNodes({}), /a proxy must name the user whose nodes it lists/);
  await assert.rejects(proxy.listNodes({ user: 'pat', labels: { env: 5 as unknown as string } }), /labels must be an object/);
});

test('nodes: add (lower-cased name, principals, a year), duplicate, update, renew, remove, unknown; each an audit event', async () => {
  const seen = (await searchAudit(backend, { type: 'node' })).length;
  const r = await admin.addNode({ name: 'Cache1', addr: 'Cache1.Internal', labels: { env: 'dev' }, hostPublicKey: key() + ' comment' });
  assert.deepEqual(r.node, { name: 'cache1', addr: 'cache1.internal:22', labels: { env: 'dev' } });
  const cert = parseCertificate(r.hostCertificate);
  assert.equal(cert.type, 'host');
  assert.deepEqual(cert.principals, ['cache1', 'cache1.c.example', 'cache1.internal']);
  const days = (cert.validBefore.getTime() - cert.validAfter.getTime()) / 86_400_000;
  assert.ok(days > 364.9 && days <= 365.01, `${days} days`);
  assert.match(r.userCaKeys[0], /^ssh-ed25519 /);
  assert.deepEqual(r.userCaKeys, await admin.caKeys({ type: 'user' }));
  await assert.rejects(admin.addNode({ name: 'cache1', addr: '10.0.0.1', labels: {}, hostPublicKey: key() }),
    (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_POSTERN_ALREADY_EXISTS' && /node "cache1" is already registered/.test(e.message) && /nodes update cache1/.test(e.hint ?? ''));
  await assert.rejects(admin.addNode({ name: 'bad_name', addr: '10.0.0.1', labels: {}, hostPublicKey: key() }), /invalid node name "bad_name"/);
  await assert.rejects(admin.addNode({ name: 'n2', addr: '10.0.0.1', labels: {}, hostPublicKey: r.hostCertificate }), /the host key must be an OpenSSH public key/);
  await assert.rejects(admin.addNode({ name: 'n2', addr: '10.0.0.1', labels: { env: 'a b' }, hostPublicKey: key() }), /invalid value "a b" of label "env"/);
  assert.deepEqual(await admin.updateNode({ name: 'CACHE1', labels: { env: 'prod', team: 'cache' } }), { name: 'cache1', addr: 'cache1.internal:22', labels: { env: 'prod', team: 'cache' } });
  const renewed = await admin.renewNode({ name: 'cache1' });
  const again = parseCertificate(renewed.hostCertificate);
  assert.ok(again.serial > cert.serial);
  assert.deepEqual(again.subjectPublicKey, cert.subjectPublicKey, 'renew signs the stored host key');
  assert.deepEqual(renewed.node.labels, { env: 'prod', team: 'cache' });
  await admin.removeNode({ name: 'cache1' });
  for (const call of [() => admin.removeNode({ name: 'cache1' }), () => admin.renewNode({ name: 'cache1' }), () => admin.updateNode({ name: 'cache1', labels: {} })]) {
    await assert.rejects(call(), (e: Error & { code?: string; hint?: string }) => e.code === 'ERR_POSTERN_NOT_FOUND' && e.message === 'node "cache1" is not registered' && e.hint === 'List nodes with:  postern nodes ls');
  }
  await assert.rejects(proxy.addNode({ name: 'x', addr: '1.2.3.4', labels: {}, hostPublicKey: key() }), /a proxy may not call addNode/);
  const events = (await searchAudit(backend, { type: 'node' })).slice(seen).map((e) => `${e.type} ${e.node}`);
  assert.deepEqual(events, ['node.added cache1', 'node.updated cache1', 'node.renewed cache1', 'node.removed cache1']);
});
