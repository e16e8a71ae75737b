/**
 * The data directory's tree (src/core/server-paths.ts) is the one the header draws, and the
 * proxy's stored identity (src/proxy/join.ts) is checked before any join is tried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { adminIdentityPath, DB_FILE_NAME, resolveDataDir, serverPaths } from '../../src/core/server-paths.ts';
import { proxyIdentity } from '../../src/proxy/join.ts';
import type { JoinCall } from '../../src/proxy/join.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { createTlsCa } from '../../src/auth/tls-ca.ts';
import { certificatePin } from '../../src/core/tls-pin.ts';
import type { PosternError } from '../../src/core/errors.ts';

test('every path of the tree, relative to the data directory, as the header draws it', () => {
  const p = serverPaths('/srv/postern');
  const rel = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, relative('/srv/postern', v)]));
  assert.deepEqual(rel, {
    dataDir: '',
    database: 'postern.db',
    adminIdentity: 'admin-identity.json',
    authDir: 'auth',
    authApiKey: 'auth/api.key',
    proxyDir: 'proxy',
    proxyIdentity: 'proxy/identity.json',
    proxyHostKey: 'proxy/ssh_host_key',
    proxyWebKey: 'proxy/web.key',
    proxyWebCert: 'proxy/web.crt',
  });
  assert.equal(DB_FILE_NAME, 'postern.db');
  assert.equal(adminIdentityPath('/d'), '/d/admin-identity.json');
  // Every file the header names is in the header, so the drawing cannot drift from the code.
  const header = readFileSync(new URL('../../src/core/server-paths.ts', import.meta.url), 'utf8').split('*/')[0];
  for (const path of Object.values(rel).filter(Boolean)) assert.ok(header.includes(path.split('/').pop()!), `${path} is drawn in the header`);
});

test('the data directory: the flag, then $POSTERN_DATA_DIR, then the default for root or a user', () => {
  assert.equal(resolveDataDir('/x', { POSTERN_DATA_DIR: '/y' }, '/home/u', false), '/x');
  assert.equal(resolveDataDir(undefined, { POSTERN_DATA_DIR: '/y' }, '/home/u', false), '/y');
  assert.equal(resolveDataDir(undefined, {}, '/home/u', false), '/home/u/.local/share/postern');
  assert.equal(resolveDataDir(undefined, {}, '/home/u', true), '/var/lib/postern');
});

test('a proxy that has not joined needs a token and a pin; a stored identity must match the pin given', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'postern-join-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  let joins = 0;
  const join_: JoinCall = async () => { joins++; throw new Error('no auth server in this test'); };
  const authServer = { host: '127.0.0.1', port: 1 };
  await assert.rejects(proxyIdentity({ dataDir, name: 'p1', authServer }, join_), (e: PosternError) => {
    assert.equal(e.code, 'ERR_POSTERN_CONFIG');
    assert.match(e.message, /this proxy has not joined the cluster yet: --join-token and --ca-pin are needed/);
    assert.match(e.hint ?? '', /postern tokens add --type proxy/);
    return true;
  });
  assert.equal(joins, 0, 'nothing was asked of auth');
  assert.equal(statSync(serverPaths(dataDir).proxyDir).mode & 0o777, 0o700);

  // An identity stored earlier is read back; a different pin is refused with how to join again.
  const ca = await createTlsCa('test.example', new Date());
  const { keyPem } = newTlsKeyPair();
  const stored = { authAddr: '127.0.0.1:1', clusterName: 'test.example', certPem: ca.certPem, keyPem, caPem: ca.certPem };
  writeFileSync(serverPaths(dataDir).proxyIdentity, JSON.stringify(stored), { mode: 0o600 });
  assert.deepEqual(await proxyIdentity({ dataDir, name: 'p1', authServer, caPin: certificatePin(ca.certPem) }, join_), stored);
  assert.deepEqual(await proxyIdentity({ dataDir, name: 'p1', authServer }, join_), stored);
  await assert.rejects(proxyIdentity({ dataDir, name: 'p1', authServer, caPin: `sha256:${'0'.repeat(64)}` }, join_),
    /the proxy's stored identity is for a cluster CA other than --ca-pin/);
  assert.equal(joins, 0);
});
