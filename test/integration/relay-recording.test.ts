/**
 * The recording proxy relays intact: with `session_recording: proxy` the proxy
 * ends the client's SSH and opens its own to the node, so every byte is decrypted and
 * encrypted again (and recorded). RELAY_TEST_MIB (64 here by default: every byte of output
 * is also recorded) arrive intact both ways through `ssh -A -J`, checked by sha256; a client
 * that reads slowly holds the node back instead of the proxy's memory; and a single byte
 * typed is echoed without waiting for more.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { TestCluster, addToAgent, userSshConfig } from '../helpers/cluster.ts';
import { LOCAL_USER } from '../helpers/openssh.ts';
import { assertEchoedOneByOne, assertSlowReaderKeepsRssFlat, keystream, keystreamCommand, keystreamSha256, relayMib } from '../helpers/relay.ts';

const MIB = relayMib(64);
const c = new TestCluster();
let alice: string;
let agentSock: string;
let config: string;

function start(remote: string) {
  const child = spawn('ssh', ['-F', config, '-J', `alice@127.0.0.1:${c.sshPort}`, `${LOCAL_USER}@web1`, remote], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { if (err.length < 8192) err += d; });
  const done = new Promise<number | null>((resolve) => child.on('close', resolve));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { child, stderr: () => err, done, exited };
}

before(async () => {
  await c.start('session_recording: proxy');
  agentSock = await c.agent();
  alice = await c.user('alice', LOCAL_USER, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
  addToAgent(c, alice, 'alice', agentSock);
  // SHLVL=1: bash does not source root's ~/.bashrc for each remote command (see relay-paths).
  await c.node('web1', 'env=prod', { sshdConfig: ['SetEnv SHLVL=1'] });
  config = userSshConfig(join(c.work, 'ssh_config_relay_recording'), alice, 'alice', ['  ForwardAgent yes']);
});

after(() => c.stop());

test(`${MIB} MiB intact both ways through the recording proxy (ssh -A -J, sha256 compared)`, { timeout: 30 * 60_000 }, async () => {
  const want = keystreamSha256(MIB);
  const up = start('sha256sum');
  let upOut = '';
  up.child.stdout.on('data', (d) => { upOut += d; });
  keystream(MIB).pipe(up.child.stdin);
  assert.equal(await up.done, 0, `upload: ${up.stderr()}\nserve's last words: ${c.serve.stderr().slice(-4000)}`);
  assert.equal(upOut.split(/\s/)[0], want, 'the node received other bytes');
  const down = start(keystreamCommand(MIB));
  down.child.stdin.end();
  const h = createHash('sha256');
  let bytes = 0;
  down.child.stdout.on('data', (d: Buffer) => { h.update(d); bytes += d.length; });
  assert.equal(await down.done, 0, `download: ${down.stderr()}\nserve's last words: ${c.serve.stderr().slice(-4000)}`);
  assert.equal(bytes, MIB * 1048576, `the client received ${bytes} bytes`);
  assert.equal(h.digest('hex'), want, 'the client received other bytes');
});

test('a client reading at 1 MiB/s through the recording proxy keeps its RSS flat while the node sends without end', { timeout: 5 * 60_000 }, async () => {
  const s = start('cat /dev/zero');
  // Every byte is also recorded here: a zero byte is six characters of a cast event's JSON
  // on its way to auth, the recorder's own working memory (53 MiB was seen under a full
  // test run's load). Without backpressure the proxy grew by 150 MiB in the same 12 s.
  await assertSlowReaderKeepsRssFlat(c.serve.proc.pid!, s, 96);
  s.child.stderr.destroy();
});

test('single bytes through the recording proxy are echoed one by one, none waiting for more input', { timeout: 5 * 60_000 }, async () => {
  await assertEchoedOneByOne(start('echo ready; exec cat'), 'typed one key at a time');
});
