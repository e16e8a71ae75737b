/**
 * The client commands without a cluster: `proxy ssh` target parsing and its
 * refusals before any dial, `config` output, `ls` selectors and the completion cache,
 * loadLogin's expiry. Logins are written to a temp $TSH_HOME with real certificates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain } from '../helpers/cli.ts';
import { generateKeyPair, formatAuthorizedKey } from '../../src/ssh/keys.ts';
import { signCertificate, formatCertificate } from '../../src/ssh/certs.ts';
import { storeKeys } from '../../src/client/keystore.ts';
import { saveProfile } from '../../src/client/profile.ts';
import { profilePaths, lsCachePath } from '../../src/client/paths.ts';
import { loadLogin } from '../../src/client/stored-login.ts';
import { readLsCache, writeLsCache, LS_CACHE_SED } from '../../src/client/ls-cache.ts';
import { parseProxyTarget } from '../../src/cli/commands/proxy/ssh.ts';
import { proxyCommandLine, sshConfigBlock } from '../../src/cli/commands/config.ts';
import { parseLabelArgs } from '../../src/cli/commands/ls.ts';
import { formatLabels } from '../../src/api/labels.ts';
import type { PosternError } from '../../src/core/errors.ts';

const userCa = generateKeyPair();

/** Writes a login for alice (logins ubuntu, deploy) into a fresh $TSH_HOME. */
function fakeLogin(opts: { ttlMs?: number; now?: Date; sshPort?: number; webPort?: number } = {}): { home: string } {
  const home = mkdtempSync(join(tmpdir(), 'postern-tsh-'));
  const pair = generateKeyPair();
  const cert = signCertificate(userCa, {
    type: 'user', subjectPublicKey: pair.publicWire, keyId: 'alice', principals: ['ubuntu', 'deploy'], ttlMs: opts.ttlMs ?? 3600_000, serial: 1n, ...(opts.now ? { now: opts.now } : {}),
  });
  const paths = profilePaths(home, '127.0.0.1', 'alice', 'test.example');
  const sshAddr = `127.0.0.1:${opts.sshPort ?? 1}`;
  storeKeys(paths, {
    keyPair: pair, comment: 'alice@test.example', certificate: formatCertificate(cert), hostCaKeys: [formatAuthorizedKey(generateKeyPair().publicWire)],
    cluster: 'test.example', proxySshAddr: sshAddr, proxySshHostKey: formatAuthorizedKey(generateKeyPair().publicWire),
  });
  saveProfile(home, {
    webProxyAddr: `127.0.0.1:${opts.webPort ?? 1}`, sshProxyAddr: sshAddr, proxyHost: '127.0.0.1', cluster: 'test.example', user: 'alice', logins: ['ubuntu', 'deploy'], insecure: true,
  });
  return { home };
}

const expiredLogin = (extra: { sshPort?: number; webPort?: number } = {}) => fakeLogin({ ttlMs: 60_000, now: new Date(Date.now() - 3600_000), ...extra });

/** A TCP listener that counts connections: proof that nothing was dialled. */
async function counter(): Promise<{ port: number; count: () => number; close: () => Promise<void> }> {
  let n = 0;
  const s = createServer((c) => { n++; c.destroy(); });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as { port: number }).port, count: () => n, close: () => new Promise((r) => s.close(() => r())) };
}

test('proxy ssh targets: %r@%h:%p as OpenSSH makes them', () => {
  assert.deepEqual(parseProxyTarget('ubuntu@web1.test.example:22'), { login: 'ubuntu', host: 'web1.test.example', port: 22 });
  assert.deepEqual(parseProxyTarget('ubuntu@env=prod:2222'), { login: 'ubuntu', host: 'env=prod', port: 2222 });
  assert.deepEqual(parseProxyTarget('me@corp@::1:22'), { login: 'me@corp', host: '::1', port: 22 });
  assert.deepEqual(parseProxyTarget('ubuntu@[::1]:2200'), { login: 'ubuntu', host: '::1', port: 2200 });
  assert.deepEqual(parseProxyTarget('ubuntu@web1'), { login: 'ubuntu', host: 'web1', port: 22 });
  assert.throws(() => parseProxyTarget('web1:22'), /expected USER@HOST:PORT/);
  assert.throws(() => parseProxyTarget('u@web1:0'), /expected USER@HOST:PORT/);
});

test('loadLogin: the stored login, CertificateExpiredError (exit 4, login hint) once expired', () => {
  const { home } = fakeLogin();
  const l = loadLogin(home);
  assert.equal(l.profile.user, 'alice');
  assert.deepEqual(l.certificate.principals, ['ubuntu', 'deploy']);
  assert.match(l.certificateText, /^ssh-ed25519-cert-v01@openssh.com /);
  assert.throws(() => loadLogin(home, undefined, new Date(Date.now() + 2 * 3600_000)), (err: PosternError) => {
    assert.equal(err.code, 'ERR_POSTERN_CERT_EXPIRED');
    assert.equal(err.exitCode, 4);
    assert.match(err.message, /the certificate of alice for 127\.0\.0\.1 expired at/);
    assert.match(err.hint ?? '', /postern login --proxy 127\.0\.0\.1:1/);
    return true;
  });
  assert.throws(() => loadLogin(mkdtempSync(join(tmpdir(), 'postern-empty-'))), (err: PosternError) => err.code === 'ERR_POSTERN_NOT_LOGGED_IN' && err.exitCode === 4);
});

test('proxy ssh: a login not in the certificate is refused before any dial, exit 255', async () => {
  const c = await counter();
  try {
    const { home } = fakeLogin({ sshPort: c.port });
    const r = await runMain(['proxy', 'ssh', 'root@web1.test.example:22'], { env: { TSH_HOME: home, POSTERN_NO_TTY_LOGIN: '1' } });
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '', 'stdout carries only the SSH stream');
    assert.match(r.stderr, /error: login "root" is not in your certificate \(it allows: ubuntu, deploy\)/);
    assert.match(r.stderr, /hint: Connect as one of those logins/);
    assert.equal(c.count(), 0, 'nothing was dialled');
  } finally {
    await c.close();
  }
});

test('POSTERN_PROXY_TRANSPORT is read in one place for ssh and proxy ssh: a bad value is refused, tls never falls back to the SSH listener', async () => {
  const c = await counter();
  try {
    const { home } = fakeLogin({ sshPort: c.port });
    const env = { TSH_HOME: home, POSTERN_NO_TTY_LOGIN: '1' };
    const badSsh = await runMain(['ssh', 'ubuntu@web1', 'true'], { env: { ...env, POSTERN_PROXY_TRANSPORT: 'quic' } });
    assert.equal(badSsh.code, 2, badSsh.stderr);
    assert.match(badSsh.stderr, /error: POSTERN_PROXY_TRANSPORT must be auto, tls or ssh, not "quic"/);
    const badProxy = await runMain(['proxy', 'ssh', 'ubuntu@web1:22'], { env: { ...env, POSTERN_PROXY_TRANSPORT: 'quic' } });
    assert.equal(badProxy.code, 255, 'a ProxyCommand fails with 255 whatever went wrong');
    assert.match(badProxy.stderr, /error: POSTERN_PROXY_TRANSPORT must be auto, tls or ssh, not "quic"/);
    // The web port (1) is closed: with tls, neither command goes on to the SSH listener.
    for (const argv of [['ssh', 'ubuntu@web1', 'true'], ['proxy', 'ssh', 'ubuntu@web1:22']]) {
      const r = await runMain(argv, { env: { ...env, POSTERN_PROXY_TRANSPORT: 'tls' } });
      assert.equal(r.code, 255, r.stderr);
      assert.match(r.stderr, /error: the TLS tunnel is not available: the web port is not reachable/);
    }
    assert.equal(c.count(), 0, 'the SSH listener was never dialled');
    // The same refusal, with the same words, from both commands.
    const ssh = await runMain(['ssh', 'root@web1', 'true'], { env });
    const proxy = await runMain(['proxy', 'ssh', 'root@web1:22'], { env });
    assert.equal(ssh.code, 255);
    assert.equal(ssh.stderr, proxy.stderr);
    assert.equal(c.count(), 0);
  } finally {
    await c.close();
  }
});

test('proxy ssh: an expired certificate says so and how to log in, exit 255, no dial', async () => {
  const c = await counter();
  try {
    const { home } = expiredLogin({ sshPort: c.port });
    const r = await runMain(['proxy', 'ssh', 'ubuntu@web1.test.example:22'], { env: { TSH_HOME: home, POSTERN_NO_TTY_LOGIN: '1' } });
    assert.equal(r.code, 255);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /error: the certificate of alice for 127\.0\.0\.1 expired at \d{4}-/);
    assert.match(r.stderr, /hint: Log in again with:  postern login --proxy 127\.0\.0\.1:1/);
    assert.equal(c.count(), 0);
  } finally {
    await c.close();
  }
});

test('proxy ssh: no login, a bad target, an unreachable proxy: exit 255 with a message on stderr only', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'postern-empty-'));
  const none = await runMain(['proxy', 'ssh', 'ubuntu@web1:22'], { env: { TSH_HOME: empty } });
  assert.equal(none.code, 255);
  assert.equal(none.stdout, '');
  assert.match(none.stderr, /error: not logged in/);
  const bad = await runMain(['proxy', 'ssh', 'web1'], { env: { TSH_HOME: empty } });
  assert.equal(bad.code, 255);
  assert.match(bad.stderr, /expected USER@HOST:PORT/);
  const c = await counter();
  await c.close(); // now nothing listens there
  const { home } = fakeLogin({ sshPort: c.port });
  const down = await runMain(['proxy', 'ssh', 'ubuntu@web1:22'], { env: { TSH_HOME: home } });
  assert.equal(down.code, 255);
  assert.equal(down.stdout, '');
  assert.match(down.stderr, /error: cannot reach the proxy's SSH listener at 127\.0\.0\.1:\d+: connection refused/);
});

test('ls: not logged in and an expired login exit 4 with the login hint, before any request', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'postern-empty-'));
  const none = await runMain(['ls'], { env: { TSH_HOME: empty } });
  assert.equal(none.code, 4);
  assert.match(none.stderr, /error: not logged in/);
  assert.match(none.stderr, /hint: Log in with:  postern login/);
  const web = await counter();
  try {
    const { home } = expiredLogin({ webPort: web.port });
    const r = await runMain(['ls', 'env=prod', '--format', 'json'], { env: { TSH_HOME: home } });
    assert.equal(r.code, 4);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /error: the certificate of alice for 127\.0\.0\.1 expired at/);
    assert.match(r.stderr, /hint: Log in again with:  postern login/);
    assert.equal(web.count(), 0);
  } finally {
    await web.close();
  }
  // A word without "=" is a search keyword (ls KEYWORD); one with "=" must be a selector.
  const badSel = await runMain(['ls', '=prod'], { env: { TSH_HOME: empty } });
  assert.equal(badSel.code, 2);
  assert.match(badSel.stderr, /invalid label selector "=prod"/);
});

test('ls selectors and label formatting', () => {
  assert.deepEqual(parseLabelArgs(['env=prod', 'team=db,zone=a']), { env: 'prod', team: 'db', zone: 'a' });
  assert.deepEqual(parseLabelArgs([]), {});
  assert.throws(() => parseLabelArgs(['env=prod', 'env=dev']), (e: { code?: string; message: string }) => e.code === 'ERR_POSTERN_USAGE' && /label "env" is given twice/.test(e.message));
  // One grammar with `postern ssh` and the proxy: a value holds no "=" (ls used to take zone=a=1).
  assert.throws(() => parseLabelArgs(['zone=a=1']), (e: { code?: string; message: string }) => e.code === 'ERR_POSTERN_USAGE' && /invalid value "a=1" of label "zone" \(a value may not contain "=" or ","\)/.test(e.message));
  assert.equal(formatLabels({ zone: 'b', env: 'prod', app: 'x' }), 'app=x,env=prod,zone=b');
  assert.equal(formatLabels({}), '');
});

test('the ls cache: full listings replace, filtered ones add; the completion sed reads exactly the names', () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-cache-'));
  const now = new Date('2030-01-01T00:00:00Z');
  writeLsCache(home, { proxy: 'proxy.example.com', cluster: 'example.com', names: ['web2', 'web1', 'db-1.x'], complete: true, now });
  assert.deepEqual(readLsCache(home, 'proxy.example.com'), ['db-1.x', 'web1', 'web2']);
  writeLsCache(home, { proxy: 'proxy.example.com', cluster: 'example.com', names: ['web3', 'bad name', '"quoted"'], complete: false, now });
  assert.deepEqual(readLsCache(home, 'proxy.example.com'), ['db-1.x', 'web1', 'web2', 'web3'], 'a filtered listing adds; names a shell must quote are left out');
  const path = lsCachePath(home, 'proxy.example.com');
  const viaSed = execFileSync('sed', ['-n', LS_CACHE_SED, path], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(viaSed, ['db-1.x', 'web1', 'web2', 'web3']);
  writeLsCache(home, { proxy: 'proxy.example.com', cluster: 'example.com', names: ['only'], complete: true, now });
  assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')).names, ['only']);
  assert.deepEqual(readLsCache(home, 'nowhere'), []);
});

test('config: the two blocks, quoted paths, the ProxyCommand with this CLI and the web address', async () => {
  const { home } = fakeLogin({ sshPort: 3023, webPort: 3080 });
  const r = await runMain(['config'], { env: { TSH_HOME: home } });
  assert.equal(r.code, 0, r.stderr);
  const keyDir = join(home, 'keys', '127.0.0.1');
  assert.ok(r.stdout.includes([
    'Host *.test.example !127.0.0.1',
    `    UserKnownHostsFile "${keyDir}/known_hosts"`,
    `    IdentityFile "${keyDir}/alice"`,
    `    CertificateFile "${keyDir}/alice-ssh/test.example-cert.pub"`,
    '    StrictHostKeyChecking yes',
  ].join('\n')), r.stdout);
  // No IdentitiesOnly: the agent's certificate, renewed by a login again in the ProxyCommand, is used.
  assert.doesNotMatch(r.stdout, /^\s*IdentitiesOnly/m);
  // The profile directory is not ~/.tsh here: the ProxyCommand carries it.
  assert.match(r.stdout, new RegExp(`^ {4}ProxyCommand env TSH_HOME=${home.replace(/[.]/g, '\\.')} \\S*/bin/postern proxy ssh --proxy 127\\.0\\.0\\.1:3080 %r@%h:%p$`, 'm'));
  assert.match(r.stdout, /^Host 127\.0\.0\.1\n {4}UserKnownHostsFile ".*known_hosts" ~\/\.ssh\/known_hosts$/m);
  assert.match(r.stdout, /ssh -J ubuntu@127\.0\.0\.1:3023 ubuntu@NODE\.test\.example/);
  assert.doesNotMatch(r.stdout, /^\s*Port /m, 'no Port line: the proxy host\'s own sshd stays reachable');
  // ssh itself accepts the file.
  const file = join(home, 'ssh_config');
  (await import('node:fs')).writeFileSync(file, r.stdout);
  const g = execFileSync('ssh', ['-G', '-F', file, 'ubuntu@web1.test.example'], { encoding: 'utf8' });
  assert.match(g, /^proxycommand .*proxy ssh --proxy 127\.0\.0\.1:3080 %r@%h:%p$/m);
  assert.match(g, /^stricthostkeychecking true$/m);
  assert.match(g, /^certificatefile .*test\.example-cert\.pub$/m);
  const gProxy = execFileSync('ssh', ['-G', '-F', file, '127.0.0.1'], { encoding: 'utf8' });
  assert.doesNotMatch(gProxy, /^proxycommand /m);
  assert.match(gProxy, /^port 22$/m);

  const none = await runMain(['config'], { env: { TSH_HOME: mkdtempSync(join(tmpdir(), 'postern-empty-')) } });
  assert.equal(none.code, 4);
  assert.throws(() => sshConfigBlock({
    cluster: 'c', proxyHost: 'p', webProxyAddr: 'p:1', sshProxyAddr: 'p:2', user: 'u', logins: [], knownHosts: '/a"b', privateKey: '/k', certificate: '/c', selfCommand: 'postern',
  }), /cannot be written into an ssh_config file/);
  // The Node that runs Postern and paths with spaces, quotes and % in the ProxyCommand: quoted for the shell, % doubled for ssh.
  assert.equal(proxyCommandLine({ selfNode: '/opt/node 24/bin/node', selfCommand: "/it's/100%/postern", webProxyAddr: 'p:3080', env: { TSH_HOME: '/home/a b/.tsh' } }),
    "env TSH_HOME='/home/a b/.tsh' '/opt/node 24/bin/node' '/it'\\''s/100%%/postern' proxy ssh --proxy p:3080 %r@%h:%p");
  assert.equal(proxyCommandLine({ selfCommand: '/usr/bin/postern', webProxyAddr: 'p:3080' }), '/usr/bin/postern proxy ssh --proxy p:3080 %r@%h:%p');
});
