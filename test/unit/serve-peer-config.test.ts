/**
 * serve's peer listener settings (docs/ha.md, "Live sessions across proxies"): 3021 on the
 * web host by default, an ephemeral port when the web port is ephemeral, off, the YAML keys,
 * and a bad address refused naming the flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveServeConfig } from '../../src/cli/commands/serve-config.ts';

test('--peer-addr: default 3021 on the web host, 0 with an ephemeral web port, off, YAML, bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-peer-cfg-'));
  assert.deepEqual(resolveServeConfig({}, dir).peerAddr, { host: '0.0.0.0', port: 3021 });
  assert.deepEqual(resolveServeConfig({ webAddr: '127.0.0.1:0' }, dir).peerAddr, { host: '127.0.0.1', port: 0 });
  assert.equal(resolveServeConfig({ peerAddr: 'off' }, dir).peerAddr, undefined);
  const c = resolveServeConfig({ peerAddr: '10.0.0.5:4021', peerPublicAddr: 'proxy1.internal' }, dir);
  assert.deepEqual(c.peerAddr, { host: '10.0.0.5', port: 4021 });
  assert.deepEqual(c.peerPublicAddr, { host: 'proxy1.internal' });
  const file = join(dir, 'p.yaml');
  writeFileSync(file, 'peer_addr: 0.0.0.0:3021\npeer_public_addr: 10.0.2.11:3021\n');
  assert.deepEqual(resolveServeConfig({ config: file }, dir).peerPublicAddr, { host: '10.0.2.11', port: 3021 });
  assert.throws(() => resolveServeConfig({ peerAddr: 'host:99999' }, dir), /--peer-addr/);
});
