/**
 * Proxy identities, against a real `postern serve` and its Auth API over
 * mutual TLS: a join token joins one proxy only (also when 30 rounds of two joins race for
 * one token); a joined proxy's identity makes only proxy calls, scoped: heartbeats only under
 * its own name, only the audit events a proxy emits, host certificates only in recording
 * mode and only for registered nodes; `signTlsCert` with a malformed PEM is a 400 that says
 * so; `postern proxies ls` lists it and `postern proxies rm` revokes it (its next call is a
 * 401); joined again after that, with a new token, the new identity works and the revoked
 * one stays refused; two proxies may share a name; a proxy renews its identity with a fresh
 * key, and the old certificate is refused from then on.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join as joinPath } from 'node:path';
import { startServe } from '../helpers/serve.ts';
import type { ServeProcess } from '../helpers/serve.ts';
import { runPostern } from '../helpers/cli.ts';
import { joinCluster, remoteAuthClient } from '../../src/auth/remote-client.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { parseHostPort } from '../../src/core/text.ts';
import { AuditType } from '../../src/api/audit.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import type { PosternError } from '../../src/core/errors.ts';
import { renewProxyIdentityIfDue } from '../../src/proxy/join.ts';
import { serverPaths } from '../../src/core/server-paths.ts';
import type { IdentityFile } from '../../src/core/server-paths.ts';

let serve: ServeProcess;
after(() => serve?.stop());

async function token(): Promise<string> {
  const tok = await runPostern(['tokens', 'add', '--type', 'proxy', '--ttl', '10m', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(tok.code, 0, tok.stderr);
  return (JSON.parse(tok.stdout) as { token: string }).token;
}

async function join(tok: string, name: string): Promise<AuthClient> {
  const addr = parseHostPort(serve.auth, 3025);
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const joined = await joinCluster(addr, serve.caPin, { token: tok, name, publicKeyPem });
  return remoteAuthClient(addr, { certPem: joined.certPem, keyPem, caPem: joined.caPem });
}

async function refused(p: Promise<unknown>, status: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: PosternError) => {
    assert.equal(err.status, status, `${err.code}: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

test('a join token joins one proxy only, also when joins race for it', { timeout: 300_000 }, async () => {
  serve = await startServe();
  const tok = await token();
  const first = await join(tok, 'p-first');
  assert.equal((await first.ping()).clusterName, 'test.example');
  await refused(join(tok, 'p-second'), 403, /the join token is invalid or expired/);
  await first.close();
  for (let i = 0; i < 30; i++) {
    const t = await token();
    const results = await Promise.allSettled([join(t, `race-a-${i}`), join(t, `race-b-${i}`)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `round ${i}: ${results.map((r) => r.status).join(',')}`);
    for (const r of results) if (r.status === 'fulfilled') await r.value.close();
  }
});

test('a proxy identity is scoped: its own heartbeat, proxy audit events, host certificates for registered nodes in recording mode', { timeout: 120_000 }, async (t) => {
  const p = await join(await token(), 'p-scoped');
  t.after(() => p.close());
  await refused(p.createUser({ name: 'mallory', logins: ['root'], roles: ['admin'], inviteTtlMs: 60_000 }), 403, /a proxy may not call createUser/);
  await p.heartbeatProxy({ name: 'p-scoped', webPublicAddr: '127.0.0.1:1', sshPublicAddr: '127.0.0.1:2' });
  await refused(p.heartbeatProxy({ name: 'other-proxy', webPublicAddr: '127.0.0.1:1', sshPublicAddr: '127.0.0.1:2' }), 403, /only for itself/);
  await p.emitAudit({ type: AuditType.sessionProxy, user: 'alice', addr: '127.0.0.1', success: true, target: 'web1' });
  await refused(p.emitAudit({ type: AuditType.loginSuccess, user: 'alice', addr: '127.0.0.1', success: true }), 403, /may not write "user\.login" audit events/);
  await refused(p.emitAudit({ type: AuditType.userCreated, user: 'mallory', success: true }), 403, /may not write/);
  const hostKey = formatAuthorizedKey(generateKeyPair().publicWire);
  await refused(p.signHostCert({ publicKey: hostKey, principals: ['web1'], ttlMs: 3600_000 }), 403, /only when the cluster records sessions at the proxy/);
  assert.equal((await runPostern(['settings', 'set', 'session_recording', 'proxy', '--data-dir', serve.dataDir])).code, 0);
  const keyFile = joinPath(mkdtempSync(joinPath(tmpdir(), 'postern-hk-')), 'host.pub');
  writeFileSync(keyFile, hostKey + '\n');
  const add = await runPostern(['nodes', 'add', '--name', 'web1', '--addr', '127.0.0.1:2222', '--host-key-file', keyFile, '--out', dirname(keyFile), '--data-dir', serve.dataDir]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(await p.signHostCert({ publicKey: hostKey, principals: ['web1', 'web1.test.example'], ttlMs: 3600_000 }), /^ssh-ed25519-cert-v01@openssh\.com /);
  await refused(p.signHostCert({ publicKey: hostKey, principals: ['web1', 'bank.example.com'], ttlMs: 3600_000 }), 403, /"bank\.example\.com": not a registered node/);
  // A malformed PEM is the caller's mistake: 400, saying what is wrong.
  await refused(p.signTlsCert({ publicKeyPem: 'not a pem', hosts: ['proxy.example'] }), 400, /publicKeyPem is not a PEM public key/);
  await refused(p.signTlsCert({ publicKeyPem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', hosts: ['proxy.example'] }), 400, /not a PEM public key/);
});

test('proxies ls lists a joined proxy; proxies rm revokes it at once; joined again, the new identity works and the revoked one stays refused; two proxies may share a name', { timeout: 120_000 }, async () => {
  const p = await join(await token(), 'p-gone');
  await p.heartbeatProxy({ name: 'p-gone', webPublicAddr: '127.0.0.1:3080', sshPublicAddr: '127.0.0.1:3023' });
  const ls = await runPostern(['proxies', 'ls', '--format', 'json', '--data-dir', serve.dataDir]);
  assert.equal(ls.code, 0, ls.stderr);
  const entry = (JSON.parse(ls.stdout) as Array<{ name: string; webPublicAddr?: string; joinedAt?: string; revokedAt?: string }>).find((x) => x.name === 'p-gone');
  assert.equal(entry?.webPublicAddr, '127.0.0.1:3080');
  assert.ok(entry?.joinedAt && !entry.revokedAt, JSON.stringify(entry));
  const text = await runPostern(['proxies', 'ls', '--data-dir', serve.dataDir]);
  assert.match(text.stdout, /p-gone\s.*active/);

  const rm = await runPostern(['proxies', 'rm', 'p-gone', '--data-dir', serve.dataDir]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.match(rm.stdout, /Proxy p-gone removed; its identity is revoked/);
  await refused(p.ping(), 401, /the identity of proxy "p-gone" was revoked/);
  const after = await runPostern(['proxies', 'ls', '--data-dir', serve.dataDir]);
  assert.match(after.stdout, /p-gone\s.*revoked/);
  const missing = await runPostern(['proxies', 'rm', 'no-such-proxy', '--data-dir', serve.dataDir]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /error: no proxy "no-such-proxy"/);

  // Joined again with a new token: the new identity works, the revoked one stays refused.
  const back = await join(await token(), 'p-gone');
  assert.equal((await back.ping()).clusterName, 'test.example');
  assert.match((await runPostern(['proxies', 'ls', '--data-dir', serve.dataDir])).stdout, /p-gone\s.*active/);
  await refused(p.ping(), 401, /was replaced or revoked/);
  await p.close();
  await back.close();
  // Two proxies under one name (two on one host): both work.
  const one = await join(await token(), 'p-twin');
  const two = await join(await token(), 'p-twin');
  assert.equal((await one.ping()).clusterName, 'test.example');
  assert.equal((await two.ping()).clusterName, 'test.example');
  await one.close();
  await two.close();
});

test('a joined proxy renews its identity (as serve does at start within 30 days of its end): the new one works, the old one is refused', { timeout: 120_000 }, async () => {
  const addr = parseHostPort(serve.auth, 3025);
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const joined = await joinCluster(addr, serve.caPin, { token: await token(), name: 'p-renew', publicKeyPem });
  const dataDir = mkdtempSync(joinPath(tmpdir(), 'postern-renew-'));
  const identity: IdentityFile = { authAddr: serve.auth, clusterName: joined.clusterName, certPem: joined.certPem, keyPem, caPem: joined.caPem };
  const old = remoteAuthClient(addr, identity);
  // Not due: nothing asked, nothing written.
  const notDue = await renewProxyIdentityIfDue(dataDir, identity, () => Promise.reject(new Error('not due')), new Date());
  assert.equal(notDue.renewed, false);
  // Due (the window made as long as the identity): renewed through the Auth API, stored 0600.
  const due = await renewProxyIdentityIfDue(dataDir, identity, (pem) => old.renewProxyIdentity({ publicKeyPem: pem }), new Date(), 400 * 86_400_000);
  assert.equal(due.renewed, true);
  const path = serverPaths(dataDir).proxyIdentity;
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), due.identity);
  assert.notEqual(new X509Certificate(due.identity.certPem).serialNumber, new X509Certificate(identity.certPem).serialNumber);
  const renewed = remoteAuthClient(addr, due.identity);
  assert.equal((await renewed.ping()).clusterName, 'test.example');
  await refused(old.ping(), 401, /was replaced or revoked/);
  await refused(renewed.renewProxyIdentity({ publicKeyPem: 'nope' }), 400, /not a PEM public key/);
  await old.close();
  await renewed.close();
});
