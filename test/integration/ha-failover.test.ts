/**
 * The proxy's client of several auth servers (src/auth/remote-client.ts) against a real
 * auth server and an address where nothing listens: every call succeeds, the dead one is
 * marked down once and skipped after; a call that cannot be sent twice (an audit event)
 * still goes through when the dead server never got it; an auth server that starts
 * listening again is found by the background probe. And the serve config reads the list
 * from the flag and from YAML.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServe } from '../helpers/serve.ts';
import { runPostern } from '../helpers/cli.ts';
import { withFreshPort } from '../helpers/net.ts';
import { joinCluster, remoteAuthClient } from '../../src/auth/remote-client.ts';
import { newTlsKeyPair } from '../../src/core/tls-keys.ts';
import { parseHostPort } from '../../src/core/text.ts';
import { resolveServeConfig } from '../../src/cli/commands/serve-config.ts';
import { AuditType } from '../../src/api/audit.ts';

test('serve reads several auth servers from --auth-server and from a YAML list', () => {
  const flag = resolveServeConfig({ roles: 'proxy', authServer: 'a.example:3025, b.example' }, '/d');
  assert.deepEqual(flag.authServers, [{ host: 'a.example', port: 3025 }, { host: 'b.example', port: 3025 }]);
  const dir = mkdtempSync(join(tmpdir(), 'postern-ha-cfg-'));
  writeFileSync(join(dir, 'p.yaml'), 'roles: proxy\nauth_server:\n  - a.example:4025\n  - "[::1]:3025"\n');
  const file = resolveServeConfig({ config: join(dir, 'p.yaml') }, '/d');
  assert.deepEqual(file.authServers, [{ host: 'a.example', port: 4025 }, { host: '::1', port: 3025 }]);
  assert.throws(() => resolveServeConfig({ roles: 'proxy', authServer: 'a:1,a:1' }, '/d'), /same address twice/);
});

test('calls fail over from a dead auth server to a live one, and the dead one is found again when it is back', { timeout: 120_000 }, async (t) => {
  const auth = await startServe({ args: ['--roles', 'auth', '--auth-addr', '127.0.0.1:0', '--cluster-name', 'test.example'] });
  t.after(() => auth.stop());
  const tok = await runPostern(['tokens', 'add', '--type', 'proxy', '--format', 'json', '--data-dir', auth.dataDir]);
  assert.equal(tok.code, 0, tok.stderr);
  const { token, caPin } = JSON.parse(tok.stdout) as { token: string; caPin: string };
  const live = parseHostPort(auth.auth, 3025);
  const { keyPem, publicKeyPem } = newTlsKeyPair();
  const joined = await joinCluster(live, caPin, { token, name: 'failover-proxy', publicKeyPem });
  // A port nothing listens on yet (an auth server is started there later in this test).
  const deadPort = await withFreshPort(async (p) => p);
  const health: string[] = [];
  const client = remoteAuthClient([{ host: '127.0.0.1', port: deadPort }, live], { certPem: joined.certPem, keyPem, caPem: joined.caPem }, {
    onHealth: (origin, up) => health.push(`${up ? 'up' : 'down'} ${origin}`),
  });
  t.after(() => client.close());

  const started = Date.now();
  for (let i = 0; i < 10; i++) assert.equal((await client.ping()).clusterName, 'test.example');
  // Not idempotent, but the dead server never got it: sent to the live one.
  await client.emitAudit({ type: AuditType.sessionProxy, user: 'ha-probe', addr: '127.0.0.1', success: false, reason: 'failover test' });
  t.diagnostic(`10 pings and an audit event with one of two auth servers dead: ${Date.now() - started} ms`);
  assert.deepEqual(health, [`down https://127.0.0.1:${deadPort}`]);
  const audit = await runPostern(['audit', '--user', 'ha-probe', '--format', 'json', '--data-dir', auth.dataDir]);
  assert.equal((JSON.parse(audit.stdout) as unknown[]).length, 1, 'the audit event was stored once');

  // The auth server moves to the dead address (stopped, started again there): the probe finds it, calls follow.
  await auth.stop();
  const again = await startServe({ dataDir: auth.dataDir, args: ['--roles', 'auth', '--auth-addr', `127.0.0.1:${deadPort}`, '--cluster-name', 'test.example'] });
  t.after(() => again.stop());
  const backAt = Date.now();
  for (let i = 0; i < 3; i++) assert.equal((await client.ping()).clusterName, 'test.example');
  while (!health.includes(`up https://127.0.0.1:${deadPort}`) && Date.now() - backAt < 10_000) await new Promise((r) => setTimeout(r, 100));
  t.diagnostic(`the restarted auth server marked up after ${Date.now() - backAt} ms`);
  assert.deepEqual(health.slice(0, 3).sort(), [`down https://127.0.0.1:${deadPort}`, `down https://${auth.auth}`, `up https://127.0.0.1:${deadPort}`].sort());
});
