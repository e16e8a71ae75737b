/**
 * Regression: in recording proxy mode the client's end of input never reached the node
 * (the proxy listened for an 'eof' event that ssh2 never emits on a server channel; it
 * emits 'end'), so `… | ssh -A -J proxy node 'wc -c'` hung. The same event now ends a
 * `join` whose client's stdin ends.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, userFiles } from '../helpers/cluster.ts';
import { LOCAL_USER, startAgent } from '../helpers/openssh.ts';

const c = new TestCluster();
let cfg: string;
let agentSock: string;

before(async () => {
  await c.start('session_recording: proxy');
  const agent = await startAgent();
  c.onStop(() => agent.stop());
  agentSock = agent.socket;
  const home = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  const f = userFiles(home, 'alice');
  const k = join(c.work, 'alice_id');
  copyFileSync(f.key, k);
  copyFileSync(f.cert, `${k}-cert.pub`);
  execFileSync('ssh-add', [k], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'pipe' });
  await c.node('web1', 'env=prod');
  cfg = join(c.work, 'ssh_config');
  writeFileSync(cfg, ['Host *', `  IdentityFile ${f.key}`, `  CertificateFile ${f.cert}`, '  IdentitiesOnly yes', `  UserKnownHostsFile ${f.knownHosts}`,
    '  StrictHostKeyChecking yes', '  BatchMode yes', '  ForwardAgent yes', '  ConnectTimeout 30', ''].join('\n'));
});

after(async () => {
  await c.stop();
});

test('the end of stdin reaches the node through the recording proxy (wc -c counts and exits)', () => {
  const input = 'x'.repeat(100_000);
  const r = spawnSync('ssh', ['-F', cfg, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, 'wc -c'],
    { input, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
  assert.equal(r.error, undefined, 'no hang');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '100000');
});
