/**
 * The relay stays correct while it is made cheaper: RELAY_TEST_MIB (512 in
 * `npm test`; 2048 or more by hand) arrive intact in both directions through the
 * ProxyCommand (TLS tunnel), `ssh -J` (direct-tcpip on the listener) and `postern ssh`,
 * checked by sha256; a client that reads at 1 MiB/s does not make the proxy buffer what
 * the node sends (its RSS stays flat); and a single byte typed is echoed without waiting
 * for more (corking holds nothing back past the event loop's turn).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { TestCluster, proxySshConfig, userSshConfig } from '../helpers/cluster.ts';
import { POSTERN_BIN } from '../helpers/cli.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { assertEchoedOneByOne, assertSlowReaderKeepsRssFlat, keystream, keystreamCommand, keystreamSha256, relayMib } from '../helpers/relay.ts';

const MIB = relayMib(512);
const c = new TestCluster();
let alice: string;
let jumpConfig: string;
let tunnelConfig: string;

interface Path { name: string; cmd: string; args: (remote: string) => string[]; env: () => NodeJS.ProcessEnv }
const PATHS: Path[] = [
  { name: 'ProxyCommand (TLS tunnel)', cmd: 'ssh', args: (r) => ['-F', tunnelConfig, `${LOCAL_USER}@web1.test.example`, r], env: () => process.env },
  { name: 'ssh -J (direct-tcpip)', cmd: 'ssh', args: (r) => ['-F', jumpConfig, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, r], env: () => process.env },
  { name: 'postern ssh', cmd: process.execPath, args: (r) => [POSTERN_BIN, 'ssh', `${LOCAL_USER}@web1`, r], env: () => ({ ...process.env, TSH_HOME: alice, POSTERN_FROM_SOURCE: '1' }) },
];

function start(p: Path, remote: string): { child: ChildProcessWithoutNullStreams; stderr: () => string; done: Promise<number | null>; exited: Promise<number | null> } {
  const child = spawn(p.cmd, p.args(remote), { env: p.env(), stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { if (err.length < 8192) err += d; });
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  // 'exit' does not wait for stdio: a ProxyCommand that ssh started may hold stderr open.
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, stderr: () => err, done, exited };
}

before(async () => {
  await c.start();
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  // One setting more for the node's sshd: SHLVL=1 keeps bash from sourcing root's ~/.bashrc
  // for each remote command (on a shared machine that may wait on a lock: pyenv's rehash).
  await c.node('web1', 'env=prod', { sshdConfig: ['SetEnv SHLVL=1'] });
  jumpConfig = userSshConfig(join(c.work, 'ssh_config_relay_jump'), alice, 'alice', ['  IdentityAgent none']);
  tunnelConfig = proxySshConfig(join(c.work, 'ssh_config_relay_tunnel'), alice, 'alice', 'tls');
});

after(() => c.stop());

for (const p of PATHS) {
  test(`${MIB} MiB intact both ways through ${p.name} (sha256 compared)`, { timeout: 30 * 60_000 }, async () => {
    const want = keystreamSha256(MIB);
    // Client to node: the node hashes what arrives.
    const up = start(p, 'sha256sum');
    let upOut = '';
    up.child.stdout.on('data', (d) => { upOut += d; });
    keystream(MIB).pipe(up.child.stdin);
    assert.equal(await up.done, 0, `${p.name}, upload: ${up.stderr()}`);
    assert.equal(upOut.split(/\s/)[0], want, `${p.name}: the node received other bytes`);
    // Node to client: the client hashes what arrives.
    const down = start(p, keystreamCommand(MIB));
    down.child.stdin.end();
    const h = createHash('sha256');
    let bytes = 0;
    down.child.stdout.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
    assert.equal(await down.done, 0, `${p.name}, download: ${down.stderr()}`);
    assert.equal(bytes, MIB * 1048576, `${p.name}: the client received ${bytes} bytes`);
    assert.equal(h.digest('hex'), want, `${p.name}: the client received other bytes`);
  });
}

for (const p of PATHS.slice(0, 2)) {
  test(`a client reading at 1 MiB/s through ${p.name} keeps the proxy's RSS flat while the node sends without end`, { timeout: 5 * 60_000 }, async () => {
    const s = start(p, 'cat /dev/zero');
    await assertSlowReaderKeepsRssFlat(c.serve.proc.pid!, s);
    s.child.stderr.destroy();
  });
}

for (const p of PATHS) {
  test(`single bytes through ${p.name} are echoed one by one, none waiting for more input`, { timeout: 5 * 60_000 }, async () => {
    await assertEchoedOneByOne(start(p, 'echo ready; exec cat'), 'the quick brown fox jumps over the lazy dog');
  });
}
