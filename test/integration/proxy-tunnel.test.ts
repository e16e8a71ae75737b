/**
 * `postern proxy ssh` over the TLS tunnel on the web port (src/proxy/tunnel.ts): real
 * OpenSSH through it with strict host key checking, the transport actually used (from the
 * audit log), refusals before any dial, a malformed or replayed request, and the fallback
 * to the SSH listener when the cluster records sessions at the proxy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, proxySshConfig } from '../helpers/cluster.ts';
import { runPostern } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { loadLogin } from '../../src/client/stored-login.ts';
import { signRequest } from '../../src/client/request-signing.ts';

const c = new TestCluster();
let alice: string;
let pat: string;

/** The `via` of the audit events of alice's proxied connections, oldest first. */
async function vias(): Promise<string[]> {
  const r = await c.admin(['audit', '--type', 'session.proxy', '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as Array<{ via: string; user: string }>).filter((e) => e.user === 'alice').map((e) => e.via);
}

/** Sends one raw line over TLS with the tunnel's ALPN; resolves with the answer line. */
function rawTunnel(line: string): Promise<{ alpn: string | false; answer: string }> {
  const port = Number(/web=[^ ]*:(\d+)/.exec(c.serve.ready)?.[1]);
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['postern-tunnel/1'], rejectUnauthorized: false }, () => s.write(line + '\n'));
    let data = '';
    const done = (): void => resolve({ alpn: s.alpnProtocol ?? false, answer: data.split('\n')[0] });
    s.on('data', (d) => { data += d; if (data.includes('\n')) { done(); s.destroy(); } });
    s.on('error', reject);
    s.on('close', done);
    setTimeout(() => { s.destroy(); reject(new Error(`no answer: ${data}`)); }, 20_000).unref();
  });
}

before(async () => {
  await c.start();
  const role = join(c.work, 'prod-only.yaml');
  writeFileSync(role, 'name: prod-only\nlogins: ["{{internal.logins}}"]\nnode_labels:\n  env: [prod]\n');
  assert.equal((await c.admin(['roles', 'add', '--file', role])).code, 0);
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  pat = await c.user('pat', LOCAL_USER, 'KRUGS4ZANFZSAYJAONSWG4TFOQQQ', 'prod-only');
  await c.node('web1', 'env=prod');
  await c.node('db1', 'env=dev', { start: false });
});

after(async () => {
  await c.stop();
});

test('OpenSSH runs a command through the TLS tunnel, and through the SSH listener when asked; the audit log says which', async () => {
  const viaTls = spawnSync('ssh', ['-F', proxySshConfig(join(c.work, `ssh_config_alice_tls`), alice, 'alice', 'tls'), `${LOCAL_USER}@web1`, 'echo', 'tunnel-ok'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(viaTls.status, 0, viaTls.stderr + c.serve.stderr().slice(-2000));
  assert.equal(viaTls.stdout.trim(), 'tunnel-ok');
  const viaSsh = spawnSync('ssh', ['-F', proxySshConfig(join(c.work, `ssh_config_${'alice'}_${'ssh'}`), alice, 'alice', 'ssh'), `${LOCAL_USER}@web1`, 'echo', 'listener-ok'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(viaSsh.status, 0, viaSsh.stderr);
  assert.equal(viaSsh.stdout.trim(), 'listener-ok');
  assert.deepEqual((await vias()).slice(-2), ['tunnel', 'subsystem']);
});

test('a node the role does not allow is refused through the tunnel before any dial, exit 255, nothing on stdout', async () => {
  const r = await runPostern(['proxy', 'ssh', `${LOCAL_USER}@db1:22`], { env: { TSH_HOME: pat, POSTERN_PROXY_TRANSPORT: 'tls' } });
  assert.equal(r.code, 255);
  assert.match(r.stderr, /access to node "db1" denied/);
  assert.equal(r.stdout, '');
  const unknown = await runPostern(['proxy', 'ssh', `${LOCAL_USER}@nosuchnode:22`], { env: { TSH_HOME: alice, POSTERN_PROXY_TRANSPORT: 'tls' } });
  assert.equal(unknown.code, 255);
  assert.match(unknown.stderr, /nosuchnode/);
});

test('a malformed request, a login outside the certificate and a replayed signature are refused with a message', async () => {
  const garbage = await rawTunnel('hello');
  assert.equal(garbage.alpn, 'postern-tunnel/1');
  assert.match(JSON.parse(garbage.answer).error.message, /not JSON/);

  const stored = loadLogin(alice, undefined);
  const line = (login: string): string => {
    const path = `/tunnel?${new URLSearchParams({ target: 'web1', port: '22', login }).toString()}`;
    return JSON.stringify({ v: 1, path, authorization: signRequest({ keyPair: stored.keyPair, certificate: stored.certificate.raw, method: 'CONNECT', pathAndQuery: path }) });
  };
  const wrongLogin = await rawTunnel(line('root-not-in-cert'));
  assert.equal(JSON.parse(wrongLogin.answer).error.code, 'ERR_POSTERN_LOGIN_NOT_ALLOWED');

  const once = line(LOCAL_USER);
  const first = await rawTunnel(once);
  assert.deepEqual(JSON.parse(first.answer), { ok: true });
  const replay = await rawTunnel(once);
  assert.equal(JSON.parse(replay.answer).error.code, 'ERR_POSTERN_REQUEST_AUTH');
});

test('with session_recording: proxy the tunnel carries nothing and says to use the SSH listener', async () => {
  const rec = new TestCluster();
  try {
    await rec.start('session_recording: proxy');
    const home = await rec.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    await rec.node('web1', 'env=prod');
    const r = await runPostern(['proxy', 'ssh', `${LOCAL_USER}@web1:22`], { env: { TSH_HOME: home, POSTERN_PROXY_TRANSPORT: 'tls' } });
    assert.equal(r.code, 255);
    assert.match(r.stderr, /records sessions at the proxy/);
    const audit = await rec.admin(['audit', '--type', 'session.proxy', '--format', 'json']);
    assert.deepEqual(JSON.parse(audit.stdout), [], 'nothing was dialled');
  } finally {
    await rec.stop();
  }
});
