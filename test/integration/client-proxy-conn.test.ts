/**
 * src/client/proxy-conn.ts against the proxy's real SSH listener (src/proxy/ssh-server.ts)
 * with a small in-process AuthClient: host key trust from known_hosts (pinned key, host
 * CA, refusal naming the file), certificate authentication, the subsystem's bytes with
 * backpressure, and a refusal's stderr text becoming the error.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { SessionHub } from '../../src/proxy/session-hub.ts';
import { startSshListener } from '../../src/proxy/ssh-server.ts';
import type { RunningSshListener } from '../../src/proxy/ssh-server.ts';
import type { AuthClient } from '../../src/api/auth-client.ts';
import type { AccessRequest, AccessDecision } from '../../src/api/auth-types.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { systemClock } from '../../src/core/clock.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import type { SshKeyPair } from '../../src/ssh/keys.ts';
import { signCertificate, formatCertificate } from '../../src/ssh/certs.ts';
import { formatCertAuthorityLine, formatKnownHostLine } from '../../src/ssh/known-hosts.ts';
import { PosternError } from '../../src/core/errors.ts';
import { connectToProxy, openProxySubsystem, checkProxyHostKey, proxySubsystemName } from '../../src/client/proxy-conn.ts';
import { storeKeys } from '../../src/client/keystore.ts';
import { saveProfile } from '../../src/client/profile.ts';
import { profilePaths } from '../../src/client/paths.ts';
import { encodePrivateKeyOpenSSH } from '../../src/ssh/keys.ts';
import { runPostern } from '../helpers/cli.ts';
import { startSshd, LOCAL_USER } from '../helpers/openssh.ts';
import type { Sshd } from '../helpers/openssh.ts';
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const userCa = generateKeyPair();
const hostCa = generateKeyPair();
const proxyHostKey = generateKeyPair();
const dir = mkdtempSync(join(tmpdir(), 'postern-proxy-conn-'));
let listener: RunningSshListener;
let node: Server;
let nodePort: number;
let sshd: Sshd | undefined;
const seen: AccessRequest[] = [];

/** Stands in for auth: "web1" is the node below, "denied" is refused, anything else unknown. */
function fakeAuth(): AuthClient {
  const partial: Partial<AuthClient> = {
    async ping() {
      return { clusterName: 'test.example', secondFactor: 'off', userCaKeys: [formatAuthorizedKey(userCa.publicWire)], hostCaKeys: [formatAuthorizedKey(hostCa.publicWire)], serverVersion: 'test', sessionRecording: 'off' };
    },
    async authorizeSsh(req: AccessRequest): Promise<AccessDecision> {
      seen.push(req);
      if ((req.target === 'web2' || req.target === 'web2.test.example') && sshd) return { kind: 'dial', host: '127.0.0.1', port: sshd.port, node: { name: 'web2', addr: `127.0.0.1:${sshd.port}`, labels: {} } };
      if (req.target === 'web1' || req.target === 'web1.test.example') return { kind: 'dial', host: '127.0.0.1', port: nodePort, node: { name: 'web1', addr: `127.0.0.1:${nodePort}`, labels: {} } };
      if (req.target === 'denied' || req.target === 'denied.test.example') throw new PosternError('ERR_POSTERN_ACCESS_DENIED', 'access to node "denied" is not allowed by your roles\u001b[31m', { status: 403 });
      throw new PosternError('ERR_POSTERN_NOT_FOUND', `no node "${req.target}"`, { status: 404 });
    },
    async emitAudit() {},
    async checkAccount() { return { valid: true }; },
    async claimNonce() {},
  };
  return partial as AuthClient;
}

function userCert(pair: SshKeyPair, ca = userCa, ttlMs = 3600_000, principals = ['ubuntu', 'deploy']): string {
  return formatCertificate(signCertificate(ca, { type: 'user', subjectPublicKey: pair.publicWire, keyId: 'alice', principals, ttlMs, serial: 1n }));
}

function knownHosts(name: string, lines: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

before(async () => {
  // A "node" that speaks first, like sshd, then echoes, and reports a sha256 on request.
  node = createServer((s: Socket) => {
    s.write('SSH-2.0-FakeNode\r\n');
    s.pipe(s);
  });
  await new Promise<void>((r) => node.listen(0, '127.0.0.1', r));
  nodePort = (node.address() as { port: number }).port;
  const auth = fakeAuth();
  const hub = new SessionHub({ auth, proxyName: 'test-proxy', log: silentLogger });
  listener = await startSshListener({ auth, hostKey: proxyHostKey, addr: { host: '127.0.0.1', port: 0 }, log: silentLogger, clock: systemClock, hub });
});

after(async () => {
  await sshd?.stop();
  await listener?.close();
  await new Promise((r) => node?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const pinned = (): string => knownHosts('kh-pinned', [
  formatCertAuthorityLine(['*'], hostCa.publicWire, 'host CA'),
  formatKnownHostLine('127.0.0.1', listener.port, proxyHostKey.publicWire),
]);

test('connects with the certificate, the proxy pinned in known_hosts, and pipes bytes both ways', async (t) => {
  const me = generateKeyPair();
  const client = await connectToProxy({
    profile: { sshProxyAddr: `127.0.0.1:${listener.port}` }, keyPair: me, certificateText: userCert(me), knownHostsPath: pinned(), username: 'ubuntu',
  });
  t.after(() => client.end());
  const ch = await openProxySubsystem(client, 'web1', 22);
  const last = seen[seen.length - 1];
  assert.equal(last.target, 'web1');
  assert.equal(last.login, 'ubuntu');
  assert.equal(last.via, 'subsystem');
  // 8 MiB through the echo node with pipeline (backpressure), compared by hash.
  const data = randomBytes(8 << 20);
  const got = createHash('sha256');
  let banner = Buffer.alloc(0);
  let count = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (banner.length < 18) {
        const need = 18 - banner.length;
        banner = Buffer.concat([banner, chunk.subarray(0, need)]);
        chunk = chunk.subarray(need);
      }
      got.update(chunk);
      count += chunk.length;
      if (count >= data.length) ch.end();
      cb();
    },
  });
  await Promise.all([pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), ch, { end: false }).catch(() => {}), pipeline(ch, sink)]);
  assert.equal(banner.toString(), 'SSH-2.0-FakeNode\r\n');
  assert.equal(count, data.length);
  assert.equal(got.digest('hex'), createHash('sha256').update(data).digest('hex'));
});

test('a refusal from the proxy becomes an error with its text, control characters escaped', async (t) => {
  const me = generateKeyPair();
  const client = await connectToProxy({
    profile: { sshProxyAddr: `127.0.0.1:${listener.port}` }, keyPair: me, certificateText: userCert(me), knownHostsPath: pinned(), username: 'ubuntu',
  });
  t.after(() => client.end());
  await assert.rejects(openProxySubsystem(client, 'denied', 22), (err: PosternError) => {
    assert.equal(err.code, 'ERR_POSTERN_PROXY_REFUSED');
    assert.equal(err.exitCode, 255);
    assert.match(err.message, /not allowed by your roles/);
    assert.ok(!err.message.includes('\u001b'), err.message);
    assert.ok(err.message.includes('\\x1b'), err.message);
    return true;
  });
  await assert.rejects(openProxySubsystem(client, 'nowhere', 22), /no node "nowhere"/);
  // The connection is still usable after a refusal.
  const ch = await openProxySubsystem(client, 'web1.test.example', 22);
  ch.destroy();
});

test('a proxy whose host key is not in known_hosts is refused, naming the file', async () => {
  const me = generateKeyPair();
  const other = generateKeyPair();
  const path = knownHosts('kh-other', [formatKnownHostLine('127.0.0.1', listener.port, other.publicWire)]);
  await assert.rejects(
    connectToProxy({ profile: { sshProxyAddr: `127.0.0.1:${listener.port}` }, keyPair: me, certificateText: userCert(me), knownHostsPath: path, username: 'ubuntu' }),
    (err: PosternError) => {
      assert.equal(err.code, 'ERR_POSTERN_CONNECTION');
      assert.equal(err.exitCode, 255);
      assert.ok(err.message.includes(path), err.message);
      assert.match(err.message, /is not the one for \[127\.0\.0\.1\]:\d+/);
      return true;
    },
  );
  // The same key pinned for another port does not count.
  const wrongPort = knownHosts('kh-port', [formatKnownHostLine('127.0.0.1', listener.port + 1, proxyHostKey.publicWire)]);
  await assert.rejects(
    connectToProxy({ profile: { sshProxyAddr: `127.0.0.1:${listener.port}` }, keyPair: me, certificateText: userCert(me), knownHostsPath: wrongPort, username: 'ubuntu' }),
    /no host key for \[127\.0\.0\.1\]:\d+ is in/,
  );
});

test('certificates of another CA, expired ones and a login not in the certificate are refused by the proxy', async () => {
  const me = generateKeyPair();
  const base = { profile: { sshProxyAddr: `127.0.0.1:${listener.port}` }, keyPair: me, knownHostsPath: pinned() };
  await assert.rejects(connectToProxy({ ...base, certificateText: userCert(me, generateKeyPair()), username: 'ubuntu' }), /refused the certificate for "ubuntu"/);
  await assert.rejects(connectToProxy({ ...base, certificateText: userCert(me), username: 'root' }), /refused the certificate for "root"/);
  const expired = formatCertificate(signCertificate(userCa, {
    type: 'user', subjectPublicKey: me.publicWire, keyId: 'alice', principals: ['ubuntu'], ttlMs: 1000, serial: 2n, now: new Date(Date.now() - 3600_000),
  }));
  await assert.rejects(connectToProxy({ ...base, certificateText: expired, username: 'ubuntu' }), /refused the certificate/);
  // The key id is accepted as the user name too.
  const c = await connectToProxy({ ...base, certificateText: userCert(me), username: 'alice' });
  c.end();
});

test('nothing listening: a clear connection error, exit 255', async () => {
  const me = generateKeyPair();
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.1', r));
  const port = (free.address() as { port: number }).port;
  await new Promise((r) => free.close(r));
  await assert.rejects(
    connectToProxy({ profile: { sshProxyAddr: `127.0.0.1:${port}` }, keyPair: me, certificateText: userCert(me), knownHostsPath: pinned(), username: 'ubuntu' }),
    (err: PosternError) => err.exitCode === 255 && /cannot reach the proxy's SSH listener at 127\.0\.0\.1:\d+: connection refused/.test(err.message),
  );
});

test('checkProxyHostKey: host certificates from the @cert-authority CA, for the proxy\'s name, within validity', () => {
  const hostKey = generateKeyPair();
  const cert = (ca: SshKeyPair, principals: string[], ttlMs = 3600_000, now = new Date()) => signCertificate(ca, {
    type: 'host', subjectPublicKey: hostKey.publicWire, keyId: 'proxy', principals, ttlMs, serial: 3n, now,
  }).raw;
  const path = knownHosts('kh-ca', [formatCertAuthorityLine(['[*.example.com]:*', '![bad.example.com]:*'], hostCa.publicWire)]);
  const now = new Date();
  assert.equal(checkProxyHostKey(cert(hostCa, ['proxy.example.com']), 'proxy.example.com', 3023, path, now), undefined);
  assert.match(checkProxyHostKey(cert(hostCa, ['other.example.com']), 'proxy.example.com', 3023, path, now) ?? '', /not valid for principal/);
  assert.match(checkProxyHostKey(cert(generateKeyPair(), ['proxy.example.com']), 'proxy.example.com', 3023, path, now) ?? '', /unknown ca/);
  assert.match(checkProxyHostKey(cert(hostCa, ['proxy.example.com'], 1000, new Date(Date.now() - 3600_000)), 'proxy.example.com', 3023, path, now) ?? '', /expired/);
  assert.match(checkProxyHostKey(cert(hostCa, ['bad.example.com']), 'bad.example.com', 3023, path, now) ?? '', /no host key/, 'a negated pattern excludes the CA');
  assert.match(checkProxyHostKey(hostKey.publicWire, 'proxy.example.com', 3023, path, now) ?? '', /no host key for \[proxy\.example\.com\]:3023/, 'a plain key needs a pinned line');
  // A certificate the CA does not vouch for still passes when its key is pinned, as in OpenSSH.
  const both = knownHosts('kh-both', [formatKnownHostLine('proxy.example.com', 3023, hostKey.publicWire)]);
  assert.equal(checkProxyHostKey(cert(generateKeyPair(), ['x']), 'proxy.example.com', 3023, both, now), undefined);
  const revoked = knownHosts('kh-revoked', [formatKnownHostLine('proxy.example.com', 3023, hostKey.publicWire), `@revoked * ${formatAuthorizedKey(hostKey.publicWire)}`]);
  assert.match(checkProxyHostKey(hostKey.publicWire, 'proxy.example.com', 3023, revoked, now) ?? '', /@revoked/);
  assert.equal(proxySubsystemName('::1', 22), 'proxy:[::1]:22');
  assert.equal(proxySubsystemName('env=prod', 22), 'proxy:env=prod:22');
});

/** Runs a program to its end without blocking this process's event loop. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: Buffer): Promise<{ status: number | null; stdout: Buffer; stderr: Buffer }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }); });
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? Buffer.alloc(0));
  });
}

/** The directory of the Node 24 that runs these tests: first on PATH, so `#!/usr/bin/env node` finds it. */
const NODE_DIR = dirname(process.execPath);
const REPO = fileURLToPath(new URL('../..', import.meta.url));

test('plain OpenSSH reaches a real sshd through `postern config` and `postern proxy ssh`, host certificate checked strictly', async () => {
  // A node: real sshd trusting the user CA, with a host certificate from the host CA.
  const hostKey = generateKeyPair();
  const keyPath = join(dir, 'web2_host_key');
  writeFileSync(keyPath, encodePrivateKeyOpenSSH(hostKey), { mode: 0o600 });
  const hostCert = signCertificate(hostCa, { type: 'host', subjectPublicKey: hostKey.publicWire, keyId: 'web2', principals: ['web2', 'web2.test.example', '127.0.0.1'], ttlMs: 3600_000, serial: 9n });
  writeFileSync(`${keyPath}-cert.pub`, formatCertificate(hostCert) + '\n');
  sshd = await startSshd({ trustedUserCaKeys: formatAuthorizedKey(userCa.publicWire), hostKey: { privatePath: keyPath, certPath: `${keyPath}-cert.pub` } });

  // A login as `postern login` leaves it.
  const home = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const me = generateKeyPair();
  const paths = profilePaths(home, '127.0.0.1', 'alice', 'test.example');
  storeKeys(paths, {
    keyPair: me, comment: 'alice@test.example', certificate: userCert(me, userCa, 3600_000, [LOCAL_USER]), hostCaKeys: [formatAuthorizedKey(hostCa.publicWire)],
    cluster: 'test.example', proxySshAddr: `127.0.0.1:${listener.port}`, proxySshHostKey: formatAuthorizedKey(proxyHostKey.publicWire),
  });
  saveProfile(home, { webProxyAddr: '127.0.0.1:3080', sshProxyAddr: `127.0.0.1:${listener.port}`, proxyHost: '127.0.0.1', cluster: 'test.example', user: 'alice', logins: [LOCAL_USER], insecure: true });

  const env = { ...process.env, PATH: `${NODE_DIR}:${process.env.PATH}`, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', POSTERN_NO_TTY_LOGIN: '1', NO_COLOR: '1' };
  const cfg = await runPostern(['config'], { env });
  assert.equal(cfg.code, 0, cfg.stderr);
  const cfgPath = join(home, 'ssh_config');
  writeFileSync(cfgPath, cfg.stdout);
  // Asynchronous: the proxy listener runs in this process.
  const ssh = (args: string[], input?: Buffer) => run('ssh', ['-F', cfgPath, '-o', 'BatchMode=yes', '-o', 'IdentityAgent=none', ...args], env, input);
  const ok = await ssh([`${LOCAL_USER}@web2.test.example`, 'echo', 'ok']);
  assert.equal(ok.status, 0, `${ok.stderr.toString()}\n--- sshd ---\n${sshd.log()}`);
  assert.equal(ok.stdout.toString(), 'ok\n');

  // 32 MiB up through the ProxyCommand, hashed on the node.
  const data = randomBytes(32 << 20);
  const up = await ssh([`${LOCAL_USER}@web2.test.example`, 'sha256sum'], data);
  assert.equal(up.status, 0, up.stderr.toString());
  assert.equal(up.stdout.toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));

  // A node the proxy refuses: its message on stderr, ssh exits 255.
  const denied = await ssh([`${LOCAL_USER}@denied.test.example`, 'true']);
  assert.equal(denied.status, 255);
  assert.match(denied.stderr.toString(), /not allowed by your roles/);
  // A login not in the certificate: refused by postern before dialling.
  const root = await ssh(['nobody-here@web2.test.example', 'true']);
  assert.equal(root.status, 255);
  assert.match(root.stderr.toString(), /login "nobody-here" is not in your certificate/);

  // A node whose host certificate is not from the cluster's host CA: ssh refuses it.
  const rogueKh = join(home, 'keys', '127.0.0.1', 'known_hosts');
  writeFileSync(rogueKh, (await import('node:fs')).readFileSync(rogueKh, 'utf8').replace(/^@cert-authority .*$/m, formatCertAuthorityLine(['*'], generateKeyPair().publicWire)));
  const strict = await ssh([`${LOCAL_USER}@web2.test.example`, 'true']);
  assert.equal(strict.status, 255);
  assert.match(strict.stderr.toString(), /Host key verification failed/);
});

test('proxy ssh pipes stdin and stdout raw: the node\'s banner first, nothing else on stdout', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const me = generateKeyPair();
  storeKeys(profilePaths(home, '127.0.0.1', 'alice', 'test.example'), {
    keyPair: me, comment: 'a', certificate: userCert(me), hostCaKeys: [formatAuthorizedKey(hostCa.publicWire)],
    cluster: 'test.example', proxySshAddr: `127.0.0.1:${listener.port}`, proxySshHostKey: formatAuthorizedKey(proxyHostKey.publicWire),
  });
  saveProfile(home, { webProxyAddr: '127.0.0.1:3080', sshProxyAddr: `127.0.0.1:${listener.port}`, proxyHost: '127.0.0.1', cluster: 'test.example', user: 'alice', logins: ['ubuntu'] });
  const child = spawn(process.execPath, [join(REPO, 'bin/postern'), 'proxy', 'ssh', '--proxy', '127.0.0.1:3080', 'ubuntu@web1:22'], {
    env: { ...process.env, TSH_HOME: home, POSTERN_FROM_SOURCE: '1', POSTERN_NO_TTY_LOGIN: '1' }, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => chunks.push(d));
  child.stderr.on('data', (d) => { stderr += d; });
  const payload = randomBytes(1 << 20);
  child.stdin.end(payload);
  // The echo node sends its banner and echoes; the node closes when we do, and postern exits 0.
  const code = await new Promise<number | null>((r) => child.once('close', r));
  const out = Buffer.concat(chunks);
  assert.equal(code, 0, stderr);
  assert.equal(out.subarray(0, 18).toString(), 'SSH-2.0-FakeNode\r\n');
  assert.ok(out.subarray(18).equals(payload), `echoed ${out.length - 18} of ${payload.length} bytes`);
  assert.equal(stderr, '');
});
