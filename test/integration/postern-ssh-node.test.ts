/**
 * The node side of `postern ssh` against a real OpenSSH sshd, over a plain TCP stream
 * instead of the proxy's subsystem (the client code is the same for both): host
 * certificate checks, sessions with and without a PTY (raw mode, resize), prefixed
 * output, -L/-R forwards and agent forwarding.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Client } from 'ssh2';
import { connectToNode, acceptedHostNames } from '../../src/client/ssh-client.ts';
import type { ConnectToNodeOptions } from '../../src/client/ssh-client.ts';
import { runPrefixed, runSession } from '../../src/client/ssh-session.ts';
import type { TermIn, TermOut } from '../../src/client/ssh-session.ts';
import { RemoteForwards, parseForwardSpec, startLocalForward } from '../../src/client/port-forward.ts';
import { formatCertificate, signCertificate } from '../../src/ssh/certs.ts';
import { encodePrivateKeyOpenSSH, formatAuthorizedKey, generateKeyPair } from '../../src/ssh/keys.ts';
import type { SshKeyPair } from '../../src/ssh/keys.ts';
import { AgentClient } from '../../src/ssh/agent.ts';
import { roundTrip } from '../helpers/net.ts';
import { waitForText } from '../helpers/wait.ts';
import { startSshd, startAgent, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd, Agent } from '../helpers/openssh.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-ssh-node-'));
const userCa = generateKeyPair();
const hostCa = generateKeyPair();
const user = generateKeyPair();
const userCert = formatCertificate(signCertificate(userCa, {
  type: 'user', subjectPublicKey: user.publicWire, keyId: 'alice', principals: [LOCAL_USER], ttlMs: 3600_000, serial: 1n,
}));
const cleanup: Array<() => Promise<unknown>> = [];
let web1: Sshd;
let plain: Sshd;
let agent: Agent;

/** Writes a host key and, when asked, its certificate signed by the host CA for `principals`. */
function hostKeyFiles(name: string, principals?: string[]): { privatePath: string; certPath?: string } {
  const pair: SshKeyPair = generateKeyPair();
  const privatePath = join(dir, `${name}_host_key`);
  writeFileSync(privatePath, encodePrivateKeyOpenSSH(pair), { mode: 0o600 });
  if (!principals) return { privatePath };
  const certPath = `${privatePath}-cert.pub`;
  writeFileSync(certPath, formatCertificate(signCertificate(hostCa, {
    type: 'host', subjectPublicKey: pair.publicWire, keyId: name, principals, ttlMs: 3600_000, serial: 2n,
  })) + '\n');
  return { privatePath, certPath };
}

before(async () => {
  const trustedUserCaKeys = formatAuthorizedKey(userCa.publicWire);
  web1 = await startSshd({ trustedUserCaKeys, hostKey: hostKeyFiles('web1', ['web1', 'web1.test.example', '127.0.0.1']) });
  cleanup.push(() => web1.stop());
  plain = await startSshd({ trustedUserCaKeys, hostKey: hostKeyFiles('plain') });
  cleanup.push(() => plain.stop());
  agent = await startAgent();
  cleanup.push(() => agent.stop());
  const a = await AgentClient.connect(agent.socket);
  await a.addIdentity(user, { comment: 'alice-in-agent' });
  a.close();
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

function tcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function connect(sshd: Sshd, target: string, over: Partial<ConnectToNodeOptions> = {}): Promise<Client> {
  const client = await connectToNode({
    stream: await tcp(sshd.port),
    label: target,
    login: LOCAL_USER,
    keyPair: user,
    certificateText: userCert,
    trust: { hostCaKeys: [hostCa.publicWire], names: acceptedHostNames(target, 'test.example'), now: new Date() },
    timeoutMs: 10_000,
    ...over,
  });
  cleanup.push(async () => client.end());
  return client;
}

/** Streams for a session, with everything written collected. */
function io(opts: { input?: string; tty?: boolean } = {}): { stdin: TermIn; stdout: TermOut; stderr: TermOut; out(): string; err(): string; raw: boolean[] } {
  const stdin = new PassThrough() as PassThrough & TermIn;
  const stdout = new PassThrough() as PassThrough & TermOut;
  const stderr = new PassThrough() as PassThrough & TermOut;
  const raw: boolean[] = [];
  let o = '';
  let e = '';
  stdout.on('data', (d) => { o += d; });
  stderr.on('data', (d) => { e += d; });
  if (opts.tty) {
    stdin.isTTY = true;
    stdin.setRawMode = (r: boolean) => { raw.push(r); return stdin; };
    stdout.isTTY = true;
    stdout.columns = 101;
    stdout.rows = 33;
  }
  if (opts.input !== undefined) stdin.end(opts.input);
  return { stdin, stdout, stderr, out: () => o, err: () => e, raw };
}

test('a node with a host certificate for its name: commands, exit status, streams apart, stdin', async () => {
  const client = await connect(web1, 'web1');
  const s = io({ input: 'from-stdin\n' });
  const exit = await runSession(client, { command: 'cat; echo to-err >&2; exit 3', io: s });
  assert.deepEqual(exit, { code: 3 });
  assert.equal(s.out(), 'from-stdin\n');
  assert.equal(s.err(), 'to-err\n');
  assert.match(web1.log(), /Accepted publickey for \S+ .*ED25519-CERT/);
  const killed = await runSession(client, { command: 'kill -KILL $$', io: io({ input: '' }) });
  assert.deepEqual(killed, { signal: 'SIGKILL' });
});

test('refused: a plain host key, a certificate for another name, another CA', async () => {
  await assert.rejects(connect(plain, 'plain'), (err: Error & { exitCode?: number }) => {
    assert.equal(err.exitCode, 255);
    assert.match(err.message, /^refusing node "plain": it presented a plain host key \(ssh-ed25519 SHA256:\S+\) and no host certificate of the cluster$/);
    return true;
  });
  await assert.rejects(connect(web1, 'db1'), /^ConnectionError: refusing node "db1": its host certificate is for web1, web1\.test\.example, 127\.0\.0\.1, not for "db1" or "db1\.test\.example"$/);
  const other = generateKeyPair();
  await assert.rejects(connect(web1, 'web1', { trust: { hostCaKeys: [other.publicWire], names: ['web1'], now: new Date() } }), /its host certificate is not valid: certificate is signed by an unknown ca/);
  await assert.rejects(connect(web1, 'web1', { trust: { hostCaKeys: [hostCa.publicWire], names: ['web1'], now: new Date(Date.now() + 2 * 3600_000) } }), /certificate expired at/);
  await assert.rejects(connect(web1, 'web1', { login: 'not-a-principal' }), /node "web1" refused the certificate for login "not-a-principal"/);
});

test('a PTY: raw mode on and restored, the terminal size, TERM, and a resize reaching the node', async () => {
  const client = await connect(web1, 'web1.test.example');
  const s = io({ tty: true });
  // After TERM, the node polls (at most 20 s) until its terminal size changes, then prints it.
  const done = runSession(client, { command: 'stty size; echo "TERM=$TERM"; s=$(stty size); i=0; while [ "$(stty size)" = "$s" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; stty size', pty: { term: 'xterm-test' }, io: s });
  await waitForText(() => s.out(), 'TERM=', 30_000);
  assert.deepEqual(s.raw, [true], 'raw mode while the session runs');
  (s.stdout as TermOut).columns = 120;
  (s.stdout as TermOut).rows = 40;
  s.stdout.emit('resize');
  const exit = await done;
  assert.equal(exit.code, 0);
  assert.deepEqual(s.raw, [true, false], 'raw mode restored');
  assert.match(s.out(), /^33 101\r\nTERM=xterm-test\r\n40 120\r\n$/);
});

test('a shell without a PTY reads commands from stdin', async () => {
  const client = await connect(web1, 'web1');
  const s = io({ input: 'echo in-shell\nexit 6\n' });
  const exit = await runSession(client, { io: s });
  assert.equal(exit.code, 6);
  assert.equal(s.out(), 'in-shell\n');
});

test('prefixed output: every line, both streams, a last line without newline, no stdin', async () => {
  const client = await connect(web1, 'web1');
  const out = new PassThrough();
  const err = new PassThrough();
  let o = '';
  let e = '';
  out.on('data', (d) => { o += d; });
  err.on('data', (d) => { e += d; });
  const exit = await runPrefixed(client, 'printf "a\\nb\\n"; printf "warn\\n" >&2; cat; printf tail; exit 4', 'web1', { stdout: out, stderr: err });
  assert.deepEqual(exit, { code: 4 });
  assert.equal(o, '[web1] a\n[web1] b\n[web1] tail\n');
  assert.equal(e, '[web1] warn\n');
});

async function echoServer(): Promise<number> {
  const server: Server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise((r) => server.close(r)));
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

test('-L and -R forwards carry bytes both ways; closing them stops listening', async () => {
  const client = await connect(web1, 'web1');
  const echo = await echoServer();
  const warnings: string[] = [];
  const local = await startLocalForward(client, parseForwardSpec(`0:127.0.0.1:${echo}`, 'L'), (m) => warnings.push(m));
  cleanup.push(() => local.close()); // closed below; this is for a failure before, so no listener keeps the file running
  const data = Buffer.alloc(3 * 1024 * 1024, 7);
  assert.ok((await roundTrip(local.port, data)).equals(data));
  const remote = new RemoteForwards(client, (m) => warnings.push(m));
  cleanup.push(async () => remote.closeAll());
  const r = await remote.add(parseForwardSpec(`0:127.0.0.1:${echo}`, 'R'));
  assert.ok(r.port > 0);
  assert.equal((await roundTrip(r.port, Buffer.from('via -R\n'))).toString(), 'via -R\n');
  // A -L to a port nothing listens on: the node refuses the channel, the local connection closes.
  const dead = await startLocalForward(client, parseForwardSpec('0:127.0.0.1:1', 'L'), (m) => warnings.push(m));
  cleanup.push(() => dead.close());
  await assert.rejects(roundTrip(dead.port, Buffer.from('x')), /closed after 0/);
  assert.match(warnings.join('\n'), /channel for -L 0:127\.0\.0\.1:1 failed/);
  await local.close();
  await dead.close();
  await r.close();
  remote.closeAll();
  await assert.rejects(roundTrip(local.port, Buffer.from('x')), /ECONNREFUSED/);
  // A port in use is a clear error.
  const busy = await startLocalForward(client, parseForwardSpec('0:127.0.0.1:9', 'L'), () => {});
  cleanup.push(() => busy.close());
  await assert.rejects(startLocalForward(client, parseForwardSpec(`${busy.port}:127.0.0.1:9`, 'L'), () => {}), /cannot listen on 127\.0\.0\.1:\d+ for -L .*: the address is in use/);
  await busy.close();
});

test('-A: the node sees the forwarded agent', async () => {
  const client = await connect(web1, 'web1', { agentSocket: agent.socket });
  const s = io({ input: '' });
  const exit = await runSession(client, { command: 'ssh-add -l', io: s });
  assert.equal(exit.code, 0, s.err());
  assert.match(s.out(), /SHA256:\S+ alice-in-agent \(ED25519\)/);
  const none = await connect(web1, 'web1');
  const s2 = io({ input: '' });
  assert.equal((await runSession(none, { command: 'ssh-add -l', io: s2 })).code, 2, 'no agent without -A');
  // ssh-add is real: make sure the listing is the key we put in.
  assert.ok(execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: agent.socket } }).toString().includes('alice-in-agent'));
});
