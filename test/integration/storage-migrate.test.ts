/**
 * `postern storage migrate` with the real parts: a SQLite cluster (a real serve, a user
 * logged in, a real sshd node, a recording written through the Auth API) is stopped,
 * copied to an empty PostgreSQL database, and served from it on the same data directory
 * and ports. The CAs are the same (same pin, same exported keys), the certificates issued
 * before still work (ls, and ssh to the node through the proxy), and users, nodes and
 * recordings list the same. A second migrate into the now non-empty database is refused.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runPostern } from '../helpers/cli.ts';
import { startServe } from '../helpers/serve.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { TestCluster } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { joinCluster, remoteAuthClient } from '../../src/auth/remote-client.ts';
import { Recorder } from '../../src/proxy/recorder.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { parseHostPort } from '../../src/core/text.ts';

test('a SQLite cluster migrated to PostgreSQL keeps its CAs, certificates, users, nodes and recordings', { timeout: 300_000 }, async (t) => {
  const pg = await startPostgres({ after });
  const url = await pg.createDatabase(t);
  const c = await new TestCluster().start();
  t.after(() => c.stop());
  const alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  await c.user('carol', 'root', 'MFRGGZDFMZTWQ2LKMFRGGZDFMZTWQ2LK', 'admin');
  await c.node('web1', 'env=prod');

  // A recording, written the way a proxy writes one.
  const tok = JSON.parse((await c.admin(['tokens', 'add', '--type', 'proxy', '--format', 'json'])).stdout) as { token: string; caPin: string };
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const addr = parseHostPort(c.serve.auth, 3025);
  const joined = await joinCluster(addr, tok.caPin, { token: tok.token, name: 'migrate-test-proxy', publicKeyPem });
  const proxyAuth = remoteAuthClient(addr, { certPem: joined.certPem, keyPem, caPem: joined.caPem });
  const rec = await Recorder.start(proxyAuth, { user: 'alice', node: 'web1', login: LOCAL_USER, kind: 'shell', width: 80, height: 24, clientAddr: '127.0.0.1' });
  rec.output('$ echo before-migration\r\nbefore-migration\r\n');
  await rec.finish(0);
  await proxyAuth.close();

  const snapshot = async (): Promise<Record<string, unknown>> => ({
    users: JSON.parse((await c.admin(['users', 'ls', '--format', 'json'])).stdout),
    nodes: JSON.parse((await c.admin(['nodes', 'ls', '--format', 'json'])).stdout),
    recordings: JSON.parse((await runPostern(['recordings', 'ls', '--format', 'json'], { env: { TSH_HOME: alice } })).stdout),
    userCa: (await c.admin(['ca', 'export', '--type', 'user'])).stdout,
    hostCa: (await c.admin(['ca', 'export', '--type', 'host'])).stdout,
  });
  const before = await snapshot();
  assert.equal((before.recordings as unknown[]).length, 1);
  const old = c.serve;
  const port = (k: string): string => (new RegExp(`${k}=[^ ]*:(\\d+)`).exec(old.ready) ?? [])[1]!;
  await old.stop();

  const mig = await runPostern(['storage', 'migrate', '--from', old.dataDir, '--to', url]);
  assert.equal(mig.code, 0, mig.stderr);
  for (const line of mig.stdout.trim().split('\n')) t.diagnostic(line);
  const copied = Number(/^copied (\d+) items from /m.exec(mig.stdout)?.[1]);
  assert.ok(copied > 10, mig.stdout);
  assert.match(mig.stdout, new RegExp(`^verified: ${copied} items on both sides, sha256 [0-9a-f]{64}$`, 'm'));
  assert.match(mig.stdout, /^ {2}cas\s+\d+$/m);
  assert.match(mig.stdout, /^ {2}users\s+2$/m);
  assert.doesNotMatch(mig.stdout + mig.stderr, /postgres:\/\/[^@\s]*:[^@\s]*@/, 'a password was printed');
  const rows = await pg.sql<{ n: string }>(url, 'SELECT count(*) AS n FROM postern_items');
  assert.equal(Number(rows[0].n), copied);

  const again = await runPostern(['storage', 'migrate', '--from', old.dataDir, '--to', url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^error: the target database is not empty$/m);

  // Served from PostgreSQL on the same data directory and ports.
  c.serve = await startServe({
    dataDir: old.dataDir,
    args: ['--web-addr', `127.0.0.1:${port('web')}`, '--auth-addr', `127.0.0.1:${port('auth')}`, '--ssh-addr', `127.0.0.1:${port('ssh')}`, '--cluster-name', 'test.example', '--storage', url],
  });
  assert.match(c.serve.ready, /storage=postgres:\/\//);
  assert.equal(c.serve.caPin, old.caPin);
  assert.deepEqual(await snapshot(), before);
  // alice's certificate from before still works: through the proxy to the node.
  const ls = await runPostern(['ls', '--format', 'json'], { env: { TSH_HOME: alice } });
  assert.equal(ls.code, 0, ls.stderr);
  assert.match(ls.stdout, /web1/);
  const ssh = await runPostern(['ssh', `${LOCAL_USER}@web1`, 'echo', 'after-migration'], { env: { TSH_HOME: alice } });
  assert.equal(ssh.code, 0, ssh.stderr + c.serve.stderr());
  assert.equal(ssh.stdout.trim(), 'after-migration');
});
